"""The CLI's own terminal while it is attached to a container's tty: raw mode (so that ^C,
^Z, ^P ^Q … reach the container as bytes), restored on every way out, and the terminal's
size, sent to the daemon at start and again at each SIGWINCH (Docker's MonitorTtySize)."""

import os
import signal
import sys
import termios
import threading
import tty

# Signals that end the CLI while the terminal is raw: each restores it on its way out.
_ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def terminal_size(fd=1):
    """(rows, columns) of the terminal on FD, or None when it is no terminal."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


class RawTerminal:
    """`with RawTerminal(fd):` raw mode on FD when it is a terminal, its settings back at the end
    (an exception, sys.exit, or one of _ENDING_SIGNALS)."""

    def __init__(self, fd=0, enabled=True):
        self.fd = fd
        self.enabled = enabled and os.isatty(fd)
        self._saved = None
        self._handlers = {}

    def __enter__(self):
        if not self.enabled:
            return self
        self._saved = termios.tcgetattr(self.fd)
        for signum in _ENDING_SIGNALS:
            self._handlers[signum] = signal.signal(signum, _exit_on_signal)
        tty.setraw(self.fd, termios.TCSANOW)
        return self

    def __exit__(self, *exc):
        self.restore()
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
        self._handlers = {}

    def restore(self):
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None


def _exit_on_signal(signum, frame):
    sys.exit(128 + signum)  # unwinds through RawTerminal.__exit__


class SizeWatcher:
    """`with SizeWatcher(resize):` calls resize(rows, columns) now and at each SIGWINCH (from a
    thread of its own: `resize` must not share a connection with the main thread)."""

    def __init__(self, resize, fd=1, enabled=True):
        self.resize = resize
        self.fd = fd
        self.enabled = enabled and terminal_size(fd) is not None
        self._changed = threading.Event()
        self._previous = None

    def __enter__(self):
        if not self.enabled:
            return self
        self._send()
        self._previous = signal.signal(signal.SIGWINCH, lambda signum, frame: self._changed.set())
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGWINCH, self._previous)
            self._previous = None

    def _watch(self):
        while True:
            self._changed.wait()
            self._changed.clear()
            self._send()

    def _send(self):
        size = terminal_size(self.fd)
        if size is None:
            return
        try:
            self.resize(*size)
        except Exception:  # noqa: BLE001 - a failed resize must not end the session (Docker ignores it too)
            pass
