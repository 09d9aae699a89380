"""A host with IPv6 disabled (net.ipv6.conf.all.disable_ipv6=1, as in most CI containers): ports are
published on 0.0.0.0 only, as Docker does, with no error and no [::] in `port`, inspect or ps;
bridges and the networks' DNS server work on IPv4 alone.

Root: a daemon in a network namespace where the test disables IPv6 (the host's own is untouched).
Rootless daemons publish through their wrapper in the host's namespace, which only root could give
IPv6-less here; the probe they use is the same (networks/ports.py, PortPublisher._ipv6_listenable)."""

import secrets
import socket
import subprocess

import pytest

from tests.integration.conftest import IMAGE, ROOTLESS, in_netns, ipv6_listenable, netns_daemon, wait_until
from tests.integration.test_ipv6_networks import docker_cli, random_ula_subnet
from tests.integration.test_ports import HTTPD, assert_published_on_every_address, http_get, refused


def _disable_ipv6(netns):
    for scope in ("all", "default", "lo"):
        subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-qw", f"net.ipv6.conf.{scope}.disable_ipv6=1"],
                       check=True, capture_output=True)
    assert not in_netns(netns, ipv6_listenable)


@pytest.fixture
def daemon_without_ipv6(busybox_tar):
    with netns_daemon(busybox_tar, "mctest-6", prepare=_disable_ipv6) as d:
        yield d


def _free_port():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def _bindable_on_ipv6_any(port):
    """Whether [::]:PORT is free (nothing of the daemon listens there), in the calling namespace."""
    with socket.socket(socket.AF_INET6) as s:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            s.bind(("::", port))
        except OSError:
            return False
    return True


def test_a_port_published_on_every_address_is_on_0_0_0_0_only_and_served(daemon_without_ipv6):
    d = daemon_without_ipv6
    port = in_netns(d.netns, _free_port)
    cid = d.ok("run", "-d", "-p", f"{port}:80", IMAGE, "sh", "-c", HTTPD).strip()
    try:
        assert in_netns(d.netns, lambda: http_get("127.0.0.1", port)) == "hello-ports\n"
        assert_published_on_every_address(d, cid, port, ipv6=False)
        assert in_netns(d.netns, lambda: _bindable_on_ipv6_any(port)), "the daemon listens on [::] anyway"
    finally:
        d.ok("rm", "-f", cid)
    wait_until(lambda: in_netns(d.netns, lambda: refused("127.0.0.1", port)), what="the port to close")


def test_publish_all_and_udp_show_no_ipv6_entry(daemon_without_ipv6):
    d = daemon_without_ipv6
    cid = d.ok("run", "-d", "--expose", "80", "--expose", "81/udp", "-P", IMAGE, "sh", "-c", HTTPD).strip()
    try:
        lines = d.ok("port", cid).splitlines()
        assert [line.rsplit(":", 1)[0] for line in lines] == ["80/tcp -> 0.0.0.0", "81/udp -> 0.0.0.0"], lines
        tcp_port = int(lines[0].rsplit(":", 1)[1])
        assert in_netns(d.netns, lambda: http_get("127.0.0.1", tcp_port)) == "hello-ports\n"
    finally:
        d.ok("rm", "-f", cid)


def test_containers_on_a_user_network_find_each_other_by_name(daemon_without_ipv6):
    d = daemon_without_ipv6
    network = "nov6" + secrets.token_hex(3)
    d.ok("network", "create", network)
    server = d.ok("run", "-d", "--network", network, "--name", f"{network}-srv", IMAGE, "sleep", "600").strip()
    try:
        answer = d.ok("run", "--rm", "--network", network, IMAGE, "nslookup", f"{network}-srv")
        assert d.ok("inspect", "-f", f"{{{{.NetworkSettings.Networks.{network}.IPAddress}}}}", server).strip() in answer
        assert d.ok("run", "--rm", "--network", network, IMAGE, "ping", "-c", "1", "-W", "5", f"{network}-srv")
    finally:
        d.cli("rm", "-f", server)
        d.cli("network", "rm", network)


def test_an_ipv6_network_is_refused_in_one_line_and_nothing_made(daemon_without_ipv6):
    d = daemon_without_ipv6
    before = d.ok("network", "ls", "-q").split()
    name = "nov6" + secrets.token_hex(3)
    for args in (["--ipv6"], ["--ipv6", "--subnet", str(random_ula_subnet())]):
        result = docker_cli(d, "network", "create", *args, name)
        assert result.returncode == 1
        assert result.stderr == ("Error response from daemon: cannot create an IPv6 network: IPv6 is disabled on "
                                 "this host (net.ipv6.conf.all.disable_ipv6=1)\n")
    assert d.ok("network", "ls", "-q").split() == before
    assert not [line for line in d.ip("-o", "link", "show", "type", "bridge").stdout.splitlines() if "mcbr-" in line]


if ROOTLESS:
    del test_a_port_published_on_every_address_is_on_0_0_0_0_only_and_served
    del test_publish_all_and_udp_show_no_ipv6_entry
    del test_containers_on_a_user_network_find_each_other_by_name
    del test_an_ipv6_network_is_refused_in_one_line_and_nothing_made
