"""Moving bytes between the terminal and a hijacked attach connection.

Every plain `minictr run` and `exec` comes through here, so this module stands on C modules
(`_signal`, `_thread`, `_socket`): signal, threading and socket above them would add ~12 ms to
each. What only a tty needs (threading, the terminal, the detach keys) is imported for a tty.
"""

import _signal
import _socket
import _thread
import os


def demux_to_terminal(sock, early):
    """Copy Docker's multiplexed frames (stdout 1, stderr 2) to fds 1 and 2 until the stream ends."""
    buffer = early
    while True:
        while len(buffer) >= 8:
            stream, length = buffer[0], int.from_bytes(buffer[4:8], "big")
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
    matcher = None
    if detach_keys:
        from minictr.spec.detach_keys import Matcher

        matcher = Matcher(detach_keys)

    def pump():
        try:
            while data := os.read(0, 65536):
                if matcher is not None and matcher.feed(data)[1]:
                    detached.set()  # before the daemon can end the stream
                    sock.sendall(data)
                    return
                sock.sendall(data)
            sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    # A bare thread is a daemon thread: the CLI does not wait for it when the output ends.
    _thread.start_new_thread(pump, ())


def stream_attached(client, resize_path, sock, early, *, tty, stdin, detach_keys=None):
    """Serve a hijacked attach (or exec) connection until its output ends, as Docker's CLI
    does: with a tty, our terminal raw, its size sent to `resize_path` now and on SIGWINCH,
    output copied raw; without one, Docker's frames to stdout and stderr.  Returns whether the
    user detached (the container or the exec runs on)."""
    if tty:
        return _stream_tty(client, resize_path, sock, early, stdin, detach_keys)
    if stdin:
        forward_stdin(sock)
    demux_to_terminal(sock, early)
    return False


def _stream_tty(client, resize_path, sock, early, stdin, detach_keys):
    import threading

    from minictr.cli.terminal import RawTerminal, SizeWatcher
    from minictr.client import Client
    from minictr.spec.detach_keys import DEFAULT, parse

    keys = parse(detach_keys or DEFAULT)
    detached = threading.Event()
    resizer = Client(client.socket_path)  # the watcher's thread gets a connection of its own

    def resize(rows, columns):
        resizer.post(resize_path, {"h": rows, "w": columns})

    with RawTerminal(0, enabled=stdin), SizeWatcher(resize):
        if stdin:
            forward_stdin(sock, keys, detached)
        copy_to_terminal(sock, early)
    return detached.is_set()


# What Docker's CLI does not forward: job control and the terminal's own business.
_NOT_PROXIED = {_signal.SIGCHLD, _signal.SIGPIPE, _signal.SIGURG, _signal.SIGWINCH, _signal.SIGKILL,
                _signal.SIGSTOP, _signal.SIGTSTP, _signal.SIGTTIN, _signal.SIGTTOU, _signal.SIGCONT}


def proxy_signals(socket_path, container_id):
    """Send the signals we get to the container instead (Docker's --sig-proxy), each from a
    (daemon) thread with a connection of its own."""
    from minictr.client import Client, api_path

    def forward(signum, frame):
        _thread.start_new_thread(kill, (signum,))

    def kill(signum):
        try:
            Client(socket_path).post(api_path("/containers/{}/kill", container_id), {"signal": signum})
        except Exception:  # noqa: BLE001 - the container may be gone already
            pass

    for signum in _signal.valid_signals():
        if signum not in _NOT_PROXIED and signum < _signal.SIGRTMIN:
            try:
                _signal.signal(signum, forward)
            except (OSError, ValueError):
                pass
