"""The daemon's end of the protocol with minictr-monitor (see docs/internals.md)."""

import asyncio
import os
import socket

from minictr import native


def write_config(path, entries):
    """The monitor's config: each entry a key and its fields, all NUL-terminated."""
    data = b"".join(os.fsencode(str(field)) + b"\0" for entry in entries for field in entry)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


class MonitorError(OSError):
    """The monitor reported that setting up or starting the container failed."""


class Monitor:
    """One spawned monitor, from `created` to `started` (after that only its pid matters)."""

    def __init__(self, sync, container_pid, monitor_pid):
        self._sync = sync
        self._buffer = b""
        self.container_pid = container_pid
        self.monitor_pid = monitor_pid

    @classmethod
    async def spawn(cls, config_path, on_cloned=None):
        """Start a monitor for the container described in `config_path`; returns once it is created.
        A container's monitor says `cloned PID` first, as soon as the init's namespaces exist:
        `on_cloned(pid)` is called then, while the init sets itself up."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = os.posix_spawn(native.MONITOR_PATH, [native.MONITOR_PATH, config_path], os.environ,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, theirs.fileno(), 3)])
        finally:
            theirs.close()
        # The monitor double-forks: its first process exits at once and is ours to reap.
        await asyncio.get_running_loop().run_in_executor(None, os.waitpid, pid, 0)
        ours.setblocking(False)
        monitor = cls(ours, None, None)
        try:
            head, words = await monitor._expect("cloned", "created")
            if head == "cloned":
                if on_cloned is not None:
                    on_cloned(int(words[0]))
                head, words = await monitor._expect("created")
        except BaseException:
            ours.close()
            raise
        monitor.container_pid, monitor.monitor_pid = int(words[0]), int(words[1])
        return monitor

    async def _read_line(self):
        loop = asyncio.get_running_loop()
        while b"\n" not in self._buffer:
            data = await loop.sock_recv(self._sync, 4096)
            if not data:
                raise MonitorError(0, "the monitor exited without an answer")
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")

    async def _expect(self, *words):
        """The next line, which must begin with one of `words`: that word and the words after it."""
        line = await self._read_line()
        head, _, rest = line.partition(" ")
        if head in words:
            return head, rest.split()
        if head == "error":
            errnum, _, message = rest.partition(" ")
            raise MonitorError(int(errnum), message)
        raise MonitorError(0, f"unexpected answer from the monitor: {line!r}")

    async def start(self):
        """Release the container's process to exec its command; raises MonitorError if exec failed."""
        try:
            await asyncio.get_running_loop().sock_sendall(self._sync, b"start\n")
            await self._expect("started")
        finally:
            self.close()

    def close(self):
        """Without a `start` first, this makes the monitor kill the container and leave."""
        self._sync.close()


def watch_exit(pid, on_exit, *args):
    """Call `on_exit(*args)` when the monitor `pid` has ended: from the event loop later, or at
    once if it already has (no such process, or its pid now belongs to another process after a
    daemon restart). Returns the pidfd that `unwatch` takes, or -1."""
    pidfd = _pidfd_or_none(pid) if pid else None
    if pidfd is not None and not _is_monitor(pid):
        os.close(pidfd)
        pidfd = None
    if pidfd is None:
        on_exit(*args)
        return -1
    asyncio.get_running_loop().add_reader(pidfd, on_exit, *args)
    return pidfd


def unwatch(pidfd):
    """Stop watching (a pidfd from `watch_exit`, or -1); returns -1 for the caller to keep."""
    if pidfd >= 0:
        asyncio.get_running_loop().remove_reader(pidfd)
        os.close(pidfd)
    return -1


def _pidfd_or_none(pid):
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def _is_monitor(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().startswith("minictr:")
    except OSError:
        return False
