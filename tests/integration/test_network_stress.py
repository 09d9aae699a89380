"""Nothing a container got from the network is left behind: 50 containers started and removed in
parallel on random networks (rm -f, stop + rm, kill -9 then rm, --rm), a container that ends while
the daemon is down, and `network disconnect` of a running container. Checked in the daemon's
network namespace (the host's as root, the holder's when rootless): no veth, no lease (inspect and
the leases table), no listener on a published port, no DNS name, no per-container nft rule."""

import concurrent.futures
import hashlib
import json
import os
import random
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import time

import pytest

from .conftest import ROOTLESS, daemon_pid, inspect, ipv6_listenable, wait_until

COUNT = 50
WORKERS = 12


# ---- looking into the daemon's network namespace ---------------------------------------------

def in_daemon_netns(daemon, *cmd):
    """Run `cmd` in the daemon's network namespace: the host's as root; rootless, the namespace
    the holder (minictr-pause) keeps, entered with its user namespace."""
    if ROOTLESS:
        cmd = ("nsenter", "-t", str(daemon_pid(daemon)), "-U", "-n", "--preserve-credentials", *cmd)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def alive(pid):
    """Whether the process runs (a zombie does not; gone while we read is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def veth_prefix(daemon):
    return "mc" + hashlib.sha256(os.path.abspath(str(daemon.data_root)).encode()).hexdigest()[:3]


def our_veths(daemon):
    out = in_daemon_netns(daemon, "ip", "-o", "link")
    assert out.returncode == 0, out.stderr
    names = [line.split(": ")[1].split("@")[0] for line in out.stdout.splitlines()]
    return [n for n in names if n.startswith(veth_prefix(daemon))]


def db_leases(daemon):
    """Rows of the leases table in the data root: (network id, container id, ip)."""
    with sqlite3.connect(f"file:{daemon.data_root / 'minictr.db'}?mode=ro", uri=True, timeout=10) as db:
        return db.execute("SELECT network_id, container_id, ip FROM leases").fetchall()


def network_containers(daemon, name):
    return json.loads(daemon.ok("network", "inspect", name))[0]["Containers"]


def nft_table(daemon):
    """The daemon's own nft table (inet minictr-<its default bridge>) as text ('' when there is none)."""
    from minictr.networks.outbound import table_name

    nft = next(p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p))
    out = in_daemon_netns(daemon, nft, "list", "table", "inet", table_name(daemon.bridge))
    return out.stdout if out.returncode == 0 else ""


def port_free(proto, host_ip, port):
    """Whether the host port can be bound again (nobody listens on it)."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET6 if ":" in (host_ip or "") else socket.AF_INET, kind) as s:
        if s.family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no listener
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError:
            return False
    return True


def listening(proto, port):
    """Whether `ss` shows a listening socket on the port in the host's namespace (where published
    ports are bound, root and rootless)."""
    out = subprocess.run(["ss", "-Hln", "-t" if proto == "tcp" else "-u", f"sport = :{port}"],
                         capture_output=True, text=True).stdout
    return bool(out.strip())


def published(info):
    """[(proto, host_ip, host_port)] of an inspect document."""
    found = []
    for key, bindings in (info["NetworkSettings"].get("Ports") or {}).items():
        for b in bindings or []:
            found.append((key.split("/")[1], b["HostIp"], int(b["HostPort"])))
    return found


def resolved_names(daemon, ctr, gateway, names):
    """Which of `names` the network's DNS server (on `gateway`) answers, asked from `ctr`."""
    script = "; ".join(f"nslookup {n} {gateway} >/dev/null 2>&1 && echo FOUND {n}" for n in names) + "; true"
    out = daemon.ok("exec", ctr, "sh", "-c", script, timeout=120)
    return {line.split()[1] for line in out.splitlines() if line.startswith("FOUND ")}


def log_size(daemon):
    try:
        return daemon.log.stat().st_size
    except OSError:
        return 0


def log_since(daemon, offset):
    with open(daemon.log, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


# ---- fixtures --------------------------------------------------------------------------------

@pytest.fixture
def user_networks(daemon, image):
    """Three user networks; removed afterwards (with whatever containers are still on them)."""
    names = ["st" + secrets.token_hex(3) for _ in range(3)]
    for name in names:
        daemon.ok("network", "create", name)
    yield names
    left = set()
    for name in names:
        result = daemon.cli("network", "inspect", name)
        if result.returncode == 0:
            left |= set(json.loads(result.stdout)[0]["Containers"])
    if left:
        daemon.cli("rm", "-f", *left)
    for name in names:
        daemon.cli("network", "rm", name)


def gateway_of(daemon, network):
    return json.loads(daemon.ok("network", "inspect", network))[0]["IPAM"]["Config"][0]["Gateway"]


def run_sleeper(daemon, image, *options, name=None):
    name = name or "s" + secrets.token_hex(4)
    daemon.ok("run", "-d", "--name", name, *options, image, "sleep", "600")
    return name


# ---- the stress ------------------------------------------------------------------------------

def test_fifty_containers_on_random_networks_leave_nothing_behind(daemon, image, user_networks):
    began = time.monotonic()
    log_offset = log_size(daemon)
    rng = random.Random()
    # One container stays on all three networks: it asks their DNS servers for the removed names.
    survivor = run_sleeper(daemon, image, "--network", user_networks[0])
    for net in user_networks[1:]:
        daemon.ok("network", "connect", net, survivor)
    gateways = {net: gateway_of(daemon, net) for net in user_networks}
    tag = secrets.token_hex(3)

    plans = []
    for i in range(COUNT):
        networks = rng.choice([["bridge"], [rng.choice(user_networks)], rng.sample(user_networks, 2),
                               ["bridge", rng.choice(user_networks)]])
        publish = rng.choice([[], [], ["-p", "127.0.0.1::80"], ["-p", "80/udp"],
                              ["-p", "127.0.0.1::80", "-p", "81/udp"]])
        plans.append({"name": f"x{tag}{i:02d}", "networks": networks, "publish": publish,
                      "rm": rng.random() < 0.3, "end": rng.choice(["rm -f", "stop+rm", "kill -9"])})

    def start(plan):
        options = ["--network", plan["networks"][0], *plan["publish"]] + (["--rm"] if plan["rm"] else [])
        result = daemon.cli("run", "-d", "--name", plan["name"], *options, image, "sleep", "600")
        assert result.returncode == 0, f"run {plan['name']}: {result.stderr}"
        for net in plan["networks"][1:]:
            result = daemon.cli("network", "connect", net, plan["name"])
            assert result.returncode == 0, f"connect {net} {plan['name']}: {result.stderr}"
        info = inspect(daemon, plan["name"])
        plan["pid"] = info["State"]["Pid"]
        plan["ports"] = published(info)
        plan["ips"] = {net: info["NetworkSettings"]["Networks"][net]["IPAddress"] for net in plan["networks"]}
        return plan

    def end(plan):
        name, how = plan["name"], plan["end"]
        gone_ok = plan["rm"]  # --rm: it may be removed before our rm comes
        if how == "stop+rm":
            result = daemon.cli("stop", "-t", "1", name)
            assert result.returncode == 0 or gone_ok, f"stop {name}: {result.stderr}"
        elif how == "kill -9":
            try:
                os.kill(plan["pid"], signal.SIGKILL)
            except PermissionError:  # rootless: not ours to signal on this host
                daemon.ok("kill", name)
            wait_until(lambda: not alive(plan["pid"]), what=f"{name} to die")
        result = daemon.cli("rm", "-f", name)
        assert result.returncode == 0 or (gone_ok and "No such container" in result.stderr), \
            f"rm {name}: {result.stderr}"

    try:
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            started = list(pool.map(start, plans))
        started_at = time.monotonic() - began
        # While they run: each published port is listened on, each user-network name resolves.
        for plan in started:
            assert plan["ports"] or not plan["publish"], plan
            for proto, host_ip, port in plan["ports"]:
                assert not port_free(proto, host_ip, port), (plan["name"], proto, port)
        on_net = {net: [p["name"] for p in started if net in p["networks"]] for net in user_networks}
        sample_net = max(user_networks, key=lambda n: len(on_net[n]))
        assert set(on_net[sample_net][:5]) <= resolved_names(daemon, survivor, gateways[sample_net],
                                                             on_net[sample_net][:5])
        assert len(our_veths(daemon)) == len(user_networks) + sum(len(p["networks"]) for p in started)
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(end, started))
    finally:
        leftover = [p["name"] for p in plans if daemon.cli("inspect", "--type", "container", p["name"]).returncode == 0]
        if leftover:
            daemon.cli("rm", "-f", *leftover)

    # The survivor's three veths, and nothing else of ours.
    wait_until(lambda: len(our_veths(daemon)) == len(user_networks), timeout=15, what="the veths to go")
    # Leases: only the survivor's, in inspect and in the table.
    for net in user_networks:
        assert set(network_containers(daemon, net)) == {inspect(daemon, survivor)["Id"]}, net
    assert network_containers(daemon, "bridge") == {}
    survivor_id = inspect(daemon, survivor)["Id"]
    assert {row[1] for row in db_leases(daemon)} == {survivor_id}
    # Listeners: every published port can be bound again, and ss shows none.
    ports = [port for p in started for port in p["ports"]]
    assert ports, "no container published a port (the random choice should make this unlikely)"
    for proto, host_ip, port in ports:
        assert not listening(proto, port), f"{proto} port {port} is still listened on"
        assert port_free(proto, host_ip, port), f"{proto} port {port} cannot be bound again"
    # DNS: no removed name answers on any network; the survivor's own does (the check can fail).
    for net in user_networks:
        names = on_net[net]
        assert resolved_names(daemon, survivor, gateways[net], [survivor, *names]) == {survivor}, net
    # nft: minictr's table has rules for bridges only, none naming a container's veth or address.
    table = nft_table(daemon)
    if not ROOTLESS:
        assert table, "the daemon's nft table is missing"
        for net in user_networks:  # one rule set per network's bridge
            bridge = "mcbr-" + json.loads(daemon.ok("network", "inspect", net))[0]["Id"][:10]  # networks/service.py
            assert f'"{bridge}"' in table, (bridge, table)
    assert veth_prefix(daemon) not in table
    addresses = {ip for p in started for ip in p["ips"].values()}
    assert not addresses & set(re.findall(r"\d+\.\d+\.\d+\.\d+(?=[ /;\n])", table)), table
    # The daemon still answers, and logged no traceback.
    assert daemon.ok("version")
    assert "Traceback" not in log_since(daemon, log_offset)
    daemon.ok("rm", "-f", survivor)
    assert our_veths(daemon) == []
    assert db_leases(daemon) == []
    print(f"\nstress: {COUNT} started in {started_at:.1f} s, all checks in {time.monotonic() - began:.1f} s")


# ---- release paths one by one ---------------------------------------------------------------

def test_a_container_that_ends_while_the_daemon_is_down_is_released_when_it_comes_back(daemon, image,
                                                                                       user_networks):
    net = user_networks[0]
    gateway = gateway_of(daemon, net)
    survivor = run_sleeper(daemon, image, "--network", net)
    victim = run_sleeper(daemon, image, "--network", net, "-p", "127.0.0.1::80", "-p", "80/udp")
    try:
        info = inspect(daemon, victim)
        victim_id, pid, ports = info["Id"], info["State"]["Pid"], published(info)
        # udp: 0.0.0.0, and [::] where the host has IPv6
        assert len(ports) == 2 + ipv6_listenable() and not any(port_free(*p) for p in ports)
        assert resolved_names(daemon, survivor, gateway, [victim]) == {victim}
        assert len(our_veths(daemon)) == 2
        daemon.kill()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(pid), what="the container to die")
        daemon.start()
        assert not inspect(daemon, victim)["State"]["Running"]
        assert inspect(daemon, victim)["NetworkSettings"]["Networks"][net]["IPAddress"] == ""
        assert set(network_containers(daemon, net)) == {inspect(daemon, survivor)["Id"]}
        assert [row for row in db_leases(daemon) if row[1] == victim_id and row[2]] == []
        wait_until(lambda: len(our_veths(daemon)) == 1, what="the victim's veth to go")
        for proto, host_ip, port in ports:
            assert port_free(proto, host_ip, port), f"{proto} {port} is still bound"
        assert resolved_names(daemon, survivor, gateway, [victim, survivor]) == {survivor}
        # Started again, it gets all of it back.
        daemon.ok("start", victim)
        assert resolved_names(daemon, survivor, gateway, [victim]) == {victim}
        assert len(our_veths(daemon)) == 2
    finally:
        daemon.cli("rm", "-f", victim, survivor)
    assert our_veths(daemon) == []
    assert db_leases(daemon) == []


def test_disconnect_of_a_running_container_releases_its_lease_name_and_veth(daemon, image, user_networks):
    net, other = user_networks[0], user_networks[1]
    gateway = gateway_of(daemon, net)
    survivor = run_sleeper(daemon, image, "--network", net)
    moving = run_sleeper(daemon, image, "--network", other)
    try:
        moving_id = inspect(daemon, moving)["Id"]
        daemon.ok("network", "connect", "--alias", "moved", net, moving)
        assert resolved_names(daemon, survivor, gateway, [moving, "moved"]) == {moving, "moved"}
        assert moving_id in network_containers(daemon, net)
        assert len(our_veths(daemon)) == 3
        daemon.ok("network", "disconnect", net, moving)
        assert moving_id not in network_containers(daemon, net)
        net_id = json.loads(daemon.ok("network", "inspect", net))[0]["Id"]
        assert [row for row in db_leases(daemon) if row[0] == net_id and row[1] == moving_id] == []
        assert resolved_names(daemon, survivor, gateway, [moving, "moved", survivor]) == {survivor}
        assert len(our_veths(daemon)) == 2
        # Still on its other network, and a new lease on `net` after connecting again.
        assert inspect(daemon, moving)["NetworkSettings"]["Networks"][other]["IPAddress"]
        daemon.ok("network", "connect", net, moving)
        assert resolved_names(daemon, survivor, gateway, [moving]) == {moving}
    finally:
        daemon.cli("rm", "-f", moving, survivor)
    assert our_veths(daemon) == []
    assert db_leases(daemon) == []
