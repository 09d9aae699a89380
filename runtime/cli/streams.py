"""Moving bytes between the terminal and a hijacked attach connection."""

import os
import signal
import socket
import struct
import threading


def demux_to_terminal(sock, early):
    """Copy Docker's multiplexed frames (stdout 1, stderr 2) to fds 1 and 2 until the stream ends."""
    buffer = early
    while True:
        while len(buffer) >= 8:
            stream, length = buffer[0], struct.unpack(">I", buffer[4:8])[0]
            if len(buffer) < 8 + length:
                break
            _write_all(2 if stream == 2 else 1, buffer[8:8 + length])
            buffer = buffer[8 + length:]
        data = sock.recv(65536)
        if not data:
            return
        buffer += data


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BrokenPipeError:
            return


def copy_to_terminal(sock, early):
    """Copy a tty's raw output (one stream) to fd 1 until the stream ends."""
    if early:
        _write_all(1, early)
    while data := sock.recv(65536):
        _write_all(1, data)


def forward_stdin(sock, detach_keys=b"", detached=None):
    """Send our stdin to the container in the background; half-close at EOF so its stdin ends too.

    With DETACH_KEYS (a tty), the bytes go as they are (the daemon acts on the sequence) and,
    once the whole sequence went, DETACHED (a threading.Event) is set and nothing more is sent."""
    from minictr.detach_keys import Matcher

    matcher = Matcher(detach_keys)

    def pump():
        try:
            while data := os.read(0, 65536):
                if matcher.feed(data)[1]:
                    detached.set()  # before the daemon can end the stream
                    sock.sendall(data)
                    return
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=pump, daemon=True).start()


def stream_attached(client, resize_path, sock, early, *, tty, stdin, detach_keys=None):
    """Serve a hijacked attach (or exec) connection until its output ends, as Docker's CLI
    does: with a tty, our terminal raw, its size sent to `resize_path` now and on SIGWINCH,
    output copied raw; without one, Docker's frames to stdout and stderr.  Returns whether the
    user detached (the container or the exec runs on)."""
    from minictr.cli.terminal import RawTerminal, SizeWatcher
    from minictr.client import Client
    from minictr.detach_keys import DEFAULT, parse

    keys = parse(detach_keys or DEFAULT) if tty else b""
    detached = threading.Event()
    resizer = Client(client.socket_path)  # the watcher's thread gets a connection of its own

    def resize(rows, columns):
        resizer.post(resize_path, {"h": rows, "w": columns})

    with RawTerminal(0, enabled=tty and stdin), SizeWatcher(resize, enabled=tty):
        if stdin:
            forward_stdin(sock, keys, detached)
        if tty:
            copy_to_terminal(sock, early)
        else:
            demux_to_terminal(sock, early)
    return detached.is_set()


# What Docker's CLI does not forward: job control and the terminal's own business.
_NOT_PROXIED = {signal.SIGCHLD, signal.SIGPIPE, signal.SIGURG, signal.SIGWINCH, signal.SIGKILL, signal.SIGSTOP,
                signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCONT}


def proxy_signals(socket_path, container_id):
    """Send the signals we get to the container instead (Docker's --sig-proxy), each from a
    thread with a connection of its own."""
    from minictr.client import Client

    def forward(signum, frame):
        threading.Thread(target=_kill, args=(socket_path, container_id, signum), daemon=True).start()

    def _kill(path, ref, signum):
        try:
            Client(path).post(f"/containers/{ref}/kill", {"signal": int(signum)})
        except Exception:  # noqa: BLE001 - the container may be gone already
            pass

    for signum in signal.valid_signals():
        if signum not in _NOT_PROXIED and signum < signal.SIGRTMIN:
            try:
                signal.signal(signum, forward)
            except (OSError, ValueError):
                pass
