"""The crash-point harness: kill -9 the daemon at many points of each container operation
(create, start, stop, rm -f, commit, concurrent run -d), start it again, and check that what it
lists matches the processes that exist, and that `rm -f` of everything leaves nothing behind
(process, directory, cgroup, veth, mount, nftables rule). Root and rootless.

The points are delays after the operation's CLI started, spread over 0..300 ms with a random
jitter (the seed is printed with a failure, MINICTR_CRASH_SEED replays it)."""

import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.integration.conftest import IMAGE, ROOTLESS, Daemon, _answers, alive, cgroup_dir_of, daemon_pid, wait_until

POINTS = 5  # kill points per operation
CONCURRENT_RUNS = 4
MONITOR_COMM = "minictr:[monito"  # "minictr:[monitor]" as the kernel keeps it (15 bytes)
SEED = int(os.environ.get("MINICTR_CRASH_SEED") or random.randrange(1 << 30))


@pytest.fixture(scope="module")
def crashing(busybox_tar):
    """A daemon of this module's own (it is killed over and over), with the test image and a
    record of every process and container it was seen to own."""
    top = Path(tempfile.mkdtemp(prefix="minictr-crash-"))
    os.chmod(top, 0o755)
    d = Daemon(top)
    d.start()
    d.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), IMAGE)
    d.seen = Seen()
    try:
        yield d
    finally:
        d.teardown()
        d.seen.kill_leftovers()
        subprocess.run(["rm", "-rf", str(top)], check=False)


class Seen:
    """Every monitor and container process (pid, start time) and container id the harness saw,
    so that the final check knows what must be gone even if the daemon forgot it."""

    def __init__(self):
        self.processes = set()
        self.ids = set()

    def note(self, monitors):
        for pid in monitors:
            for each in [pid, *children(pid)]:
                started = start_time(each)
                if started:
                    self.processes.add((each, started))

    def alive(self):
        return sorted(pid for pid, started in self.processes if start_time(pid) == started and alive(pid))

    def kill_leftovers(self):
        for pid in self.alive():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def children(pid):
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def monitors_of(daemon):
    """{container id prefix: pid} of the live monitors whose config lies in this daemon's run dir
    (`minictr-monitor RUN/c/ID16/monitor.conf`)."""
    run = str(daemon.socket.parent / "c") + "/"
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if Path(f"/proc/{entry}/comm").read_text().strip() != MONITOR_COMM:
                continue
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        config = os.fsdecode(argv[1]) if len(argv) > 1 else ""
        if config.startswith(run) and alive(int(entry)):
            found[config[len(run):].split("/")[0]] = int(entry)
    return found


def containers_of(daemon):
    """{id: State} of every container the daemon lists."""
    ids = daemon.ok("ps", "-a", "-q", "--no-trunc").split()
    if not ids:
        return {}
    return {c["Id"]: c["State"] for c in json.loads(daemon.ok("inspect", "--type", "container", *ids))}


def kill_daemon(daemon):
    inner = daemon_pid(daemon)
    daemon.kill()
    wait_until(lambda: not alive(inner), what="the daemon to die")
    wait_until(lambda: not _answers(daemon.socket), what="the daemon's socket to go quiet")


# ---- the invariants ------------------------------------------------------------------------

def listing_matches_processes(daemon):
    """Problems between what the daemon lists and the monitors that live (empty when they agree)."""
    monitors = monitors_of(daemon)
    daemon.seen.note(monitors.values())
    listed = containers_of(daemon)
    daemon.seen.ids.update(listed)
    problems = []
    for prefix, pid in monitors.items():
        owner = next((i for i in listed if i.startswith(prefix)), None)
        if owner is None:
            problems.append(f"monitor {pid} of container {prefix} that the daemon does not list")
        elif not listed[owner]["Running"]:
            problems.append(f"monitor {pid} of container {prefix} listed as {listed[owner]['Status']}")
    for container_id, state in listed.items():
        if state["Running"] and container_id[:16] not in monitors:
            problems.append(f"container {container_id[:12]} listed as running without a monitor")
        if state["Paused"] or state["Status"] == "paused":
            problems.append(f"container {container_id[:12]} left paused")
    return problems


def leftovers(daemon):
    """What remains of this daemon's containers once it lists none."""
    found = [f"process {pid}" for pid in daemon.seen.alive()]
    found += [f"monitor {pid} of {prefix}" for prefix, pid in monitors_of(daemon).items()]
    containers_dir = daemon.data_root / "containers"
    found += [f"directory containers/{name}" for name in os.listdir(containers_dir)]
    found += [f"cgroup {path}" for path in cgroups_named(daemon.seen.ids)]
    inner = daemon_pid(daemon)
    found += [f"veth {name}" for name in links_of(inner) if name.startswith(veth_prefix(daemon))]
    found += [f"mount {line.split()[4]}" for line in mountinfo(inner) if str(daemon.data_root) in line.split()[4]]
    found += [f"nftables rule `{rule}`" for rule in published_port_rules(daemon)]
    return found


def published_port_rules(daemon):
    """As root, the DNAT rules of published ports in the daemon's own nftables table (rootless, ports
    are listened on by the wrapper and there is no rule in the host's namespace)."""
    if ROOTLESS:
        return []
    listed = subprocess.run(["nft", "list", "table", "inet", f"minictr-{daemon.bridge}"],
                            capture_output=True, text=True)
    return [line.strip() for line in listed.stdout.splitlines() if "dnat ip to" in line]


def cgroups_named(ids):
    """The cgroup directories, anywhere under /sys/fs/cgroup, named after one of `ids`."""
    found = []
    for top, dirs, _ in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(top, d) for d in dirs if d in ids]
        if top.count("/") > 10:
            dirs.clear()
    return found


def veth_prefix(daemon):
    import hashlib

    return "mc" + hashlib.sha256(os.path.abspath(daemon.data_root).encode()).hexdigest()[:3]


def links_of(pid):
    """The network interfaces of the process's namespace (the daemon's: the host's as root)."""
    lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    return [line.split(":")[0].strip() for line in lines]


def mountinfo(pid):
    return Path(f"/proc/{pid}/mountinfo").read_text().splitlines()


# ---- the operations --------------------------------------------------------------------------

def cli(daemon, *args):
    return subprocess.Popen([sys.executable, "-m", "minictr", "-H", daemon.host, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


BIG_FILE = "head -c {size} /dev/urandom > /big; touch /ready; sleep 300"


def running(daemon, *command):
    return daemon.ok("run", "-d", IMAGE, *(command or ("sleep", "300"))).strip()


# Each: (setup(daemon) -> argument, operation(daemon, argument) -> the CLI processes it started).
OPERATIONS = {
    "create": (lambda d: None, lambda d, _: [cli(d, "create", IMAGE, "sleep", "300")]),
    "start": (lambda d: d.ok("create", IMAGE, "sleep", "300").strip(), lambda d, c: [cli(d, "start", c)]),
    "stop": (running, lambda d, c: [cli(d, "stop", "-t", "1", c)]),
    "rm -f": (running, lambda d, c: [cli(d, "rm", "-f", c)]),
    # Some megabytes to commit: the commit holds the container frozen for a while.
    "commit": (lambda d: running(d, "sh", "-c", BIG_FILE.format(size=24000000)),
               lambda d, c: [cli(d, "commit", c, "crash-commit")]),
    # Each with a published port: as root, a DNAT rule in the daemon's nftables table.
    "run -d": (lambda d: None, lambda d, _: [cli(d, "run", "-d", "-p", "127.0.0.1::80", IMAGE, "sleep", "300")
                                             for _ in range(CONCURRENT_RUNS)]),
}


def crash_during(daemon, name, delay):
    """Set up for operation `name`, start it, kill -9 the daemon `delay` s later, start the daemon
    again; returns the CLI processes' outputs (they have ended)."""
    setup, operation = OPERATIONS[name]
    argument = setup(daemon)
    if name == "commit":  # its file written: the commit has something to read
        wait_until(lambda: "/ready" in daemon.ok("diff", argument), what="the file to commit")
    daemon.seen.note(monitors_of(daemon).values())
    clients = operation(daemon, argument)
    time.sleep(delay)
    daemon.seen.note(monitors_of(daemon).values())
    kill_daemon(daemon)
    outputs = [client.communicate(timeout=60) for client in clients]
    daemon.start()
    return outputs


def check_after_restart(daemon, name, delay, outputs):
    where = f"{name} killed after {delay * 1000:.0f} ms (MINICTR_CRASH_SEED={SEED})"
    for out, err in outputs:
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, f"{where}: the CLI said\n{err}"
    problems = []

    def agree():
        problems[:] = listing_matches_processes(daemon)
        return not problems

    try:
        wait_until(agree, timeout=10, what="the listing to agree with the processes")
    except AssertionError:
        pytest.fail(f"{where}: " + "; ".join(problems))
    for container_id in daemon.ok("ps", "-a", "-q", "--no-trunc").split():
        daemon.ok("rm", "-f", container_id)
    left = []

    def nothing_left():
        left[:] = leftovers(daemon)
        return not left

    try:
        wait_until(nothing_left, timeout=10, what="nothing to be left")
    except AssertionError:
        pytest.fail(f"{where}: after rm -f of everything, left: " + "; ".join(left))


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_a_daemon_killed_during_an_operation_comes_back_agreeing_with_the_processes(crashing, name):
    points = random.Random(f"{SEED}-{name}")
    for point in range(POINTS):
        # Spread over 0..300 ms: the points fall in every stage of the operation.
        delay = (point + points.random()) * 0.3 / POINTS
        outputs = crash_during(crashing, name, delay)
        check_after_restart(crashing, name, delay, outputs)


def test_a_commit_killed_with_the_daemon_leaves_no_container_frozen(crashing):
    """A commit pauses the container (where a freezer exists) while it reads its files; the next
    daemon thaws what a killed commit froze."""
    container_id = running(crashing, "sh", "-c", BIG_FILE.format(size=48000000))
    wait_until(lambda: "/ready" in crashing.ok("diff", container_id), what="the file to commit")
    commit = cli(crashing, "commit", container_id, "crash-frozen")
    time.sleep(0.3)
    kill_daemon(crashing)
    commit.communicate(timeout=60)
    crashing.start()
    state = json.loads(crashing.ok("inspect", "--type", "container", container_id))[0]["State"]
    assert state["Status"] == "running" and not state["Paused"]
    assert freezer_state(state["Pid"]) in ("THAWED", None)
    assert crashing.ok("exec", container_id, "echo", "thawed", timeout=10).strip() == "thawed"
    crashing.ok("rm", "-f", container_id)


def freezer_state(pid):
    """The v1 freezer state of the process's group (None where it has no v1 freezer)."""
    group = cgroup_dir_of(pid, "freezer")
    state = Path(group or "/nonexistent", "freezer.state")
    return state.read_text().strip() if state.exists() else None


@contextlib.contextmanager
def database_locked(daemon):
    """The daemon's database locked for writing by this test: the daemon's next write waits (for
    up to its 5 s busy timeout)."""
    db = sqlite3.connect(str(daemon.data_root / "minictr.db"), isolation_level=None, timeout=5)
    try:
        db.execute("BEGIN IMMEDIATE")
        yield
    finally:
        db.close()


def command_running(daemon, container_id):
    """Whether the container's command has been exec'd (its monitor's child is no longer the init)."""
    monitor = monitors_of(daemon).get(container_id[:16])
    kids = children(monitor) if monitor else []
    try:
        return bool(kids) and Path(f"/proc/{kids[0]}/comm").read_text().strip() == "sleep"
    except OSError:
        return False


def test_a_container_whose_start_the_daemon_had_not_recorded_is_found_again(crashing):
    """The daemon dies after its monitor let the container's command run and before it recorded
    the start (held there: its database is locked, and with no network the start's first write is
    that record): the next daemon lists it running, and `rm -f` ends its processes."""
    container_id = crashing.ok("create", "--network", "none", IMAGE, "sleep", "300").strip()
    with database_locked(crashing):
        start = cli(crashing, "start", container_id)
        wait_until(lambda: command_running(crashing, container_id), what="the command to run")
        crashing.seen.note(monitors_of(crashing).values())
        kill_daemon(crashing)
    outputs = [start.communicate(timeout=60)]
    crashing.start()
    state = json.loads(crashing.ok("inspect", "--type", "container", container_id))[0]["State"]
    assert state["Status"] == "running"
    check_after_restart(crashing, "start (before its record)", 0, outputs)


def test_a_create_killed_before_its_record_leaves_no_directory(crashing):
    """The daemon dies after making a container's directories and before writing its row (held
    there by a locked database): the next daemon sweeps them, and the CLI said one line."""
    containers_dir = crashing.data_root / "containers"
    before = set(os.listdir(containers_dir))
    with database_locked(crashing):
        create = cli(crashing, "create", IMAGE, "sleep", "300")
        wait_until(lambda: set(os.listdir(containers_dir)) - before, what="the container's directory")
        kill_daemon(crashing)
    out, err = create.communicate(timeout=60)
    assert create.returncode != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    crashing.start()
    assert set(os.listdir(containers_dir)) == before
    assert not crashing.ok("ps", "-a", "-q").split()
