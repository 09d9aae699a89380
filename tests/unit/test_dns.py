"""The networks' DNS server: names from one network's leases only, the rest forwarded upstream.

Upstream is always a resolver these tests run on loopback: nothing leaves the machine."""

import asyncio
import socket
import struct
import threading
import time

import pytest
from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer

from minictr.networks import dns

NET_A, NET_B = "a" * 64, "b" * 64
LEASES = {  # (network, name) -> addresses: what NetworkService.resolve answers
    (NET_A, "web"): ["10.89.0.2"],
    (NET_A, "www"): ["10.89.0.2"],  # web's alias
    (NET_A, "0123456789ab"): ["10.89.0.2"],  # web's short id
    (NET_A, "six"): ["fd00::5"],
    (NET_B, "db"): ["10.89.1.2"],
}


LINKS = {("127.0.0.1", "cache"): "db"}  # (client, alias) -> name: the client's endpoint links


def lookup(network_id, name, client=None):
    return LEASES.get((network_id, LINKS.get((client, name), name)), [])


class Upstream(BaseResolver):
    """A resolver on loopback: `example.test` has 192.0.2.7, everything else is NXDOMAIN."""

    def __init__(self):
        self.queries = []

    def resolve(self, request, handler):
        self.queries.append((str(request.q.qname), handler.protocol))
        reply = request.reply()
        if str(request.q.qname) == "example.test." and request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.7"), ttl=60))
        elif str(request.q.qname) == "big.test.":
            for i in range(60):
                reply.add_answer(RR(request.q.qname, QTYPE.AAAA, rdata=AAAA(f"2001:db8::{i + 1:x}"), ttl=60))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def free_port():
    """A port free on 127.0.0.1 for both UDP and TCP."""
    for _ in range(50):
        with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


@pytest.fixture
def upstream():
    resolver = Upstream()
    port = free_port()
    servers = [DNSServer(resolver, address="127.0.0.1", port=port, tcp=tcp) for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    resolver.address = ("127.0.0.1", port)
    yield resolver
    for server in servers:
        server.stop()
        server.server.server_close()


def ask(resolver, network, name, qtype="A", tcp=False):
    query = DNSRecord.question(name, qtype)
    answer = asyncio.run(resolver.answer(network, query.pack(), tcp))
    reply = DNSRecord.parse(answer)
    assert reply.header.id == query.header.id
    return reply


def addresses(reply):
    return sorted(str(rr.rdata) for rr in reply.rr)


def local_only():
    return dns.Resolver(lookup, dns.Forwarder([]))


def test_a_container_name_alias_and_short_id_resolve_on_their_network():
    resolver = local_only()
    for name in ("web", "www", "0123456789ab", "WEB.", "Www"):
        reply = ask(resolver, NET_A, name)
        assert reply.header.rcode == RCODE.NOERROR and addresses(reply) == ["10.89.0.2"], name
        assert reply.header.aa == 1 and reply.rr[0].ttl == dns.TTL


def test_names_of_another_network_do_not_resolve():
    resolver = local_only()
    assert ask(resolver, NET_B, "web").rr == []
    assert ask(resolver, NET_A, "db").rr == []
    assert addresses(ask(resolver, NET_B, "db")) == ["10.89.1.2"]


def test_aaaa_of_an_ipv4_container_is_an_empty_noerror_and_is_not_forwarded(upstream):
    resolver = dns.Resolver(lookup, dns.Forwarder([upstream.address]))
    reply = ask(resolver, NET_A, "web", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR and reply.rr == []
    assert upstream.queries == []
    assert addresses(ask(resolver, NET_A, "six", "AAAA")) == ["fd00::5"]


def test_unknown_names_are_forwarded_upstream_over_udp_and_tcp(upstream):
    resolver = dns.Resolver(lookup, dns.Forwarder([upstream.address]))
    assert addresses(ask(resolver, NET_A, "example.test")) == ["192.0.2.7"]
    assert addresses(ask(resolver, NET_A, "example.test", tcp=True)) == ["192.0.2.7"]
    assert upstream.queries == [("example.test.", "udp"), ("example.test.", "tcp")]


def test_a_name_upstream_does_not_know_is_nxdomain(upstream):
    resolver = dns.Resolver(lookup, dns.Forwarder([upstream.address]))
    assert ask(resolver, NET_A, "nowhere.test").header.rcode == RCODE.NXDOMAIN
    # and a name of another network is asked upstream, which knows nothing of it
    assert ask(resolver, NET_B, "web").header.rcode == RCODE.NXDOMAIN
    assert ("web.", "udp") in upstream.queries


def test_a_dead_upstream_is_skipped_for_the_next_one(upstream):
    dead = ("127.0.0.1", free_port())
    resolver = dns.Resolver(lookup, dns.Forwarder([dead, upstream.address], timeout=0.5))
    assert addresses(ask(resolver, NET_A, "example.test")) == ["192.0.2.7"]


def test_no_upstream_answering_is_servfail():
    dead = ("127.0.0.1", free_port())
    resolver = dns.Resolver(lookup, dns.Forwarder([dead], timeout=0.3))
    assert ask(resolver, NET_A, "example.test").header.rcode == RCODE.SERVFAIL
    assert ask(local_only(), NET_A, "example.test").header.rcode == RCODE.SERVFAIL


def test_an_upstream_answer_too_long_for_udp_is_truncated_and_whole_over_tcp(upstream):
    resolver = dns.Resolver(lookup, dns.Forwarder([upstream.address]))
    reply = ask(resolver, NET_A, "big.test", "AAAA")
    assert reply.header.tc == 1 and reply.rr == []
    assert len(ask(resolver, NET_A, "big.test", "AAAA", tcp=True).rr) == 60


def test_garbage_gets_formerr_or_nothing():
    resolver = local_only()
    answer = asyncio.run(resolver.answer(NET_A, b"\x12\x34" + b"\x01\x00" + b"\x00\x01" + bytes(6) + b"\xff"))
    assert answer[:2] == b"\x12\x34" and answer[3] & 0x0F == RCODE.FORMERR
    assert asyncio.run(resolver.answer(NET_A, b"\x01")) is None
    response = DNSRecord.question("web").reply().pack()  # an answer is never answered
    assert asyncio.run(resolver.answer(NET_A, response)) is None


def test_a_broken_lookup_does_not_take_the_server_down():
    def broken(network_id, name, client):
        raise RuntimeError("database is locked")

    assert ask(dns.Resolver(broken, dns.Forwarder([])), NET_A, "web").header.rcode == RCODE.SERVFAIL


# --- the server on a socket ------------------------------------------------------------------------

def udp_query(address, name, qtype="A"):
    query = DNSRecord.question(name, qtype)
    with socket.socket(type=socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(query.pack(), address)
        return DNSRecord.parse(sock.recv(4096))


def tcp_query(address, name, qtype="A"):
    with socket.create_connection(address, timeout=5) as sock:
        replies = []
        for n in (name, name):  # two queries on one connection
            data = DNSRecord.question(n, qtype).pack()
            sock.sendall(struct.pack("!H", len(data)) + data)
            (length,) = struct.unpack("!H", sock.recv(2, socket.MSG_WAITALL))
            replies.append(DNSRecord.parse(sock.recv(length, socket.MSG_WAITALL)))
        return replies[0]


class LoopThread:
    """An event loop in a thread, as the daemon's: the tests talk to its servers with plain sockets."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def call(self, function, *args):
        async def call():
            return function(*args)
        return self.run(call())

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def loop_thread():
    thread = LoopThread()
    yield thread
    thread.close()


def port_is_free(port):
    """Whether a new server could bind the port (UDP and TCP), within a second: transports close
    on the loop's next turn."""
    for _ in range(100):
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(type=kind) as sock:
                    if kind == socket.SOCK_STREAM:  # past TIME_WAIT, as a server does (for UDP it would share the port)
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind(("127.0.0.1", port))
        except OSError:
            time.sleep(0.01)
            continue
        return True
    return False


def test_the_service_serves_a_network_from_creation_to_removal(loop_thread, upstream):
    port = free_port()
    service = dns.DnsService(lookup, rootless=False, upstreams=[upstream.address], port=port)
    loop_thread.run(service.start([(NET_B, "127.0.0.1/24")]))
    try:
        assert addresses(udp_query(("127.0.0.1", port), "db")) == ["10.89.1.2"]
        assert udp_query(("127.0.0.1", port), "web").header.rcode == RCODE.NXDOMAIN
        service.network_removed(NET_B)  # from another thread, as the API's workers call hooks
        loop_thread.call(lambda: None)  # the loop has run the removal
        assert port_is_free(port)
        service.network_created(NET_A, "127.0.0.1")
        assert addresses(udp_query(("127.0.0.1", port), "www")) == ["10.89.0.2"]
        assert addresses(tcp_query(("127.0.0.1", port), "web")) == ["10.89.0.2"]
        assert addresses(tcp_query(("127.0.0.1", port), "example.test")) == ["192.0.2.7"]
    finally:
        loop_thread.call(service.close)
    assert port_is_free(port)


def test_a_port_taken_leaves_the_network_without_names_and_nothing_half_bound(loop_thread, caplog):
    port = free_port()
    with socket.socket() as taken:  # TCP taken, UDP free: the UDP socket must not stay bound
        taken.bind(("127.0.0.1", port))
        taken.listen()
        service = dns.DnsService(lookup, rootless=False, upstreams=[], port=port)
        loop_thread.run(service.start([(NET_A, "127.0.0.1")]))
        assert service.servers == {}
        assert "no DNS server on 127.0.0.1" in caplog.text
        with socket.socket(type=socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", port))


def test_a_gateway_not_yet_on_any_interface_can_be_served(loop_thread):
    # The bridge gets its address with the network's first container: bind before that.
    port = free_port()
    server = dns.NetworkDnsServer(NET_A, "10.254.254.254", local_only(), port)
    loop_thread.run(server.start())
    loop_thread.call(server.close)


# --- upstreams -------------------------------------------------------------------------------------

def test_forward_setting_is_parsed_and_bad_entries_skipped():
    assert dns.parse_upstreams("127.0.0.1:5353, 10.0.2.3,[::1]:53,[fd00::1]") == [
        ("127.0.0.1", 5353), ("10.0.2.3", 53), ("::1", 53), ("fd00::1", 53)]
    assert dns.parse_upstreams("") == []
    assert dns.parse_upstreams("dns.example:53,1.2.3.4:x,1.1.1.1:99999") == []


def test_nameservers_are_read_from_resolv_conf(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# generated\nsearch example.test\nnameserver 127.0.0.53\n"
                    "nameserver fe80::1%eth0 # link-local\noptions edns0\nnameserver bogus\n")
    assert dns.resolv_conf_nameservers(str(conf)) == [("127.0.0.53", 53), ("fe80::1", 53)]
    assert dns.resolv_conf_nameservers(str(tmp_path / "missing")) == []


def test_the_forward_setting_overrides_resolv_conf():
    assert dns.default_upstreams("127.0.0.1:5300") == [("127.0.0.1", 5300)]
    assert dns.default_upstreams("") == []


def test_rootless_forwards_to_a_loopback_resolver_through_the_wrappers_connections(upstream, tmp_path):
    # The rootless daemon's namespace has no route to the host's loopback: the wrapper connects.
    from minictr import hostsocket

    path = str(tmp_path / "connect.sock")
    listener = hostsocket.serve_in_thread(path)
    try:
        resolver = dns.Resolver(lookup, dns.Forwarder([upstream.address], connect_socket=path))
        assert addresses(ask(resolver, NET_A, "example.test")) == ["192.0.2.7"]
        assert upstream.queries == [("example.test.", "tcp")]
    finally:
        listener.close()


def test_a_link_alias_resolves_only_for_the_container_that_has_the_link(loop_thread, upstream):
    port = free_port()
    service = dns.DnsService(lookup, rootless=False, upstreams=[upstream.address], port=port)
    loop_thread.run(service.start([(NET_B, "127.0.0.1")]))
    try:
        # The server asks with the address the query came from (here 127.0.0.1), UDP and TCP alike.
        assert addresses(udp_query(("127.0.0.1", port), "cache")) == ["10.89.1.2"]
        assert addresses(tcp_query(("127.0.0.1", port), "cache")) == ["10.89.1.2"]
    finally:
        loop_thread.call(service.close)
    other = dns.Resolver(lookup, dns.Forwarder([upstream.address]))
    reply = DNSRecord.parse(asyncio.run(other.answer(NET_B, DNSRecord.question("cache").pack(), client="127.0.0.2")))
    assert reply.header.rcode == RCODE.NXDOMAIN  # forwarded: the alias is no name for anyone else
