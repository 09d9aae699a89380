"""Containers on a user-defined network find each other by name through the daemon's DNS server.

Names the network does not know are forwarded only to the resolver this module runs on loopback
(conftest's DNS_UPSTREAM, the daemons' MINICTR_DNS_FORWARD), in the daemon's network namespace: nothing leaves
the machine. The daemon is net_daemon: as root in a network namespace of its own (Docker's FORWARD drop)."""

import secrets

import pytest
from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSServer

from tests.integration.conftest import DNS_UPSTREAM, in_netns, inspect

HTTPD = "mkdir -p /www && echo served-by-$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"


class Upstream(BaseResolver):
    """`outside.test` is 192.0.2.44; every other name NXDOMAIN."""

    def __init__(self):
        self.names = []

    def resolve(self, request, handler):
        self.names.append(str(request.q.qname))
        reply = request.reply()
        if str(request.q.qname) == "outside.test." and request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.44"), ttl=60))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@pytest.fixture
def upstream(net_daemon):
    """The resolver on DNS_UPSTREAM's loopback port, in the daemon's network namespace (net_daemon's own
    as root: its sockets are made by a thread that joined it; rootless, the host's, where the daemon's
    forwarder reaches it)."""
    resolver = Upstream()

    def make():
        return [DNSServer(resolver, address=DNS_UPSTREAM[0], port=DNS_UPSTREAM[1], tcp=tcp) for tcp in (False, True)]

    servers = in_netns(net_daemon.netns, make) if net_daemon.netns else make()
    for server in servers:
        server.start_thread()
    yield resolver
    for server in servers:
        server.stop()
        server.server.server_close()


@pytest.fixture
def networks(net_daemon):
    """Makes networks and containers with unique names; removes them all, even when the test fails."""
    made = {"networks": [], "containers": []}
    tag = secrets.token_hex(3)

    def network(name):
        full = f"dns-{name}-{tag}"
        net_daemon.ok("network", "create", full)
        made["networks"].append(full)
        return full

    def container(name, *args):
        full = f"{name}-{tag}"
        made["containers"].append(full)
        return full, net_daemon.ok("run", "-d", "--name", full, *args).strip()

    yield network, container
    if made["containers"]:
        net_daemon.cli("rm", "-f", *made["containers"])
    for name in made["networks"]:
        net_daemon.cli("network", "rm", name)


def http_get(host):
    # busybox's static wget crashes (SIGSEGV) on this busybox build, even on the host: HTTP by hand.
    return f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} 8080"


def sh(net_daemon, network, image, script, *options):
    return net_daemon.cli("run", "--rm", "--network", network, *options, image, "sh", "-c", script, timeout=90)


def test_containers_reach_each_other_by_name_alias_and_short_id(net_daemon, image, networks, upstream):
    network, container = networks
    net = network("one")
    web, web_id = container("web", "--network", net, "--network-alias", "www", image, "sh", "-c", HTTPD)
    served = f"served-by-{web_id[:12]}"
    for host in (web, "www", web_id[:12]):
        result = sh(net_daemon, net, image, f"ping -c1 -W5 {host} && {http_get(host)}")
        assert result.returncode == 0 and served in result.stdout, (host, result.stdout, result.stderr)
    address = inspect(net_daemon, web)["NetworkSettings"]["Networks"][net]["IPAddress"]
    looked_up = sh(net_daemon, net, image, f"nslookup {web}")
    assert address in looked_up.stdout, looked_up.stdout + looked_up.stderr
    assert upstream.names == [] or all(web not in n and "www" not in n for n in upstream.names)


def test_a_container_on_another_network_cannot_resolve_them(net_daemon, image, networks, upstream):
    network, container = networks
    net, other = network("one"), network("two")
    web, _ = container("web", "--network", net, "--network-alias", "www", image, "sh", "-c", HTTPD)
    for host in (web, "www"):
        result = sh(net_daemon, other, image, http_get(host))
        assert result.returncode != 0 and "served-by" not in result.stdout, result.stdout
        assert "bad address" in result.stderr, result.stderr


def test_a_name_is_gone_once_its_container_is(net_daemon, image, networks, upstream):
    network, container = networks
    net = network("one")
    web, _ = container("web", "--network", net, image, "sleep", "600")
    address = inspect(net_daemon, web)["NetworkSettings"]["Networks"][net]["IPAddress"]
    assert address in sh(net_daemon, net, image, f"nslookup {web}").stdout
    net_daemon.ok("rm", "-f", web)
    result = sh(net_daemon, net, image, f"nslookup {web}")
    assert result.returncode != 0 and address not in result.stdout, result.stdout


def test_an_alias_given_by_connect_resolves_on_that_network(net_daemon, image, networks, upstream):
    network, container = networks
    net, other = network("one"), network("two")
    web, web_id = container("web", "--network", other, image, "sh", "-c", HTTPD)
    net_daemon.ok("network", "connect", "--alias", "api", net, web)
    result = sh(net_daemon, net, image, http_get("api"))
    assert f"served-by-{web_id[:12]}" in result.stdout, result.stdout + result.stderr
    net_daemon.ok("network", "disconnect", net, web)
    assert sh(net_daemon, net, image, http_get("api")).returncode != 0


def test_other_names_are_forwarded_to_the_hosts_resolver(net_daemon, image, networks, upstream):
    network, _ = networks
    net = network("one")
    result = sh(net_daemon, net, image, "nslookup outside.test")
    assert "192.0.2.44" in result.stdout, result.stdout + result.stderr
    assert "outside.test." in upstream.names
    missing = sh(net_daemon, net, image, "nslookup nowhere.test")
    assert missing.returncode != 0 and "192.0.2.44" not in missing.stdout
