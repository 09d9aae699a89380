"""Run minictr-monitor for real (as root): a busybox rootfs as the single
lowerdir, a config file, the sync socket on fd 3, the attach socket.

Everything a test creates lives under its tmp_path; whatever is still running
at the end is killed by pid (after checking the pid is still ours)."""

import json
import os
import shutil
import signal
import socket
import struct
import tempfile
import time
from pathlib import Path

import pytest

BUSYBOX = Path("/bin/busybox")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def busybox_rootfs():
    """A rootfs of the host's static busybox and its applet links."""
    if os.geteuid() != 0:
        pytest.skip("native tests run the monitor as root")
    wait_for(BUSYBOX.exists, timeout=300, what="/bin/busybox (busybox-static)")
    # Not under pytest's 0700 basetemp: a user namespace's root must be able
    # to reach the layers, as it can under the daemon's data root.
    base = Path(tempfile.mkdtemp(prefix="minictr-native-rootfs-"))
    base.chmod(0o755)
    root = base / "rootfs"
    root.mkdir()
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root"):
        (root / d).mkdir()
    (root / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    for applet in os.popen(f"{BUSYBOX} --list").read().split():
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    yield root
    shutil.rmtree(base)


def read_frames(sock: socket.socket, timeout=10.0) -> dict[int, bytes]:
    """Read Docker multiplexed frames until EOF: {1: stdout bytes, 2: stderr bytes}."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    out = {1: b"", 2: b""}
    while data:
        stream, length = struct.unpack(">BxxxI", data[:8])
        out[stream] += data[8 : 8 + length]
        data = data[8 + length :]
    return out


class Container:
    """One monitor run: the daemon's side of the sync protocol."""

    def __init__(self, directory: Path, config: list[tuple[str, ...]]):
        self.dir = directory
        self.rundir = directory / "run"
        self.upper = directory / "upper"
        self.attach_path = self.rundir / "attach.sock"
        self.exit_path = self.rundir / "exit"
        self.log_path = self.rundir / "ctr-json.log"
        self.pid = self.monitor_pid = None
        conf = self.rundir / "monitor.conf"
        conf.write_bytes(b"".join(os.fsencode(f) + b"\0" for entry in config for f in entry))
        ours, theirs = socket.socketpair()
        self.sync = ours.makefile("rwb", buffering=0)
        self._sock = ours
        from minictr import native

        launcher = os.posix_spawn(
            native.MONITOR_PATH,
            [native.MONITOR_PATH, str(conf)],
            os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, theirs.fileno(), 3)],
        )
        theirs.close()
        os.waitpid(launcher, 0)  # the monitor double-forks; its first process exits at once
        self.created = self.sync_line()
        # A container's monitor says `cloned PID` first, as soon as the init's namespaces exist.
        self.cloned_pid = None
        if self.created.startswith("cloned "):
            self.cloned_pid = int(self.created.split()[1])
            self.created = self.sync_line()
        if self.created.startswith("created "):
            _, pid, monitor_pid = self.created.split()
            self.pid, self.monitor_pid = int(pid), int(monitor_pid)

    def sync_line(self) -> str:
        self._sock.settimeout(10)
        return self.sync.readline().decode()

    def attach(self, mask: int) -> socket.socket:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(self.attach_path))
        client.sendall(bytes([mask]))
        return client

    def start(self) -> str:
        self.sync.write(b"start\n")
        return self.sync_line()

    def wait_exit(self, timeout=10.0) -> tuple[int, int]:
        wait_for(self.exit_path.exists, timeout, what="the exit file")
        code, finished = self.exit_path.read_text().split()[:2]
        return int(code), int(finished)

    def log_lines_dropped(self) -> int:
        return int(self.exit_path.read_text().split()[2])

    def wait_monitor_gone(self, timeout=10.0):
        wait_for(lambda: not pid_is_ours(self.monitor_pid, "minictr:[monito"), timeout,
                 what="the monitor to exit")

    def log_entries(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def kill_leftovers(self):
        if self.pid and pid_is_ours(self.pid, None, parent=self.monitor_pid):
            os.kill(self.pid, signal.SIGKILL)
        if self.monitor_pid and pid_is_ours(self.monitor_pid, "minictr:[monito"):
            os.kill(self.monitor_pid, signal.SIGKILL)
        self._sock.close()


def pid_is_ours(pid, comm_prefix, parent=None) -> bool:
    """Is PID still the process we started (not a recycled pid)?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return False
    if parent is not None:
        return int(fields[1]) == parent
    return comm.startswith(comm_prefix)


class ContainerFactory:
    def __init__(self, tmp_path: Path, lower: Path):
        self.tmp_path = tmp_path
        self.lower = lower
        self.containers: list[Container] = []

    def config(self, args, *, userns=False, uid=0, gid=0, groups=(), stdin=False,
               hostname="box", cwd="/", env=(PATH_ENV,), binds=(), idmaps=(), extra=()):
        d = self.directory
        entries = [
            ("id", "c" * 64), ("rootfs", str(d / "rootfs")), ("lower", str(self.lower)),
            ("upper", str(d / "upper")), ("work", str(d / "work")),
            ("userns", "1" if userns else "0"), ("hostname", hostname), ("cwd", cwd),
            ("uid", str(uid)), ("gid", str(gid)), ("stdin", "1" if stdin else "0"),
            ("log", str(d / "run/ctr-json.log")), ("exit", str(d / "run/exit")),
            ("attach", str(d / "run/attach.sock")),
        ]
        entries += [("group", str(g)) for g in groups]
        entries += [(kind, *map(str, m)) for kind, m in idmaps]
        entries += [("bind", src, dst, mode) for src, dst, mode in binds]
        entries += [("arg", a) for a in args] + [("env", e) for e in env]
        return entries + list(extra)

    def create(self, args, owner=None, prepare_upper=None, **options) -> Container:
        """Start a monitor; OWNER (uid, gid) gets upper and work, as the daemon
        gives them to a user namespace's root; PREPARE_UPPER(path) may put
        files in the upper dir first."""
        self.directory = Path(
            os.path.realpath(self.tmp_path / f"ctr{len(self.containers)}")
        )
        for sub in ("rootfs", "upper", "work", "run"):
            (self.directory / sub).mkdir(parents=True)
        if prepare_upper is not None:
            prepare_upper(self.directory / "upper")
        if owner is not None:
            for sub in ("upper", "work"):
                os.chown(self.directory / sub, *owner)
        container = Container(self.directory, self.config(args, **options))
        self.containers.append(container)
        return container

    def run(self, args, mask=6, **options):
        """create + attach + start + read all output + exit file."""
        c = self.create(args, **options)
        assert c.created.startswith("created "), c.created
        client = c.attach(mask)
        c.started = c.start()
        c.output = read_frames(client)
        client.close()
        c.exit_code, c.finished_ns = c.wait_exit()
        return c


def _filesystem_of(path):
    """The type of the filesystem PATH is on (the longest mount point above it in mountinfo)."""
    path, best, fstype = os.path.realpath(path), "", ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields, _, after = line.partition(" - ")
            point = fields.split()[4].replace("\\040", " ")
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, fstype = point, after.split()[0]
    return fstype


def upper_dir_base():
    """Where the containers' upper dirs go. The monitor mounts a kernel overlay, which refuses an
    upper dir on overlayfs (/tmp of a CI container: the daemon falls back to fuse-overlayfs there);
    these tests check the monitor's own mounts, so on such a /tmp they go to the tmpfs at /dev/shm."""
    tmp = tempfile.gettempdir()
    return "/dev/shm" if _filesystem_of(tmp) == "overlay" and os.path.isdir("/dev/shm") else tmp


@pytest.fixture
def containers(busybox_rootfs):
    base = Path(tempfile.mkdtemp(prefix="minictr-native-", dir=upper_dir_base()))
    base.chmod(0o711)  # reachable by a user namespace's root, as the daemon's dirs are
    factory = ContainerFactory(base, busybox_rootfs)
    try:
        yield factory
    finally:
        for c in factory.containers:
            c.kill_leftovers()
        for c in factory.containers:
            c.wait_monitor_gone()
        shutil.rmtree(base)
