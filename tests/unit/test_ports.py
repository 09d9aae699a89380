"""Published ports without containers: the views, the forwarder, the publisher and the
wrapper's listener hand-off, all against sockets on 127.0.0.1."""

import asyncio
import errno
import os
import socket
import threading
import time

import pytest

from minictr import native
from minictr import hostsocket
from minictr.errors import Conflict
from minictr.networks import ports


def test_ports_view_shows_unpublished_exposed_ports_as_null():
    published = [{"container_port": 80, "proto": "tcp", "host_ip": "0.0.0.0", "host_port": 32768}]
    assert ports.ports_view({"80/tcp": {}, "81/tcp": {}}, published) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}], "81/tcp": None}
    assert ports.ports_list({"81/tcp": {}}, published) == [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 32768, "Type": "tcp"},
        {"PrivatePort": 81, "Type": "tcp"}]


# ---- a "container": servers on 127.0.0.1 ----

def _tcp_server(handler):
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server


def _echo(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def _count(conn, results):
    total = 0
    with conn:
        while data := conn.recv(1 << 20):
            total += len(data)
        conn.sendall(str(total).encode())
    results.append(total)


def _wait_for(predicate, timeout=5):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# ---- the forwarder ----

def test_forwarder_copies_both_ways_and_passes_eof_on():
    results = []
    server = _tcp_server(lambda c: _count(c, results))
    client_side, ours = socket.socketpair()
    upstream = socket.create_connection(server.getsockname())
    native.forward_start(ours.detach(), upstream.detach(), 7)
    payload = os.urandom(8 << 20)
    client_side.sendall(payload)
    client_side.shutdown(socket.SHUT_WR)
    assert client_side.recv(100) == str(len(payload)).encode()
    assert client_side.recv(100) == b""
    _wait_for(lambda: native.forward_count(7) == 0)
    client_side.close()
    server.close()


def test_shutting_a_group_down_ends_its_connections_only():
    server = _tcp_server(_echo)
    pairs = []
    for group in (11, 11, 12):
        client_side, ours = socket.socketpair()
        native.forward_start(ours.detach(), socket.create_connection(server.getsockname()).detach(), group)
        pairs.append(client_side)
    assert native.forward_count(11) == 2 and native.forward_count(12) == 1
    native.forward_shutdown_group(11)
    assert pairs[0].recv(10) == b"" and pairs[1].recv(10) == b""
    pairs[2].sendall(b"still here")
    assert pairs[2].recv(100) == b"still here"
    _wait_for(lambda: native.forward_count(11) == 0)
    assert native.forward_count(12) == 1
    native.forward_shutdown_group(12)
    _wait_for(lambda: native.forward_count(12) == 0)
    for s in pairs:
        s.close()
    server.close()


# ---- the publisher ----

CTR = "ab" * 32


def _run(coro):
    return asyncio.run(coro)


def test_published_tcp_port_reaches_the_target_and_release_closes_everything():
    server = _tcp_server(_echo)
    target_ip, target_port = server.getsockname()

    async def scenario():
        publisher = ports.PortPublisher()
        entries = await publisher.publish(CTR, target_ip, [(target_port, "tcp", "127.0.0.1", 0)])
        host_port = entries[0]["host_port"]
        assert host_port != 0
        reader, writer = await asyncio.open_connection("127.0.0.1", host_port)
        writer.write(b"hello")
        assert await reader.readexactly(5) == b"hello"
        assert native.forward_count(ports.group_of(CTR)) == 1
        publisher.release(CTR)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the connection ended with the container
        writer.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", host_port)
        await asyncio.to_thread(_wait_for, lambda: native.forward_count(ports.group_of(CTR)) == 0)

    _run(scenario())
    server.close()


def _ipv6_listenable():
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_no_address_given_is_0_0_0_0_and_ipv6_on_one_port_as_in_docker():
    server = _tcp_server(_echo)
    target_ip, target_port = server.getsockname()
    ipv6 = _ipv6_listenable()  # without IPv6 (a CI container) 0.0.0.0 only: the next test

    async def scenario():
        publisher = ports.PortPublisher()
        entries = await publisher.publish(CTR, target_ip, [(target_port, "tcp", "", 0)])
        assert [e["host_ip"] for e in entries] == ["0.0.0.0", "::"][:1 + ipv6]
        host_port = entries[0]["host_port"]
        assert entries[-1]["host_port"] == host_port
        for client_ip in ("127.0.0.1", "::1")[:1 + ipv6]:
            reader, writer = await asyncio.open_connection(client_ip, host_port)
            writer.write(client_ip.encode())
            assert await reader.readexactly(len(client_ip)) == client_ip.encode()
            writer.close()
        if ipv6:
            with pytest.raises(Conflict, match=r"Bind for \[::\]:\d+ failed: port is already allocated"):
                await publisher.publish("cd" * 32, target_ip, [(target_port, "tcp", "::", host_port)])
        with pytest.raises(Conflict, match="port is already allocated"):
            await publisher.publish("cd" * 32, target_ip, [(target_port, "tcp", "127.0.0.1", host_port)])
        publisher.release(CTR)
        only_v4 = await publisher.publish(CTR, target_ip, [(target_port, "tcp", "0.0.0.0", 0)])
        assert [e["host_ip"] for e in only_v4] == ["0.0.0.0"]  # an address given is that address only
        publisher.release_all()

    _run(scenario())
    server.close()


def test_without_ipv6_no_address_given_is_0_0_0_0_only_as_in_docker():
    # IPv6 disabled (disable_ipv6=1): [::] could still be bound, but [::1] cannot, and Docker then
    # publishes on 0.0.0.0 alone.
    asked = []

    def bind_without_ipv6(proto, host_ip, host_port):
        asked.append(host_ip)
        if host_ip == "::1":
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        return hostsocket.bind(proto, host_ip, host_port)

    async def scenario():
        publisher = ports.PortPublisher(bind=bind_without_ipv6)
        entries = await publisher.publish(CTR, "127.0.0.1", [(80, "tcp", "", 0), (81, "udp", "", 0)])
        assert [(e["proto"], e["host_ip"]) for e in entries] == [("tcp", "0.0.0.0"), ("udp", "0.0.0.0")]
        assert "::" not in asked
        publisher.release_all()

    _run(scenario())


def test_a_taken_port_fails_with_nothing_bound():
    taken = socket.create_server(("127.0.0.1", 0))
    taken_port = taken.getsockname()[1]
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    free_port = free.getsockname()[1]
    free.close()

    async def scenario():
        publisher = ports.PortPublisher()
        with pytest.raises(Conflict, match=rf"^Bind for 127.0.0.1:{taken_port} failed: port is already allocated$"):
            await publisher.publish(CTR, "127.0.0.1", [(80, "tcp", "127.0.0.1", free_port),
                                                      (81, "tcp", "127.0.0.1", taken_port)])
        assert publisher.published(CTR) == []
        probe = socket.socket()
        probe.bind(("127.0.0.1", free_port))  # the first port was given back
        probe.close()

    _run(scenario())
    taken.close()


def test_a_port_another_container_holds_is_already_allocated():
    async def scenario():
        publisher = ports.PortPublisher()
        entries = await publisher.publish(CTR, "127.0.0.1", [(80, "udp", "0.0.0.0", 0)])
        with pytest.raises(Conflict, match="port is already allocated"):
            await publisher.publish("cd" * 32, "127.0.0.1", [(80, "udp", "127.0.0.1", entries[0]["host_port"])])
        publisher.release_all()

    _run(scenario())


def test_published_udp_port_relays_each_client_separately():
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                data, peer = echo.recvfrom(65535)
            except OSError:
                return
            echo.sendto(data + f" from {peer[1]}".encode(), peer)

    threading.Thread(target=serve, daemon=True).start()

    async def scenario():
        publisher = ports.PortPublisher()
        entries = await publisher.publish(CTR, "127.0.0.1", [(echo.getsockname()[1], "udp", "127.0.0.1", 0)])
        host = ("127.0.0.1", entries[0]["host_port"])
        answers = []
        for name in (b"one", b"two"):
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            client.settimeout(5)
            client.sendto(name, host)
            answers.append(await asyncio.to_thread(client.recv, 1000))
            client.close()
        assert answers[0].startswith(b"one from ") and answers[1].startswith(b"two from ")
        assert answers[0].split()[-1] != answers[1].split()[-1]  # a relay socket per client
        publisher.release(CTR)
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(host)  # released
        probe.close()

    _run(scenario())
    echo.close()


# ---- the rootless wrapper's hand-off ----

def test_the_wrapper_hands_over_a_bound_listener(tmp_path):
    path = str(tmp_path / hostsocket.SOCKET_NAME)
    listener = hostsocket.serve_in_thread(path)
    try:
        sock = hostsocket.listen(path, "tcp", "127.0.0.1", 0)
        port = sock.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = sock.accept()
        client.sendall(b"x")
        assert accepted.recv(1) == b"x"
        for s in (client, accepted):
            s.close()
        with pytest.raises(OSError) as caught:
            hostsocket.listen(path, "tcp", "127.0.0.1", port)
        assert caught.value.errno == 98  # EADDRINUSE, for "port is already allocated"
        sock.close()
        udp = hostsocket.listen(path, "udp", "127.0.0.1", 0)
        assert udp.type == socket.SOCK_DGRAM
        udp.close()
    finally:
        listener.close()


def test_container_ports_publish_exposed_ports_for_a_running_container():
    from types import SimpleNamespace

    from minictr.containers.config import merge

    config, _ = merge({"Image": "img", "Cmd": ["true"], "ExposedPorts": {"81/tcp": {}}},
                      {"ExposedPorts": {"80/tcp": {}}}, CTR)
    assert config["ExposedPorts"] == {"80/tcp": {}, "81/tcp": {}}
    container = SimpleNamespace(id=CTR, name="web", config=config, host_config={"PublishAllPorts": True})
    settings = {"Networks": {"bridge": {"IPAddress": "127.0.0.1", "Gateway": "127.0.0.254"}}}

    async def scenario():
        container_ports = ports.ContainerPorts(ports.PortPublisher())
        await container_ports.container_started(container, settings)
        view = container_ports.settings(container)["Ports"]
        assert set(view) == {"80/tcp", "81/tcp"} and all(int(v[0]["HostPort"]) > 0 for v in view.values())
        container_ports.container_stopped(CTR)
        assert container_ports.settings(container)["Ports"] == {"80/tcp": None, "81/tcp": None}

    _run(scenario())
