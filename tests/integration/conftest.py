"""A real daemon for the integration tests: root mode when the suite runs as root, rootless
when it runs as an ordinary user (scripts/test does both)."""

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The daemons of the suite reach loopback registries only: a `run` of a missing image must not go
# to Docker Hub (nor anywhere off this machine).
os.environ["MINICTR_REGISTRY_LOOPBACK_ONLY"] = "1"


def _free_loopback_port():
    with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        udp.bind(("127.0.0.1", tcp.getsockname()[1]))
        return tcp.getsockname()[1]


# Names the networks' DNS server does not know go to this loopback port only (never the host's
# resolvers): test_dns.py runs a resolver of its own there.
DNS_UPSTREAM = ("127.0.0.1", _free_loopback_port())
os.environ["MINICTR_DNS_FORWARD"] = f"{DNS_UPSTREAM[0]}:{DNS_UPSTREAM[1]}"
ROOTLESS = os.geteuid() != 0
# A daemon the CLI starts by itself (no Daemon object) gets this default bridge, not the host's minictr0;
# every bridge name handed out is swept at the end of the session (see _sweep_bridges).
os.environ["MINICTR_DEFAULT_BRIDGE"] = "mct" + secrets.token_hex(3)
_BRIDGES_HANDED_OUT = {os.environ["MINICTR_DEFAULT_BRIDGE"]}
IMAGE = "busybox-local"
# A pure cgroup v2 machine (a systemd VM), not a hybrid one like these dev machines (v1 controllers).
CGROUP_V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def _delegated_controllers():
    """The v2 controllers that this user may hand to groups of its own: those of its own group when it may
    write there (systemd's Delegate=yes for user@.service); none on cgroup v1, never delegated to a user."""
    if not CGROUP_V2:
        return frozenset()
    own = Path("/sys/fs/cgroup") / open("/proc/self/cgroup").read().split("0::", 1)[-1].strip().lstrip("/")
    if not os.access(own, os.W_OK):
        return frozenset()
    return frozenset((own / "cgroup.controllers").read_text().split())


# Whether the daemons of this run enforce --memory and --pids-limit: as root always; rootless only where
# the user's cgroup v2 subtree is delegated with those controllers (systemd's default for user@.service
# is cpu, memory and pids: no cpuset).
CGROUP_LIMITS = not ROOTLESS or {"memory", "pids"} <= _delegated_controllers()


def enforces(controller):
    """Whether this run's daemons have the cgroup CONTROLLER (cpu, cpuset, memory, pids) for limits."""
    return not ROOTLESS or controller in _delegated_controllers()


def container_group(pid, controller="memory"):
    """The directory of the cgroup of process PID that holds CONTROLLER (v1), or of its one group (v2)."""
    group = cgroup_dir_of(pid, None if CGROUP_V2 else controller)
    assert group, f"process {pid} has no {controller} cgroup"
    return Path(group)


def _answers(path):
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(path))
            return True
        except OSError:
            return False


class Daemon:
    # As root the daemon's links live in the host's namespace, shared with the other daemons of the
    # suite (and anyone's): `ip` runs there. NetnsDaemon runs it in a namespace of its own.
    netns = None

    def __init__(self, top: Path):
        self.top = top
        self.socket = top / "run" / "minictr.sock"
        self.data_root = top / "data"
        self.log = top / "daemon.log"
        self.process = None
        # Each daemon its own default bridge (and so its own nftables table, inet minictr-<bridge>):
        # two root daemons in one namespace never share or remove each other's.
        self.bridge = "mct" + secrets.token_hex(3)
        _BRIDGES_HANDED_OUT.add(self.bridge)

    @property
    def host(self):
        return f"unix://{self.socket}"

    def _argv(self):
        return [sys.executable, "-m", "minictr", "-H", self.host, "daemon", "--data-root", str(self.data_root)]

    def start(self):
        self.socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A socket left by a killed daemon must not pass for this one answering.
        self.socket.unlink(missing_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self._argv(), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                            env={**os.environ, "MINICTR_DEFAULT_BRIDGE": self.bridge})
        deadline = time.monotonic() + 30
        while not _answers(self.socket):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daemon did not start:\n{self.log.read_text()}")
            time.sleep(0.02)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self):
        """SIGKILL the daemon (its parent too, when rootless: the whole wrapper)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def ip(self, *args, check=False):
        """`ip ARGS` in the daemon's network namespace as root (the host's, or NetnsDaemon's own)."""
        netns = ["-n", self.netns] if self.netns else []
        return subprocess.run(["ip", *netns, *args], capture_output=True, text=True, check=check)

    def teardown(self):
        """Stop the daemon and remove what it made in its network namespace: containers and user networks
        through the API (while it answers), then, as root, the links of its bridges that are still there
        (its default bridge and any `mcbr-*` its database knows: a crashed daemon cannot remove them)."""
        if self.process and self.process.poll() is None and _answers(self.socket):
            for container_id in self.cli("ps", "-a", "-q", "--no-trunc").stdout.split():
                self.cli("rm", "-f", container_id)
            for network_id in self.cli("network", "ls", "-q", "--no-trunc", "-f", "type=custom").stdout.split():
                self.cli("network", "rm", network_id)
        self.stop()
        if ROOTLESS:
            return  # the daemon's namespace goes with its holder
        for bridge in {self.bridge, *self._known_bridges()}:
            if bridge and self.ip("link", "show", bridge).returncode == 0:
                self.ip("link", "del", bridge)

    def _known_bridges(self):
        import sqlite3

        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.data_root / 'minictr.db'}?mode=ro", uri=True)) as db:
                return [row[0] for row in db.execute("SELECT bridge FROM networks")]
        except sqlite3.Error:
            return []

    def cli(self, *args, input=None, env=None, timeout=60):
        """Run the minictr CLI against this daemon; returns the CompletedProcess (text)."""
        return subprocess.run([sys.executable, "-m", "minictr", "-H", self.host, *args], input=input,
                              capture_output=True, text=True, timeout=timeout, env=env)

    def ok(self, *args, **kwargs):
        result = self.cli(*args, **kwargs)
        assert result.returncode == 0, (f"minictr {' '.join(args)} failed ({result.returncode}): {result.stderr}"
                                        f"\n--- daemon log (tail) ---\n{self.log_tail()}")
        return result.stdout

    def log_tail(self, lines=30):
        try:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            tail = "(no log)"
        processes = subprocess.run(["ps", "-o", "pid,ppid,stat,etime,comm", "-u", str(os.geteuid())],
                                   capture_output=True, text=True).stdout
        wrapper = self.process.poll() if self.process else "none"
        return f"{tail}\n--- wrapper {self.process and self.process.pid} exit status {wrapper} ---\n{processes}"

    def client(self):
        from minictr.client import Client

        return Client(str(self.socket))


class NetnsDaemon(Daemon):
    """A root daemon whose network namespace is `netns` (made by the test): its firewall is the one the
    test sets up there (none, or Docker's rules in test_docker_forward.py), never the machine's."""

    def __init__(self, top, netns):
        super().__init__(top)
        self.netns = netns

    def _argv(self):
        return ["ip", "netns", "exec", self.netns, *super()._argv()]


class CgroupV2Daemon(Daemon):
    """A root daemon that sees a pure cgroup v2 machine: it runs in a mount namespace of its own in
    which this host's cgroup2 hierarchy (at /sys/fs/cgroup/unified here, beside the v1 controllers) is
    mounted on /sys/fs/cgroup. Its containers get v2 groups, and so the v2 device controller (a BPF
    program), on this hybrid host. The host's own mounts are untouched."""

    def _argv(self):
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"', "sh", *super()._argv()]


def in_netns(netns, function):
    """function() called in a thread of ours that joined /run/netns/NETNS (sockets it makes live there);
    returns its result. The calling thread, and so the test process, stays where it is."""
    import ctypes

    outcome = {}

    def run():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
            finally:
                os.close(fd)
            outcome["value"] = function()
        except BaseException as e:
            outcome["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.fixture(scope="session", autouse=True)
def _sweep_bridges():
    """As root, the default bridges of the suite's daemons live in the host's namespace and outlast them
    (as docker0 outlasts dockerd); tests that stop and restart daemons of their own leave them to this,
    and a daemon killed for good leaves its nftables table and its jump from iptables' filter FORWARD."""
    yield
    if ROOTLESS:
        return
    from minictr.networks import filter_forward, outbound

    chains = outbound.list_chains("nft") or []
    for bridge in _BRIDGES_HANDED_OUT:
        if subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode == 0:
            subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        subprocess.run(["nft", "delete", "table", "inet", f"minictr-{bridge}"], capture_output=True)
        filter_forward.sync(filter_forward.chain_name(f"minictr-{bridge}"), {}, chains)


@pytest.fixture(scope="session")
def daemon():
    top = Path(tempfile.mkdtemp(prefix="minictr-it-"))
    os.chmod(top, 0o755)
    d = Daemon(top)
    d.start()
    yield d
    d.teardown()
    subprocess.run(["rm", "-rf", str(top)], check=False)


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory):
    out = tmp_path_factory.mktemp("busybox") / "busybox.tar"
    subprocess.run([str(REPO / "images" / "busybox" / "build"), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture
def clean_daemon(tmp_path_factory):
    """A second daemon on an empty data root: where a saved or pushed image is loaded or pulled back."""
    top = tmp_path_factory.mktemp("clean-daemon")
    os.chmod(top, 0o755)
    other = Daemon(top)
    other.start()
    yield other
    other.teardown()
    subprocess.run(["rm", "-rf", str(top)], check=False)


@pytest.fixture(scope="session")
def image(daemon, busybox_tar):
    daemon.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), IMAGE)
    return IMAGE


@pytest.fixture(scope="session")
def net_daemon(request, busybox_tar):
    """The daemon for tests that need traffic between containers or out of them, with IMAGE imported.
    Rootless: the session daemon (its network namespace is its own already). As root: a daemon in a
    network namespace this fixture makes (lo up), removed at teardown with everything in it."""
    if ROOTLESS:
        request.getfixturevalue("image")
        yield request.getfixturevalue("daemon")
        return
    with netns_daemon(busybox_tar, "mctest-d") as d:
        yield d


@contextlib.contextmanager
def netns_daemon(busybox_tar, prefix, prepare=None):
    """A root daemon in a network namespace made here (lo up), with IMAGE imported; prepare(netns), if
    given, runs before the daemon starts. Removed on exit with everything in it."""
    netns = prefix + secrets.token_hex(3)
    top = Path(tempfile.mkdtemp(prefix="minictr-netns-"))
    os.chmod(top, 0o755)
    subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True)
    d = NetnsDaemon(top, netns)
    try:
        if prepare:
            prepare(netns)
        d.ip("link", "set", "lo", "up", check=True)
        d.start()
        d.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), IMAGE)
        yield d
    finally:
        d.teardown()
        subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)
        subprocess.run(["rm", "-rf", str(top)], check=False)


@pytest.fixture(autouse=True)
def no_leftover_containers(request):
    """Every test removes what it made; this one makes sure, and fails the test if it had to."""
    yield
    for fixture in ("daemon", "net_daemon"):
        if fixture not in request.fixturenames:
            continue
        d = request.getfixturevalue(fixture)
        left = d.cli("ps", "-a", "-q", "--no-trunc").stdout.split()
        for container_id in left:
            d.cli("rm", "-f", container_id)
        assert not left, f"the test left containers behind ({fixture}): {left}"


@contextlib.contextmanager
def static_probe(name):
    """tests/probes/NAME.c built static into a directory everyone can read (rootless runs as
    minictr-test); yields the binary's path, removed afterwards."""
    top = Path(tempfile.mkdtemp(prefix=f"minictr-{name}-"))
    try:
        os.chmod(top, 0o755)
        subprocess.run(["cc", "-static", "-O2", "-o", str(top / name), str(REPO / f"tests/probes/{name}.c")],
                       check=True, capture_output=True)
        os.chmod(top / name, 0o755)
        yield top / name
    finally:
        shutil.rmtree(top)


def mounts_of(pid="self"):
    with open(f"/proc/{pid}/mountinfo") as f:
        return f.read()


def daemon_pid(d: Daemon):
    """The pid of the daemon proper (inside its namespaces when rootless)."""
    if not ROOTLESS:
        return d.process.pid
    # The wrapper's children: the daemon, the namespace holder (minictr-pause) when it made one, and
    # slirp4netns (in the host's namespaces) when it started one.
    children = Path(f"/proc/{d.process.pid}/task/{d.process.pid}/children").read_text().split()
    helpers = ("minictr:[ns]", "slirp4netns", "pasta")
    return next(int(c) for c in children if Path(f"/proc/{c}/comm").read_text().strip() not in helpers)


def cgroup_dir_of(pid, controller=None):
    """The directory of process PID's group in the hierarchy of the v1 CONTROLLER (None: v2), through
    the cgroup mounts as this process sees them: their root is not `/` inside a container."""
    from minictr.hostinfo import cgroup_dir, cgroup_of

    group = cgroup_of(pid, controller)
    return cgroup_dir(group, controller) if group else None


def ipv6_listenable():
    """Whether [::1] can be bound in this network namespace: a daemon publishing a port on every
    address adds [::] only then, as Docker does (CI containers often run with IPv6 disabled)."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def inspect(daemon, ref):
    """A container's inspect JSON, through the CLI."""
    return json.loads(daemon.ok("inspect", "--type", "container", ref))[0]


def network_names(daemon):
    return [network["Name"] for network in daemon.client().get("/networks")]


def volume_names(daemon):
    return [volume["Name"] for volume in daemon.client().get("/volumes")["Volumes"] or []]


def wait_until(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid):
    """Whether the process runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, or reaped between the open and the read
        return False


def on_overlayfs(path) -> bool:
    """Whether `path` (or its nearest existing parent) is on overlayfs, as /tmp is in a CI container: the
    kernel refuses an overlay upper dir there, so a daemon falls back to fuse-overlayfs."""
    path = Path(path)
    while not path.exists():
        path = path.parent
    kind = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True)
    return kind.stdout.strip() == "overlayfs"


def expected_storage_driver(data_root) -> str:
    return "fuse-overlayfs" if on_overlayfs(data_root) else "overlay2"


def overlay_backing_dir(prefix: str) -> Path:
    """A new directory that can hold an overlay's upper and work dirs: under the temporary directory,
    or on /dev/shm (tmpfs) where that is overlayfs itself."""
    base = "/dev/shm" if on_overlayfs(tempfile.gettempdir()) else None
    top = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    os.chmod(top, 0o755)
    return top
