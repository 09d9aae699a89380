"""Sockets made in the host's network namespace: bound there by the daemon itself (root), or by
the rootless daemon's wrapper and handed over.

The rootless daemon lives in a network namespace of its own with only a
loopback, so it cannot reach a registry, not even one on the host's
127.0.0.1. Its wrapper stays in the host's namespaces: it listens on
`<run_dir>/connect.sock` (0600, the user's own directory), resolves and
connects there on request, and hands the connected socket over with
SCM_RIGHTS. The daemon's registry client (images/registry.py) uses it as its
network backend. Requests are `{"host": …, "port": …, "timeout": …}\n`; the
answer is `ok\n` with the fd, or `error <message>\n`.

Published ports (networks/ports.py) ask `{"listen": "tcp"|"udp", "host": IP,
"port": N}`: the wrapper binds a socket in the host's namespace (TCP also
listening) and hands it over the same way; a failed bind answers
`error <errno> <message>` so that the daemon can tell a taken port.

It imports no service (the standard library; httpcore only in httpcore_backend): the
services that use it (images/registry.py, networks/dns.py, networks/ports.py) and the
daemon's wrapper stand above it.
"""

import json
import os
import socket
import threading

SOCKET_NAME = "connect.sock"
_MAX_REQUEST = 4096


def bind(proto: str, host_ip: str, host_port: int) -> socket.socket:
    """A socket bound (and for TCP listening) on the host: the daemon's own, when it is in the host's netns."""
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind | socket.SOCK_CLOEXEC)
    try:
        if family == socket.AF_INET6:  # [::] next to 0.0.0.0 on the same port, not over it
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of a previous run
        sock.bind((host_ip, host_port))
        if proto == "tcp":
            sock.listen(512)
    except BaseException:
        sock.close()
        raise
    return sock


def serve_in_thread(path: str) -> socket.socket:
    """Listen on `path` and answer each request in a thread of its own (a slow connect blocks nobody)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old_umask = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old_umask)
    listener.listen(64)

    def accept_loop():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_answer, args=(conn,), daemon=True, name="host-connect").start()

    threading.Thread(target=accept_loop, daemon=True, name="host-connect-accept").start()
    return listener


def _answer(conn: socket.socket) -> None:
    with conn:
        try:
            request = json.loads(conn.recv(_MAX_REQUEST).decode())
            host, port = str(request["host"]), int(request["port"])
            timeout = float(request.get("timeout") or 30)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, OSError):
            return
        if request.get("listen"):
            _answer_listen(conn, str(request["listen"]), host, port)
            return
        try:
            upstream = socket.create_connection((host, port), timeout)
        except OSError as error:
            conn.sendall(f"error {error.strerror or error}\n".encode())
            return
        with upstream:
            socket.send_fds(conn, [b"ok\n"], [upstream.fileno()])


def _answer_listen(conn: socket.socket, proto: str, host: str, port: int) -> None:
    try:
        with bind(proto, host, port) as sock:
            socket.send_fds(conn, [b"ok\n"], [sock.fileno()])
    except OSError as error:
        conn.sendall(f"error {error.errno or 0} {error.strerror or error}\n".encode())


def listen(path: str, proto: str, host: str, port: int) -> socket.socket:
    """A socket bound on host:port in the host's namespaces by the wrapper (OSError with its errno if not)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as channel:
        channel.settimeout(10)
        channel.connect(path)
        channel.sendall(json.dumps({"listen": proto, "host": host, "port": port}).encode())
        message, fds, _, _ = socket.recv_fds(channel, 1024, 1)
    if not fds:
        _, number, text = (message.decode(errors="replace").strip().split(" ", 2) + ["", ""])[:3]
        raise OSError(int(number) if number.isdigit() else 0, text or "the daemon wrapper did not answer")
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.socket(family, kind, fileno=fds[0])


def connect(path: str, host: str, port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to host:port made by the wrapper in the host's namespaces (OSError if not)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as channel:
        channel.settimeout(timeout + 5 if timeout else None)
        channel.connect(path)
        channel.sendall(json.dumps({"host": host, "port": port, "timeout": timeout}).encode())
        message, fds, _, _ = socket.recv_fds(channel, 1024, 1)
    if not fds:
        text = message.decode(errors="replace").strip().removeprefix("error ")
        raise ConnectionError(f"connect {host}:{port}: {text or 'the daemon wrapper did not answer'}")
    sock = socket.socket(fileno=fds[0])
    sock.settimeout(timeout)
    return sock


def httpcore_backend(path: str):
    """An httpcore network backend whose TCP connections come from the wrapper."""
    import httpcore
    from httpcore._backends.sync import SyncBackend, SyncStream

    class HostConnectBackend(SyncBackend):
        def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            try:
                sock = connect(path, host, port, timeout)
            except socket.timeout as error:
                raise httpcore.ConnectTimeout(str(error)) from None
            except OSError as error:
                raise httpcore.ConnectError(str(error)) from None
            for option in socket_options or []:
                sock.setsockopt(*option)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return SyncStream(sock)

    return HostConnectBackend()
