"""The DNS server of user-defined networks: containers find each other by name.

One server per user-defined bridge network, on the network's gateway address,
UDP and TCP port 53 (Docker runs its own at 127.0.0.11 inside each container;
the issue puts ours on the gateway, which every container of the network
reaches without a rule in its namespace). A and AAAA queries for a container's
name, its aliases and its short id answer from that network's leases only
(NetworkService.resolve), so a container on another network gets nothing.
Every other query is forwarded, as is, to the upstream resolvers:

- `MINICTR_DNS_FORWARD` (`IP[:PORT],…`; empty: forward nothing, answer
  SERVFAIL), which the tests point at a resolver of their own on loopback, or
- the nameservers of the host's /etc/resolv.conf.

The daemon forwards itself, so a loopback resolver of the host (systemd's
127.0.0.53), which no container could reach, works as well. The rootless
daemon's network namespace is not the host's: it asks the wrapper in the
host's namespaces for a TCP connection (hostsocket.py) and forwards
over TCP, which needs no route out of its namespace; a non-loopback upstream
is first tried over UDP directly (slirp4netns's outbound path, when present).

dnslib is imported lazily: the daemon loads this module only when it serves a
network.
"""

import asyncio
import ipaddress
import logging
import socket
import struct

from minictr import hostsocket

log = logging.getLogger("minictr.dns")

DNS_PORT = 53
FORWARD_ENV = "MINICTR_DNS_FORWARD"
TTL = 600  # Docker's embedded server answers with 600 too
FORWARD_TIMEOUT = 3.0  # per upstream and try; glibc's resolver itself gives up after 5 s
_UDP_PLAIN_LIMIT = 512  # a UDP answer without EDNS0 (RFC 1035 4.2.1)
_TCP_MAX = 65535
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


# --- upstreams ---------------------------------------------------------------------------------

def parse_upstreams(text):
    """`IP[:PORT],…` (IPv6 as `[IP]:PORT`) -> [(ip, port)]; InvalidArgument-free: bad entries are skipped with a warning."""
    upstreams = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, port = item, DNS_PORT
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else DNS_PORT
        elif item.count(":") == 1:
            host, port_text = item.split(":")
            port = int(port_text) if port_text.isdigit() else -1
        try:
            ipaddress.ip_address(host)
        except ValueError:
            log.warning("%s: %r is not an IP address: ignored", FORWARD_ENV, item)
            continue
        if not 0 < port < 65536:
            log.warning("%s: %r has no valid port: ignored", FORWARD_ENV, item)
            continue
        upstreams.append((host, port))
    return upstreams


def resolv_conf_nameservers(path="/etc/resolv.conf"):
    """The nameservers of a resolv.conf, in order ([] if it is missing)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    servers = []
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            host = words[1].split("%", 1)[0]  # fe80::1%eth0: the zone means nothing to us
            try:
                ipaddress.ip_address(host)
            except ValueError:
                continue
            servers.append((host, DNS_PORT))
    return servers


def default_upstreams(forward=None):
    """Where names the networks do not know are forwarded: `forward` (MINICTR_DNS_FORWARD's value,
    None when it is unset), else the host's resolvers."""
    if forward is not None:
        return parse_upstreams(forward)
    return resolv_conf_nameservers()


def _is_loopback(host):
    return ipaddress.ip_address(host).is_loopback


# --- forwarding --------------------------------------------------------------------------------

class _OneAnswer(asyncio.DatagramProtocol):
    """A connected UDP socket waiting for the answer whose id is the query's."""

    def __init__(self, query_id):
        self.query_id = query_id
        self.answer = asyncio.get_running_loop().create_future()

    def datagram_received(self, data, addr):
        if len(data) >= 2 and data[:2] == self.query_id and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc):
        if not self.answer.done():
            self.answer.set_exception(exc)


async def _read_tcp_message(reader):
    (length,) = struct.unpack("!H", await reader.readexactly(2))
    return await reader.readexactly(length)


class Forwarder:
    """Sends a query on to the upstream resolvers, in order, and returns the first answer (None: none came)."""

    def __init__(self, upstreams, connect_socket=None, timeout=FORWARD_TIMEOUT):
        self.upstreams = list(upstreams)
        self.connect_socket = connect_socket  # the rootless wrapper's hostsocket channel, or None
        self.timeout = timeout

    async def forward(self, query, tcp=False):
        for host, port in self.upstreams:
            for attempt in self._attempts(host, tcp):
                try:
                    answer = await asyncio.wait_for(attempt(host, port, query), self.timeout)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, struct.error) as error:
                    log.debug("forward to %s:%d: %s", host, port, error or type(error).__name__)
                    continue
                if answer[:2] == query[:2]:
                    return answer
        return None

    def _attempts(self, host, tcp):
        if self.connect_socket:  # rootless: the host's resolvers are outside our network namespace
            if _is_loopback(host):
                return [self._via_host_tcp]
            return [self._tcp, self._via_host_tcp] if tcp else [self._udp, self._via_host_tcp]
        return [self._tcp] if tcp else [self._udp]

    async def _udp(self, host, port, query):
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _OneAnswer(query[:2]), remote_addr=(host, port), family=family)
        try:
            transport.sendto(query)
            return await protocol.answer
        finally:
            transport.close()

    async def _tcp(self, host, port, query):
        reader, writer = await asyncio.open_connection(host, port)
        return await self._exchange(reader, writer, query)

    async def _via_host_tcp(self, host, port, query):
        sock = await asyncio.to_thread(hostsocket.connect, self.connect_socket, host, port, self.timeout)
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        return await self._exchange(reader, writer, query)

    @staticmethod
    async def _exchange(reader, writer, query):
        try:
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            return await _read_tcp_message(reader)
        finally:
            writer.close()


# --- answering ---------------------------------------------------------------------------------

class Resolver:
    """The answer to one query on one network: from the network's containers, else from upstream.

    `lookup(network_id, name, client)` returns the addresses (strings) of the container named
    `name` (its name, an alias or its short id) on that network, as the container at address
    `client` sees them (its links); `forwarder` has `forward(bytes, tcp)`."""

    def __init__(self, lookup, forwarder):
        self.lookup = lookup
        self.forwarder = forwarder

    async def answer(self, network_id, data, tcp=False, client=None):
        """The bytes to send back for the query `data` from address `client`, or None to drop it
        (not even a header)."""
        from dnslib import DNSError, DNSRecord, QTYPE, RCODE

        try:
            request = DNSRecord.parse(data)
        except (DNSError, struct.error, IndexError, ValueError, UnicodeDecodeError):
            return _format_error(data)
        if request.header.qr:
            return None  # an answer sent to us: never answer an answer
        if request.header.opcode != 0 or len(request.questions) != 1:
            return _reply(request, RCODE.NOTIMP if request.header.opcode != 0 else RCODE.FORMERR).pack()
        question = request.q
        name = str(question.qname).rstrip(".")
        if question.qclass == 1 and question.qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.ANY) and name:
            # Names are case-insensitive (RFC 4343): as asked, then lower-case (`WEB` finds `web`).
            addresses = self._local(network_id, name, client) or \
                (name != name.lower() and self._local(network_id, name.lower(), client))
            if addresses:
                return _fit(self._local_answer(request, name, question.qtype, addresses), request, tcp)
        answer = await self.forwarder.forward(data, tcp) if self.forwarder.upstreams else None
        if answer is None:
            return _fit(_reply(request, RCODE.SERVFAIL), request, tcp)
        return answer if tcp or len(answer) <= _udp_limit(request) else _fit_bytes(answer, request)

    def _local(self, network_id, name, client):
        try:
            return list(self.lookup(network_id, name, client) or [])
        except Exception:  # a broken lookup must not take the server down; the query is forwarded
            log.exception("resolve %r on network %s", name, network_id)
            return []

    @staticmethod
    def _local_answer(request, name, qtype, addresses):
        from dnslib import AAAA, QTYPE, RR, A

        reply = _reply(request)
        reply.header.aa = 1
        for address in addresses:
            ip = ipaddress.ip_address(address)
            if ip.version == 4 and qtype in (QTYPE.A, QTYPE.ANY):
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(str(ip)), ttl=TTL))
            elif ip.version == 6 and qtype in (QTYPE.AAAA, QTYPE.ANY):
                reply.add_answer(RR(request.q.qname, QTYPE.AAAA, rdata=AAAA(str(ip)), ttl=TTL))
        # A known name without an address of the asked family: NOERROR and no answer (NODATA),
        # so that the client does not go on to ask upstream about a container's name.
        return reply


def _reply(request, rcode=0):
    from dnslib import DNSHeader, DNSRecord

    header = DNSHeader(id=request.header.id, qr=1, ra=1, rd=request.header.rd, rcode=rcode)
    return DNSRecord(header, q=request.q if request.questions else None)


def _udp_limit(request):
    for record in request.ar:
        if record.rtype == 41:  # OPT: the client's UDP payload size (RFC 6891)
            return max(_UDP_PLAIN_LIMIT, min(int(record.rclass), _TCP_MAX))
    return _UDP_PLAIN_LIMIT


def _fit(reply, request, tcp):
    data = reply.pack()
    return data if tcp or len(data) <= _udp_limit(request) else _fit_bytes(data, request)


def _fit_bytes(answer, request):
    """An answer too long for UDP: the header with TC set and the question, so the client asks over TCP."""
    from dnslib import DNSRecord

    try:
        header = DNSRecord.parse(answer).header
    except Exception:
        header = None
    reply = _reply(request, header.rcode if header else 2)
    reply.header.tc = 1
    return reply.pack()


def _format_error(data):
    if len(data) < 12 or data[2] & 0x80:
        return None
    # id, QR set, opcode and RD kept, RCODE 1 (FORMERR), no sections
    return data[:2] + bytes([0x80 | (data[2] & 0x79), 0x01]) + bytes(8)


# --- serving -----------------------------------------------------------------------------------

class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, server):
        self.server = server
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.server.spawn(self._answer(data, addr))

    async def _answer(self, data, addr):
        answer = await self.server.resolver.answer(self.server.network_id, data, tcp=False, client=addr[0])
        if answer is not None and not self.transport.is_closing():
            self.transport.sendto(answer, addr)

    def error_received(self, exc):  # an ICMP error for an answer we sent: the client is gone
        pass


def _bound_socket(kind, address, port):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # The gateway's address may not be on the bridge yet (it comes with the network's first
        # container, or the bridge is being rebuilt at start): bind to it all the same.
        sock.setsockopt(socket.IPPROTO_IPV6 if family == socket.AF_INET6 else socket.IPPROTO_IP,
                        IP_FREEBIND if family == socket.AF_INET else 76, 1)  # 76: IPV6_FREEBIND
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(64)
    except OSError:
        sock.close()
        raise
    return sock


class NetworkDnsServer:
    """The DNS server of one network, on its gateway address, UDP and TCP."""

    def __init__(self, network_id, address, resolver, port=DNS_PORT):
        self.network_id = network_id
        self.address = address
        self.port = port
        self.resolver = resolver
        self._udp = None
        self._tcp = None
        self._tasks = set()

    async def start(self):
        """Bind both sockets (OSError if either cannot be: nothing is left listening)."""
        loop = asyncio.get_running_loop()
        udp_sock = _bound_socket(socket.SOCK_DGRAM, self.address, self.port)
        try:
            tcp_sock = _bound_socket(socket.SOCK_STREAM, self.address, self.port)
        except OSError:
            udp_sock.close()
            raise
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _UdpServer(self), sock=udp_sock)
        self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp_sock)

    def spawn(self, coroutine):
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_tcp(self, reader, writer):
        task = asyncio.current_task()
        self._tasks.add(task)
        client = (writer.get_extra_info("peername") or (None,))[0]
        try:
            while True:  # a client may send several queries on one connection (RFC 7766)
                query = await asyncio.wait_for(_read_tcp_message(reader), 10)
                answer = await self.resolver.answer(self.network_id, query, tcp=True, client=client)
                if answer is None:
                    break
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    def close(self):
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tasks):
            task.cancel()


class DnsService:
    """Starts and stops the DNS server of each user-defined network as networks come and go.

    `networks` is the NetworkService: `resolve(network_id, name)` for the answers. The service is
    told of networks through `network_created(network_id, gateway)` / `network_removed(network_id)`
    (hooks of the NetworkService) and `start(networks)` at daemon start; both may be called from
    any thread once `start` has run in the event loop."""

    def __init__(self, lookup, rootless, upstreams=None, port=DNS_PORT, connect_socket=None):
        self.rootless = rootless
        self.port = port
        forwarder = Forwarder(default_upstreams() if upstreams is None else upstreams,
                              connect_socket if rootless else None)
        self.resolver = Resolver(lookup, forwarder)
        self.servers = {}
        self._loop = None

    async def start(self, networks=()):
        """Serve each (network_id, gateway) of `networks`: the user-defined ones that exist at daemon start."""
        self._loop = asyncio.get_running_loop()
        for network_id, gateway in networks:
            await self._serve(network_id, gateway)

    async def _serve(self, network_id, gateway):
        if network_id in self.servers or not gateway:
            return
        server = NetworkDnsServer(network_id, str(gateway).split("/")[0], self.resolver, self.port)
        try:
            await server.start()
        except OSError as error:
            # The network still works by address; say why names do not.
            log.warning("network %s: no DNS server on %s:%d: %s", network_id[:12], gateway, self.port,
                        error.strerror or error)
            return
        self.servers[network_id] = server

    def _stop(self, network_id):
        server = self.servers.pop(network_id, None)
        if server is not None:
            server.close()

    def _call(self, function, *args):
        """Run `function(*args)` in the event loop, whichever thread we are called from."""
        if self._loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            result = function(*args)
            if asyncio.iscoroutine(result):
                self._loop.create_task(result)
            return
        if asyncio.iscoroutinefunction(function):
            asyncio.run_coroutine_threadsafe(function(*args), self._loop).result(10)
        else:
            self._loop.call_soon_threadsafe(function, *args)

    def network_created(self, network_id, gateway):
        """Hook: a user-defined network was created: serve names on its gateway."""
        self._call(self._serve, network_id, gateway)

    def network_removed(self, network_id):
        """Hook: a network was removed: its server stops."""
        self._call(self._stop, network_id)

    def close(self):
        for network_id in list(self.servers):
            self._stop(network_id)


async def serve_networks(networks, rootless, upstreams, connect_socket=None):
    """The daemon's DNS service, hooked to the NetworkService `networks`: a server for every
    user-defined network now, and for each one created from now on, until it is removed.
    `upstreams` (default_upstreams) get the other names; rootless, through `connect_socket`."""
    service = DnsService(networks.resolve, rootless, upstreams, connect_socket=connect_socket)
    networks.add_hook("on_network_created",
                      lambda network: service.network_created(network.id, network.gateway)
                      if network.user_defined else None)
    networks.add_hook("on_network_removed", lambda network: service.network_removed(network.id))
    await service.start(networks.gateway_addresses().items())
    return service
