"""Published ports (-p, -P, --expose, `port`), as root and rootless: served on the host's loopback
(127.0.0.1 and another loopback address, for listeners on 0.0.0.0), TCP and UDP, released when the
container ends (kill -9 included), refused with one line when the port is taken."""

import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import IMAGE, REPO, ROOTLESS, alive, inspect, ipv6_listenable, wait_until

HTTPD = "mkdir -p /www && echo hello-ports > /www/index.html && exec httpd -f -p 80 -h /www"


@pytest.fixture(scope="module")
def udp_echo():
    """tests/probes/udp_echo.c, static, readable by everyone (rootless runs as minictr-test)."""
    top = Path(tempfile.mkdtemp(prefix="minictr-probe-"))
    os.chmod(top, 0o755)
    subprocess.run(["cc", "-static", "-O2", "-o", str(top / "udp_echo"), str(REPO / "tests/probes/udp_echo.c")],
                   check=True, capture_output=True)
    os.chmod(top / "udp_echo", 0o755)
    yield f"{top / 'udp_echo'}:/probe:ro"
    shutil.rmtree(top)


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(host, port, timeout=15):
    """The body of GET / once the container's httpd answers (the port is listened on before it is)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/", timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def refused(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def udp_ask(port, payload, timeout=15):
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        while True:
            s.sendto(payload, ("127.0.0.1", port))
            try:
                return s.recv(2048)
            except OSError:
                if time.monotonic() > deadline:
                    raise


def test_published_tcp_port_serves_a_containers_httpd_on_the_hosts_loopback(daemon, image):
    port = free_port()
    cid = daemon.ok("run", "-d", "-p", f"{port}:80", image, "sh", "-c", HTTPD).strip()
    try:
        assert http_get("127.0.0.1", port) == "hello-ports\n"
        assert http_get("127.0.0.2", port) == "hello-ports\n"  # bound on 0.0.0.0: any host address
        assert_published_on_every_address(daemon, cid, port)
    finally:
        daemon.ok("rm", "-f", cid)
    wait_until(lambda: refused("127.0.0.1", port), what="the listener to close with the container")


def assert_published_on_every_address(daemon, cid, port, ipv6=None):
    """-p PORT:80 shows as Docker 20.10+ shows it: on 0.0.0.0, and on [::] (served) where this host
    has IPv6; without IPv6 (disabled, as in CI containers) on 0.0.0.0 only, with no error."""
    ipv6 = ipv6_listenable() if ipv6 is None else ipv6
    if ipv6:
        assert http_get("[::1]", port) == "hello-ports\n"
    expected = [("0.0.0.0", f"0.0.0.0:{port}")] + ([("::", f"[::]:{port}")] if ipv6 else [])
    assert daemon.ok("port", cid, "80").split() == [shown for _, shown in expected]
    ports = inspect(daemon, cid)["NetworkSettings"]["Ports"]
    assert ports == {"80/tcp": [{"HostIp": ip, "HostPort": str(port)} for ip, _ in expected]}
    listed = next(line for line in daemon.ok("ps").splitlines() if line.startswith(cid[:12]))
    assert ", ".join(f"{shown}->80/tcp" for _, shown in expected) in listed
    assert ipv6 or "[::]" not in listed


def test_published_udp_port_echoes(daemon, image, udp_echo):
    port = free_port(socket.SOCK_DGRAM)
    cid = daemon.ok("run", "-d", "-v", udp_echo, "-p", f"127.0.0.1:{port}:5353/udp", image,
                    "/probe", "5353").strip()
    try:
        assert udp_ask(port, b"ping") == b"echo:ping"
        assert udp_ask(port, b"again") == b"echo:again"
        assert daemon.ok("port", cid, "5353/udp").split() == [f"127.0.0.1:{port}"]
    finally:
        daemon.ok("rm", "-f", cid)


def test_publish_all_picks_free_ports_that_port_shows(daemon, image):
    cid = daemon.ok("run", "-d", "--expose", "80", "--expose", "81/udp", "-P", image, "sh", "-c", HTTPD).strip()
    try:
        lines = daemon.ok("port", cid).splitlines()
        ipv6 = ipv6_listenable()  # [::] beside 0.0.0.0 only where the host has IPv6, as in Docker
        assert [line.split(":")[0] for line in lines] == (
            ["80/tcp -> 0.0.0.0", "80/tcp -> [", "81/udp -> 0.0.0.0", "81/udp -> ["] if ipv6
            else ["80/tcp -> 0.0.0.0", "81/udp -> 0.0.0.0"]), lines
        tcp_port = int(lines[0].rsplit(":", 1)[1])
        assert tcp_port > 0 and int(lines[-1 - ipv6].rsplit(":", 1)[1]) > 0
        if ipv6:
            assert lines[1] == f"80/tcp -> [::]:{tcp_port}"  # [::] takes 0.0.0.0's port
        assert http_get("127.0.0.1", tcp_port) == "hello-ports\n"
        assert inspect(daemon, cid)["HostConfig"]["PublishAllPorts"] is True
    finally:
        daemon.ok("rm", "-f", cid)


def test_a_taken_port_fails_the_start_in_one_line_with_nothing_left(daemon, image):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        other = free_port()
        result = daemon.cli("run", "-d", "--name", "ports-taken", "-p", f"127.0.0.1:{other}:81",
                            "-p", f"127.0.0.1:{port}:80", image, "sleep", "1000")
        try:
            assert result.returncode != 0
            assert f"127.0.0.1:{port}" in result.stderr and (
                "port is already allocated" in result.stderr or "address already in use" in result.stderr)
            assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
            state = inspect(daemon, "ports-taken")["State"]
            assert not state["Running"] and not state["Pid"]
            assert not inspect(daemon, "ports-taken")["NetworkSettings"].get("IPAddress")
            assert refused("127.0.0.1", other)  # the port bound before the taken one was given back
        finally:
            daemon.cli("rm", "-f", "ports-taken")


def test_kill_9_of_the_container_releases_its_port(daemon, image):
    port = free_port()
    cid = daemon.ok("run", "-d", "-p", f"127.0.0.1:{port}:80", image, "sh", "-c", HTTPD).strip()
    try:
        assert http_get("127.0.0.1", port) == "hello-ports\n"
        pid = inspect(daemon, cid)["State"]["Pid"]
        os.kill(pid, 9)
        wait_until(lambda: not alive(pid), what="the container to die")
        wait_until(lambda: refused("127.0.0.1", port), what="the listener to close after kill -9")
        assert daemon.ok("port", cid) == ""
    finally:
        daemon.ok("rm", "-f", cid)


def test_a_running_containers_port_is_served_again_after_a_daemon_restart(daemon, image):
    port = free_port()
    cid = daemon.ok("run", "-d", "-p", f"127.0.0.1:{port}:80", image, "sh", "-c", HTTPD).strip()
    try:
        assert http_get("127.0.0.1", port) == "hello-ports\n"
        daemon.stop()
        daemon.start()
        assert inspect(daemon, cid)["State"]["Running"]
        assert http_get("127.0.0.1", port) == "hello-ports\n"
    finally:
        daemon.ok("rm", "-f", cid)


def root_only(test):  # a skip is a failure in CI: the test is not defined rootless
    return None if ROOTLESS else test


def _rules(daemon):
    table = f"minictr-{daemon.bridge}"
    return subprocess.run(["nft", "list", "table", "inet", table], capture_output=True, text=True).stdout


@root_only
def test_as_root_the_kernel_forwards_local_clients_and_the_listener_serves_other_hosts(daemon, image):
    port = free_port()
    cid = daemon.ok("run", "-d", "-p", f"{port}:80", image, "sh", "-c", HTTPD).strip()
    ip = inspect(daemon, cid)["NetworkSettings"]["IPAddress"]
    remote = "p" + cid[:6]
    try:
        wait_until(lambda: f"tcp dport {port} dnat ip to {ip}:80" in _rules(daemon), what="the DNAT rule")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            # One connection, end to end: the daemon holds none to the container for it.
            time.sleep(0.2)
            upstream = subprocess.run(["ss", "-Htn", "dst", ip], capture_output=True, text=True).stdout
            assert upstream.strip() == ""
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            response = b""
            while data := client.recv(4096):
                response += data
            assert response.endswith(b"hello-ports\n")
        # A client on another machine (a namespace of the test's own, through a veth) reaches the
        # daemon's listener, which forwards it.
        subprocess.run([str(REPO / "tests/integration/remote-host"), "up", remote, "203"], check=True,
                       capture_output=True)
        get = f"import urllib.request as u; print(u.urlopen('http://198.18.203.1:{port}/', timeout=10).read().decode(), end='')"
        got = subprocess.run(["ip", "netns", "exec", f"mctest-{remote}", sys.executable, "-c", get],
                             capture_output=True, text=True)
        assert got.stdout == "hello-ports\n", got.stderr
    finally:
        subprocess.run([str(REPO / "tests/integration/remote-host"), "down", remote], capture_output=True)
        daemon.ok("rm", "-f", cid)
    wait_until(lambda: f"tcp dport {port} " not in _rules(daemon), what="the DNAT rule to go")


@root_only
def test_a_bridge_lets_no_container_reach_the_hosts_loopback(daemon, image):
    # route_localnet on the bridge (for 127.0.0.1's clients of published ports) must not open the
    # host's loopback to containers (CVE-2020-8558): what comes in on the bridge for 127/8 is dropped.
    port = free_port()
    cid = daemon.ok("run", "-d", "-p", f"{port}:80", image, "sh", "-c", HTTPD).strip()
    try:
        wait_until(lambda: f"tcp dport {port} " in _rules(daemon), what="the DNAT rule")
        assert Path(f"/proc/sys/net/ipv4/conf/{daemon.bridge}/route_localnet").read_text().strip() == "1"
        assert f'iifname "{daemon.bridge}" ip daddr 127.0.0.0/8 drop' in _rules(daemon)
    finally:
        daemon.ok("rm", "-f", cid)


def test_host_port_0_is_any_free_port_as_in_docker(daemon, image):
    cid = daemon.ok("run", "-d", "-p", "127.0.0.1:0:80", image, "sh", "-c", HTTPD).strip()
    try:
        (where,) = daemon.ok("port", cid, "80").split()
        host, _, port = where.rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
        assert http_get("127.0.0.1", int(port)) == "hello-ports\n"
    finally:
        daemon.ok("rm", "-f", cid)


def test_sixteen_megabytes_sent_to_a_published_port_arrive_whole(daemon, image):
    # Rootless the daemon copies every byte (native/forward.c); as root the kernel forwards them.
    port = free_port()
    cid = daemon.ok("run", "-d", "-p", f"127.0.0.1:{port}:5000", image, "sh", "-c",
                    "nc -l -p 5000 | md5sum > /received; sleep 600").strip()
    try:
        wait_until(lambda: ":5000 " in daemon.ok("exec", cid, "netstat", "-ltn"), what="nc to listen")
        payload = random.Random(5).randbytes(16 << 20)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            client.recv(1)  # nc's end: every byte is in
        received = wait_until(lambda: daemon.ok("exec", cid, "cat", "/received").split(),
                              what="md5sum's result")
        assert received[0] == hashlib.md5(payload).hexdigest()
    finally:
        daemon.ok("rm", "-f", cid)


def test_a_service_on_the_containers_loopback_is_not_published(daemon, image):
    # As in Docker: -p reaches the container's own address, never its 127.0.0.1. Rootless the
    # daemon connects from inside the container's namespace, where 127.0.0.1 would be one hop away.
    inner, outer = free_port(), free_port()
    cid = daemon.ok("run", "-d", "-p", f"127.0.0.1:{inner}:80", "-p", f"127.0.0.1:{outer}:8080", image, "sh", "-c",
                    "mkdir -p /www && echo hello-ports > /www/index.html"
                    " && httpd -p 127.0.0.1:80 -h /www && exec httpd -f -p 8080 -h /www").strip()
    try:
        assert http_get("127.0.0.1", outer) == "hello-ports\n"
        assert daemon.ok("exec", cid, "wget", "-qO-", "http://127.0.0.1:80/") == "hello-ports\n"
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{inner}/", timeout=5).read()
    finally:
        daemon.ok("rm", "-f", cid)


def test_a_container_reaches_a_port_published_on_every_address_through_its_gateway(net_daemon):
    # As with Docker, root or rootless (whose proxy listens in RootlessKit's namespace too): Testcontainers
    # run inside a container reaches the containers it starts so.
    d = net_daemon
    cid = d.ok("run", "-d", "-p", "80", IMAGE, "sh", "-c", HTTPD).strip()
    try:
        port = d.ok("port", cid, "80").split()[0].rpartition(":")[2]
        gateway = json.loads(d.ok("network", "inspect", "bridge"))[0]["IPAM"]["Config"][0]["Gateway"]
        fetch = f"for i in $(seq 50); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {gateway} {port} && break; " \
                "sleep 0.2; done"
        assert "hello-ports" in d.ok("run", "--rm", IMAGE, "sh", "-c", fetch)
    finally:
        d.ok("rm", "-f", cid)
