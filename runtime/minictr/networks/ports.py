"""Published ports: `-p [IP:]HOST:CONTAINER[/proto]`, `-P`, and the listeners that serve them.

spec/ports.py parses the user's specs into Docker's `ExposedPorts` and
`HostConfig.PortBindings` and checks those; this module serves them.

Serving: every binding gets a socket on the host. As root the daemon binds it
itself. Rootless, the daemon's network namespace is not the host's, so the
wrapper (still in the host's namespaces) binds it and hands the bound socket
over with SCM_RIGHTS (hostsocket.py, `listen`); a socket keeps the
namespace it was made in, so every connection accepted from it comes from the
host. Handing the listener over once rather than each accepted connection
saves a round trip per connection, and the listener dies with the daemon.

The daemon connects to the container from its own namespace, through the
bridge, as root (as Docker's proxy: the container sees the gateway's address);
rootless from inside the container's namespace, to the container's own
address, as Podman's rootlessport does: that connection goes over the
container's loopback (MTU 64 KiB) instead of the veth (1500) and the rootless
namespace's conntrack. TCP bytes are copied in C (native/forward.c: a thread
per direction, no GIL; why a copy and not splice is said there); UDP goes
through a relay with a connected socket per client address, dropped after
UDP_IDLE_SECONDS of silence.

As root, TCP clients on the host itself do not reach the listener: the kernel DNATs them to the
container (outbound.py, `Outbound.publish`), one connection instead of two. The rules are written
in the background; a client that comes before them is served by the listener all the same.
"""

from __future__ import annotations

import errno
import logging
import os
import socket

from minictr import hostsocket
from minictr.errors import Conflict, InvalidArgument, MinictrError
from minictr.spec.ports import wanted_bindings

log = logging.getLogger("minictr.ports")

UDP_IDLE_SECONDS = 90  # as Docker's userland proxy
CONNECT_TIMEOUT = 10
_MAX_DATAGRAM = 65535


def ports_view(exposed_ports: dict | None, published: list[dict]) -> dict:
    """NetworkSettings.Ports as Docker shows it: every exposed port, None when not published."""
    view = {key: None for key in exposed_ports or {}}
    for p in published:
        view.setdefault(f"{p['container_port']}/{p['proto']}", None)
        key = f"{p['container_port']}/{p['proto']}"
        view[key] = (view[key] or []) + [{"HostIp": p["host_ip"], "HostPort": str(p["host_port"])}]
    return view


def ports_list(exposed_ports: dict | None, published: list[dict]) -> list[dict]:
    """The `Ports` of GET /containers/json."""
    out = [{"IP": p["host_ip"], "PrivatePort": p["container_port"], "PublicPort": p["host_port"],
            "Type": p["proto"]} for p in published]
    done = {(p["container_port"], p["proto"]) for p in published}
    for key in exposed_ports or {}:
        port, _, proto = key.partition("/")
        if port.isdigit() and (int(port), proto or "tcp") not in done:
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    return out


# ---- sockets on the host ----

def _open_netns(pid: int) -> int:
    """The network namespace of process `pid`, or -1 if it is gone (a container that has already
    ended: connections then fail as they would from the daemon's namespace)."""
    from minictr.networks import plumbing

    try:
        return plumbing.open_netns(pid)
    except OSError as error:
        log.debug("network namespace of %d: %s", pid, error)
        return -1


def group_of(container_id: str) -> int:
    """The forwarder's group number of a container (its id's first 60 bits)."""
    return int(container_id[:15], 16)


def _overlap(a: str, b: str) -> bool:
    """Whether listeners on addresses a and b (one port) collide: one family, and one of them
    the wildcard or both the same address."""
    if (":" in a) != (":" in b):
        return False
    return a == b or {a, b} & {"0.0.0.0", "::"} != set()


def _bind_error(error: OSError, host_ip: str, host_port: int) -> MinictrError:
    where = f"{host_ip}:{host_port}" if ":" not in host_ip else f"[{host_ip}]:{host_port}"
    if error.errno == errno.EADDRINUSE:
        return Conflict(f"Bind for {where} failed: port is already allocated")
    if error.errno == errno.EACCES and host_port < 1024:
        return MinictrError(f"Bind for {where} failed: permission denied (ports below "
                            "net.ipv4.ip_unprivileged_port_start need root)")
    if error.errno == errno.EADDRNOTAVAIL:
        return InvalidArgument(f"Bind for {where} failed: cannot assign requested address")
    return MinictrError(f"Bind for {where} failed: {os.strerror(error.errno) if error.errno else error}")


class _Published:
    """One container's listeners and the tasks serving them."""

    def __init__(self, container_id: str):
        self.container_id = container_id
        self.group = group_of(container_id)
        self.entries: list[dict] = []
        self.sockets: list[socket.socket] = []
        self.tasks: list[asyncio.Task] = []
        self.relays: list["_UdpRelay"] = []
        self.netns = -1  # rootless: the container's network namespace, where connections to it are made
        self.inside: list[tuple[socket.socket, dict]] = []  # rootless: listeners in the daemon's namespace

    def add(self, sock, container_port, proto, host_ip):
        self.sockets.append(sock)
        self.entries.append({"container_port": container_port, "proto": proto, "host_ip": host_ip,
                             "host_port": sock.getsockname()[1]})

    def close(self):
        for sock in self.sockets + [sock for sock, _ in self.inside]:
            sock.close()
        if self.netns >= 0:
            os.close(self.netns)
            self.netns = -1


class PortPublisher:
    """Serves every running container's published ports (one per daemon)."""

    def __init__(self, bind=hostsocket.bind, inside=False):
        # bind(proto, host_ip, host_port) -> socket; rootless: hostsocket.listen through the wrapper.
        self._bind = bind
        # Rootless: a port published on every address listens in the daemon's namespace too, where
        # containers reach it through their gateway, as rootless Docker's proxy listens in RootlessKit's
        # (Testcontainers inside a container connects to gateway:port).
        self._inside = inside
        self._published: dict[str, _Published] = {}

    async def publish(self, container_id: str, target_ip: str, wanted: list[tuple[int, str, str, int]],
                      inside_pid: int = 0) -> list[dict]:
        """Bind every wanted port, then serve them to target_ip; all or nothing.

        inside_pid: connect to the container from the network namespace of that process (the
        container's own) rather than from the daemon's. Returns the published entries
        ({container_port, proto, host_ip, host_port}), which ports_view/ports_list turn into
        Docker's shapes. Raises Conflict for a taken port.
        """
        self.release(container_id)
        pub = _Published(container_id)
        try:
            if inside_pid:
                pub.netns = _open_netns(inside_pid)
            ipv6 = any(not host_ip for _, _, host_ip, _ in wanted) and await self._ipv6_listenable()
            for container_port, proto, host_ip, host_port in wanted:
                sock = await self._bind_one(proto, host_ip or "0.0.0.0", host_port)
                pub.add(sock, container_port, proto, host_ip or "0.0.0.0")
                if not host_ip and ipv6:
                    sock = await self._bind_ipv6_too(proto, sock.getsockname()[1], explicit=bool(host_port))
                    if sock is not None:
                        pub.add(sock, container_port, proto, "::")
            if self._inside:
                await self._bind_inside(pub)
        except BaseException:
            pub.close()
            raise
        for sock, entry in [*zip(pub.sockets, pub.entries), *pub.inside]:
            self._serve(pub, sock, (target_ip, entry["container_port"]), entry["proto"])
        self._published[container_id] = pub
        return list(pub.entries)

    @staticmethod
    async def _bind_inside(pub):
        """The daemon's own 0.0.0.0:port beside each IPv4 any-address entry; a port taken there (by a
        --network host container) is left to the host's listener alone."""
        import asyncio
        for entry in [e for e in pub.entries if e["host_ip"] == "0.0.0.0"]:
            try:
                sock = await asyncio.to_thread(hostsocket.bind, entry["proto"], "0.0.0.0", entry["host_port"])
            except OSError as error:
                log.debug("port %d/%s in the daemon's namespace: %s", entry["host_port"], entry["proto"], error)
                continue
            sock.setblocking(False)
            pub.inside.append((sock, entry))

    async def _ipv6_listenable(self):
        """Whether the host listens on IPv6 at all, as Docker decides it (netutils.IsV6Listenable:
        can [::1] be bound?). With IPv6 disabled (net.ipv6.conf.all.disable_ipv6=1, usual in CI
        containers) [::] can still be bound, but nothing reaches it: Docker publishes on 0.0.0.0
        only, and shows no [::] in `docker port`; so do we."""
        import asyncio
        try:
            probe = await asyncio.to_thread(self._bind, "tcp", "::1", 0)
        except (OSError, MinictrError) as error:
            log.debug("no IPv6 on this host: [::1] cannot be bound: %s", error)
            return False
        probe.close()
        return True

    async def _bind_ipv6_too(self, proto, host_port, explicit):
        """[::]:host_port beside 0.0.0.0's; None where the host has no IPv6, or when a port picked
        for the container is taken there (another is not sought: the IPv4 one is what counts)."""
        try:
            return await self._bind_one(proto, "::", host_port)
        except Conflict:
            if explicit:
                raise
            return None
        except MinictrError as error:
            log.debug("no [::]:%d beside 0.0.0.0: %s", host_port, error)
            return None

    async def _bind_one(self, proto, host_ip, host_port):
        import asyncio
        if host_port and any(e["proto"] == proto and e["host_port"] == host_port and _overlap(e["host_ip"], host_ip)
                             for other in self._published.values() for e in other.entries):
            raise _bind_error(OSError(errno.EADDRINUSE, ""), host_ip, host_port)
        try:
            sock = await asyncio.to_thread(self._bind, proto, host_ip, host_port)
        except OSError as error:
            raise _bind_error(error, host_ip, host_port) from None
        sock.setblocking(False)
        return sock

    def _serve(self, pub, sock, target, proto):
        import asyncio
        if proto == "tcp":
            pub.tasks.append(asyncio.get_running_loop().create_task(self._accept_loop(pub, sock, target)))
        else:
            relay = _UdpRelay(sock, target)
            pub.relays.append(relay)
            pub.tasks.append(asyncio.get_running_loop().create_task(relay.run()))

    async def _accept_loop(self, pub, listener, target):
        import asyncio
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(listener)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    await asyncio.sleep(0.1)  # out of fds: let some close instead of spinning
                    continue
                if listener.fileno() < 0:
                    return
                log.warning("accept on %s: %s", listener.getsockname(), error)
                continue
            loop.create_task(self._forward(pub, client, target))

    async def _forward(self, pub, client, target):
        import asyncio
        from minictr import native

        family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
        try:
            upstream = await self._upstream_socket(pub, family)
        except OSError as error:
            log.debug("port %s: %s", target, error)
            client.close()
            return
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(upstream, target), CONNECT_TIMEOUT)
            if pub.container_id not in self._published:
                raise ConnectionAbortedError("released")
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            native.forward_start(client.fileno(), upstream.fileno(), pub.group)
        except (OSError, asyncio.TimeoutError) as error:
            log.debug("port %s: %s", target, error)
            client.close()
            upstream.close()
            return
        client.detach()  # the forwarder's threads own and close them now
        upstream.detach()

    @staticmethod
    async def _upstream_socket(pub, family):
        def make():
            return socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        if pub.netns < 0:
            return make()
        import asyncio
        from minictr.networks import plumbing

        return await asyncio.to_thread(plumbing.in_netns, pub.netns, make)

    def release(self, container_id: str) -> None:
        """Close the container's listeners and end its connections (stop, kill -9, remove)."""
        pub = self._published.pop(container_id, None)
        if pub is None:
            return
        for task in pub.tasks:
            task.cancel()
        for relay in pub.relays:
            relay.close()
        pub.close()
        from minictr import native

        native.forward_shutdown_group(pub.group)

    def published(self, container_id: str) -> list[dict]:
        pub = self._published.get(container_id)
        return list(pub.entries) if pub else []

    def release_all(self) -> None:
        for container_id in list(self._published):
            self.release(container_id)


class _UdpRelay:
    """A published UDP port: a connected socket to the container per client address."""

    def __init__(self, listener: socket.socket, target: tuple[str, int]):
        self.listener = listener
        self.target = target
        self.sessions: dict[tuple, tuple[socket.socket, asyncio.Task]] = {}
        self.last_seen: dict[tuple, float] = {}

    async def run(self):
        import asyncio
        loop = asyncio.get_running_loop()
        while True:
            try:
                data, peer = await loop.sock_recvfrom(self.listener, _MAX_DATAGRAM)
            except OSError:
                if self.listener.fileno() < 0:
                    return
                continue
            session = self.sessions.get(peer)
            if session is None:
                session = self._open(peer)
                if session is None:
                    continue
            self.last_seen[peer] = loop.time()
            try:
                session[0].send(data)
            except (BlockingIOError, ConnectionRefusedError):
                pass  # UDP: dropped, as the kernel would
            except OSError as error:
                log.debug("udp %s -> %s: %s", peer, self.target, error)

    def _open(self, peer):
        import asyncio
        upstream = socket.socket(socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET,
                                 socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        try:
            upstream.connect(self.target)
        except OSError as error:
            log.debug("udp connect %s: %s", self.target, error)
            upstream.close()
            return None
        task = asyncio.get_running_loop().create_task(self._replies(peer, upstream))
        self.sessions[peer] = (upstream, task)
        return self.sessions[peer]

    async def _replies(self, peer, upstream):
        import asyncio
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    data = await asyncio.wait_for(loop.sock_recv(upstream, _MAX_DATAGRAM), UDP_IDLE_SECONDS)
                except ConnectionRefusedError:
                    continue  # nothing listening in the container (yet): an ICMP error, not the end
                except asyncio.TimeoutError:
                    if loop.time() - self.last_seen.get(peer, 0) < UDP_IDLE_SECONDS:
                        continue  # the client is still sending
                    return
                except OSError:
                    return
                try:
                    self.listener.sendto(data, peer)
                except BlockingIOError:
                    pass
                except OSError:
                    return
        finally:
            if self.sessions.get(peer, (None,))[0] is upstream:
                del self.sessions[peer]
                self.last_seen.pop(peer, None)
            upstream.close()

    def close(self):
        for upstream, task in list(self.sessions.values()):
            task.cancel()
            upstream.close()
        self.sessions.clear()


def host_binder(connect_socket: str | None):
    """How this daemon binds host ports: itself as root; rootless, through its wrapper's socket."""
    if connect_socket:
        return lambda proto, host_ip, host_port: hostsocket.listen(connect_socket, proto, host_ip, host_port)
    return hostsocket.bind


class ContainerPorts:
    """The container service's side of published ports (one per daemon).

    `container_started` after the network is up (raises, with nothing bound, for a taken port:
    the caller then undoes the start); `container_stopped` when it ends (kill -9 included) or its
    start fails; `settings`/`list_entry` for inspect's NetworkSettings.Ports and `ps`.
    A daemon restart re-publishes for the containers still running (`container_started` again).
    """

    def __init__(self, publisher: PortPublisher | None = None, rootless: bool = False,
                 connect_socket: str | None = None, kernel=None, default_binding_ip=None):
        self.publisher = publisher or PortPublisher(host_binder(connect_socket if rootless else None), inside=rootless)
        self.rootless = rootless
        self.kernel = kernel  # root: the daemon's Outbound, which DNATs local clients
        # network id -> host address of bindings that name none (its host_binding_ipv4 option, '': all)
        self.default_binding_ip = default_binding_ip or (lambda network_id: "")
        self._rules = None  # one thread, so that a container's rules come and go in order

    def _kernel_forwarding(self, container_id, ports):
        if self.kernel is None:
            return
        if self._rules is None:
            from concurrent.futures import ThreadPoolExecutor

            self._rules = ThreadPoolExecutor(1, thread_name_prefix="port-rules")
        self._rules.submit(self._publish_in_kernel, container_id, ports)

    def _publish_in_kernel(self, container_id, ports):
        try:
            self.kernel.publish(container_id, ports)
        except Exception as e:  # noqa: BLE001 - the listener serves local clients too
            log.warning("published ports of %s for local clients through the daemon: %s", container_id[:12], e)

    async def container_started(self, container, network_settings: dict) -> None:
        """Publish the container's ports to its first network address with a gateway (from
        NetworkService.settings): as Docker's, an --internal network's endpoint has none, and a container
        only on such networks publishes nothing (nothing from outside reaches it)."""
        wanted = wanted_bindings(container.host_config, container.config.get("ExposedPorts"))
        if not wanted:
            return
        endpoint = next((n for n in (network_settings.get("Networks") or {}).values()
                         if n.get("IPAddress") and n.get("Gateway")), {})
        ip = endpoint.get("IPAddress", "")
        if not ip:  # --network none/host/container: or only --internal networks: Docker discards them too
            log.info("%s: published ports discarded: the container has no bridge address with a way out",
                     container.id[:12])
            return
        default_ip = self.default_binding_ip(endpoint.get("NetworkID", ""))
        if default_ip:
            wanted = [(port, proto, host_ip or default_ip, host_port) for port, proto, host_ip, host_port in wanted]
        try:
            entries = await self.publisher.publish(container.id, ip, wanted,
                                                   inside_pid=container.pid if self.rootless else 0)
        except MinictrError as error:
            raise type(error)(f"driver failed programming external connectivity on endpoint "
                              f"{container.name}: {error}") from None
        self._kernel_forwarding(container.id, [(e["host_ip"], e["host_port"], ip, e["container_port"])
                                               for e in entries if e["proto"] == "tcp" and "." in ip
                                               and "." in e["host_ip"]])  # [::] clients: the listener

    async def restore(self, running) -> None:
        """At the daemon's start: publish again for the containers still running (live restore);
        `running` gives (container, NetworkService.settings(container)) pairs."""
        for container, network_settings in running:
            try:
                await self.container_started(container, network_settings)
            except MinictrError as error:
                log.warning("%s: %s", container.name, error)

    def container_stopped(self, container_id: str) -> None:
        self.publisher.release(container_id)
        self._kernel_forwarding(container_id, [])

    def settings(self, container) -> dict:
        return {"Ports": ports_view(container.config.get("ExposedPorts"), self.publisher.published(container.id))}

    def list_entry(self, container) -> list[dict]:
        return ports_list(container.config.get("ExposedPorts"), self.publisher.published(container.id))
