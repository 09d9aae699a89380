"""The daemon's end of the protocol with minictr-monitor (see docs/internals.md)."""

import asyncio
import os
import signal
import socket
import time
from dataclasses import dataclass

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


@dataclass(frozen=True)
class LiveMonitor:
    """A monitor found running at the daemon's start: the container it runs (by its config)."""

    container_id: str
    monitor_pid: int
    container_pid: int  # 0 once its container has ended


def find_monitors(run_dir):
    """{container id: LiveMonitor} of every live monitor whose config lies in `run_dir`
    (`minictr-monitor RUN_DIR/ID16/monitor.conf`): whatever the database says, these are the
    containers that run. A daemon killed between a monitor's `start` and its record of the
    start leaves one that only this finds."""
    found = {}
    prefix = run_dir.rstrip("/") + "/"
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _is_monitor(entry):
            config = _config_path(entry)
            # A container's monitor only: an exec's (RUN_DIR/ID16/e/EXEC/monitor.conf) names the
            # container it joins too, and is not the one to watch.
            if config is not None and config.startswith(prefix) and config[len(prefix):].count("/") == 1:
                container_id = _container_id(config)
                if container_id:
                    found[container_id] = LiveMonitor(container_id, int(entry), _first_child(entry))
    return found


def stop_monitor(monitor, timeout=2.0):
    """Kill a monitor and its container (a monitor no container record owns) and wait, at most
    `timeout` s, until both are gone."""
    for pid in (monitor.container_pid, monitor.monitor_pid):
        if pid > 0:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    while _running(monitor.monitor_pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _config_path(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return None
    return os.fsdecode(argv[1]) if len(argv) > 1 else None


def _container_id(config_path):
    """The container's id: the config's first entry (monitor_config.py), `id\0ID\0`."""
    try:
        with open(config_path, "rb") as f:
            fields = f.read(256).split(b"\0")
    except OSError:
        return None
    return fields[1].decode() if len(fields) > 2 and fields[0] == b"id" else None


def _first_child(pid):
    """The container's init: the monitor's child (it forks nothing else)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = f.read().split()
    except OSError:
        return 0
    return int(children[0]) if children else 0


def _is_monitor(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().startswith("minictr:")
    except OSError:
        return False


def _running(pid):
    """Whether the process exists and is no zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
