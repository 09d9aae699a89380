"""A cgroup per container: v1 controllers (root on hybrid machines), v2 (root, or delegated rootless).

Each container gets its own group, its limits written by the daemon when it makes it (before the
monitor starts the process), joined by the monitor before the container unshares its cgroup
namespace, and removed when the container is gone.
"""

import asyncio
import errno
import logging
import os
import threading
import time

from minictr import native
from minictr.hostinfo import cgroup_dir, cgroup_mounts, cgroup_of

log = logging.getLogger("minictr.cgroups")

CGROUP_ROOT = "/sys/fs/cgroup"
# Where the processes of the daemon's own v2 group go when it must delegate controllers (enable_controllers).
LEAF = "init"


def _mounts():
    """(mount point, fstype, super options) of every cgroup mount we can see."""
    for mount in cgroup_mounts():
        yield mount.point, mount.fstype, list(mount.options)


def _own_v2_dir():
    """The directory of this process's v2 group, found through the mount's root (inside a container
    it need not be `/`); None if not to be seen."""
    own = cgroup_of("self")
    return cgroup_dir(own) if own else None


class Cgroups:
    def __init__(self, rootless: bool):
        self.rootless = rootless
        self.unified = os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))
        self.parents = self._parent_dirs()
        self.controllers = self._controllers()
        if not self.parents:
            log.warning("no writable cgroup hierarchy: containers run without a cgroup of their own")

    def _controllers(self):
        """The limits' controllers that the container's groups will have (`swap`: memsw on v1,
        memory.swap.max on v2)."""
        if not self.parents:
            return frozenset()
        if self.unified:
            delegating = os.path.dirname(self.parents[0])
            names = set(read_or_empty(os.path.join(delegating, "cgroup.controllers")).split())
            if "memory" in names:
                names.add("swap")
            return frozenset(names)
        names = set()
        roots = {os.path.dirname(parent) for parent in self.parents}
        for point, fstype, options in _mounts():
            if fstype == "cgroup" and point in roots:
                names.update(o for o in options if o in _V1_CONTROLLERS)
                if os.path.exists(os.path.join(point, "memory.memsw.limit_in_bytes")):
                    names.add("swap")
        return frozenset(names)

    def missing_reason(self, controllers):
        """What this machine lacks to enforce limits of CONTROLLERS, and what to change: one line."""
        delegation = "cgroup v2 with systemd delegation (Delegate=yes for user@.service)"
        if self.rootless and not self.unified:
            return f"rootless containers get no cgroup on this machine (cgroup v1 is never delegated to a user); this needs {delegation}"
        if self.rootless and not self.parents:
            return ("the daemon's cgroup is not delegated to this user; start the daemon in one: "
                    "systemd-run --user --scope -p Delegate=yes minictrd")
        if self.rootless:
            return f"the {', '.join(controllers)} controller is not delegated to this user; this needs {delegation}"
        if controllers == ["swap"]:
            return "swap accounting is off in this kernel (boot with swapaccount=1)"
        return f"the cgroup {', '.join(controllers)} controller is not available on this machine"

    def _parent_dirs(self):
        mounts = list(_mounts())
        unified = os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))
        if unified:
            if not self.rootless:
                return [os.path.join(CGROUP_ROOT, "minictr")]
            # Rootless needs a delegated subtree (systemd's user@UID.service gives one).
            parent = _own_v2_dir()
            if parent and os.path.basename(parent) == LEAF and os.path.isdir(os.path.join(parent, "..", "minictr")):
                parent = os.path.dirname(parent)  # an earlier daemon moved itself there (enable_controllers)
            if parent and os.access(parent, os.W_OK):
                return [os.path.join(parent, "minictr")]
            return []
        if self.rootless:
            return []  # v1 is never delegated to an unprivileged user
        parents = []
        for point, fstype, options in mounts:
            if fstype == "cgroup" and any(o in options for o in _V1_CONTROLLERS):
                parents.append(os.path.join(point, "minictr"))
        return parents

    def filesystems(self, privileged=False):
        """Monitor `cgroupfs` entries: the hierarchies of the container's groups, for /sys/fs/cgroup
        (with PRIVILEGED, every hierarchy of this host's)."""
        if not self.parents:
            return []
        if self.unified:
            return [("cgroupfs", "cgroup2", "-", "-")]
        entries = []
        for point, fstype, options in _mounts():
            if fstype == "cgroup" and os.path.join(point, "minictr") in self.parents:
                controllers = ",".join(o for o in options if o in _V1_CONTROLLERS + _V1_OTHERS)
                entries.append(("cgroupfs", "cgroup", controllers, os.path.basename(point)))
        return entries + (self._other_hierarchies() if privileged else [])

    def _other_hierarchies(self):
        """The hybrid host's hierarchies that hold no group of a container: systemd's named one and the
        cgroup2 one beside the v1 controllers. A --privileged container gets them too, as the host has
        them, so that an engine run inside (a CI job's minictr or systemd) finds this host's layout."""
        entries = []
        for point, fstype, options in _mounts():
            name = os.path.basename(point)
            if os.path.dirname(point) != CGROUP_ROOT or os.path.join(point, "minictr") in self.parents:
                continue
            if fstype == "cgroup2":
                entries.append(("cgroupfs", "cgroup2", "-", name))
            elif any(o.startswith("name=") for o in options):
                kept = [o for o in options if o.startswith("name=") or o in _V1_CONTROLLERS + _V1_OTHERS]
                entries.append(("cgroupfs", "cgroup", ",".join(kept), name))
        return entries

    def groups_of(self, container_id):
        """Where create() puts a container's groups, whether they exist or not."""
        return [os.path.join(parent, container_id) for parent in self.parents]

    def create(self, container_id, limits=None, devices=None):
        """Make the container's groups with LIMITS (cgroup_limits in containers/resources.py) written
        and only the devices that DEVICES allow (security/devices.py's cgroup_rules; None: every device,
        --privileged); returns their directories for the monitor to join."""
        made = []
        try:
            for parent in self.parents:
                _make_group(parent)
                if self.unified:
                    enable_controllers([os.path.dirname(parent), parent], self.controllers)
                path = os.path.join(parent, container_id)
                _make_group(path)
                made.append(path)
            if limits:
                apply_limits(made, limits, self.unified)
            # Rootless makes no device nodes (the kernel refuses mknod in a user namespace) and may not
            # load BPF programs: its containers open only the host's nodes that the user may open.
            if made and devices is not None and not self.rootless:
                apply_device_rules(made, devices, self.unified)
        except OSError:
            self.remove(made)
            raise
        return made

    def oom_killed(self, paths):
        """Whether the kernel's OOM killer killed a process of the container's groups (read before
        they are removed)."""
        for path in paths:
            for name in ("memory.events", "memory.oom_control"):
                for line in read_or_empty(os.path.join(path, name)).splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                        return True
        return False

    def freezer(self, paths):
        """The file that freezes the container's group: v2's cgroup.freeze or v1's freezer.state; None
        when there is none (rootless on cgroup v1)."""
        for path in paths:
            for name in ("cgroup.freeze", "freezer.state"):
                if os.path.exists(os.path.join(path, name)):
                    return os.path.join(path, name)
        return None

    def remove(self, paths):
        """Remove what can be removed now; returns the groups still busy (their last task is
        still on its way out: the caller tries again a moment later)."""
        return [path for path in paths if not _remove_group(path)]


_V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio")
# Controllers minictr does not use but that share a hierarchy with one it does (`net_cls,net_prio`).
_V1_OTHERS = ("net_cls", "net_prio", "hugetlb", "perf_event", "rdma", "misc")


def read_or_empty(path):
    """A small kernel file's text; "" when it cannot be read (a controller or process that is not there)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def enable_controllers(dirs, controllers):
    """v2: give the groups below each of DIRS (top-most first) the controllers our limits need; what a
    directory cannot delegate is left (the limits on it were refused or warned about at create)."""
    for path in dirs:
        available = set(read_or_empty(os.path.join(path, "cgroup.controllers")).split())
        enabled = set(read_or_empty(os.path.join(path, "cgroup.subtree_control")).split())
        wanted = [c for c in ("cpu", "cpuset", "io", "memory", "pids") if c in controllers and c in available
                  and c not in enabled]
        if not wanted:
            continue
        try:
            try:
                _write_subtree_control(path, wanted)
            except OSError as e:
                # v2 lets a group that holds processes give no controllers to its children: the daemon's own
                # group does (a delegated systemd scope or service, or a CI container's root) until its
                # processes move into a leaf, as Docker-in-Docker does with /init.
                if e.errno != errno.EBUSY or not _move_processes_to_leaf(path):
                    raise
                _write_subtree_control(path, wanted)
        except OSError as e:
            log.warning("cannot enable the %s controllers in %s: %s", " ".join(wanted), path, e.strerror)


def _write_subtree_control(path, names):
    with open(os.path.join(path, "cgroup.subtree_control"), "w") as f:
        f.write(" ".join(f"+{name}" for name in names))


def _move_processes_to_leaf(path):
    """Move every process of the group PATH into PATH/init; False when it holds none (nothing to move)."""
    pids = read_or_empty(os.path.join(path, "cgroup.procs")).split()
    if not pids:
        return False
    leaf = os.path.join(path, LEAF)
    os.makedirs(leaf, exist_ok=True)
    for pid in pids:
        try:
            with open(os.path.join(leaf, "cgroup.procs"), "w") as f:
                f.write(pid)
        except ProcessLookupError:
            pass  # it exited meanwhile
    log.info("moved the %d processes of %s into %s to delegate its controllers", len(pids), path, leaf)
    return True


def shares_to_weight(shares):
    """runc's conversion of cpu.shares (2..262144) to cpu.weight (1..10000)."""
    return 1 + ((shares - 2) * 9999) // 262142 if shares else 0


def limit_files(limits, unified, current_cpu_max=""):
    """[(file, value)] that set LIMITS (containers/resources.py's cgroup_limits), in the order to write."""
    writes = []
    memory, swap = limits.get("memory"), limits.get("memory_swap")
    if unified:
        if memory is not None:
            writes.append(("memory.max", "max" if memory < 0 else str(memory)))
        if swap is not None:
            unlimited = swap < 0 or not memory or memory < 0
            writes.append(("memory.swap.max", "max" if unlimited else str(max(swap - memory, 0))))
        if "cpu_quota" in limits or "cpu_period" in limits:
            old_quota, _, old_period = (current_cpu_max or "max 100000").partition(" ")
            quota = limits.get("cpu_quota", old_quota if old_quota == "max" else int(old_quota))
            period = limits.get("cpu_period", int(old_period or 100000))
            writes.append(("cpu.max", f"{'max' if quota == 'max' or quota < 0 else quota} {period}"))
        if limits.get("cpu_shares"):
            writes.append(("cpu.weight", str(shares_to_weight(limits["cpu_shares"]))))
        if limits.get("cpuset_cpus"):
            writes.append(("cpuset.cpus", limits["cpuset_cpus"]))
        if "pids" in limits:
            writes.append(("pids.max", "max" if limits["pids"] < 0 else str(limits["pids"])))
        return writes
    if memory is not None:
        writes.append(("memory.limit_in_bytes", str(memory)))
    if swap is not None:
        writes.append(("memory.memsw.limit_in_bytes", str(swap)))
    if "cpu_period" in limits:
        writes.append(("cpu.cfs_period_us", str(limits["cpu_period"])))
    if "cpu_quota" in limits:
        writes.append(("cpu.cfs_quota_us", str(limits["cpu_quota"])))
    if limits.get("cpu_shares"):
        writes.append(("cpu.shares", str(limits["cpu_shares"])))
    if limits.get("cpuset_cpus"):
        writes.append(("cpuset.cpus", limits["cpuset_cpus"]))
    if "pids" in limits:
        writes.append(("pids.max", "max" if limits["pids"] < 0 else str(limits["pids"])))
    if "memory_swappiness" in limits:
        writes.append(("memory.swappiness", str(limits["memory_swappiness"])))
    if limits.get("oom_kill_disable"):
        writes.append(("memory.oom_control", "1"))
    return writes


def apply_limits(paths, limits, unified):
    """Write LIMITS into the container's groups PATHS (v1: one per hierarchy; v2: one)."""
    cpu_max = next((read_or_empty(os.path.join(p, "cpu.max")).strip() for p in paths
                    if os.path.exists(os.path.join(p, "cpu.max"))), "")
    writes = limit_files(limits, unified, cpu_max)
    # v1 wants memsw >= memory at every moment: when memory goes above the old memsw, memsw first.
    names = [name for name, _ in writes]
    if not unified and "memory.memsw.limit_in_bytes" in names:
        memory_at = names.index("memory.limit_in_bytes") if "memory.limit_in_bytes" in names else -1
        new_memory = int(writes[memory_at][1]) if memory_at >= 0 else -1
        old_swap = _read_int(paths, "memory.memsw.limit_in_bytes")
        if memory_at >= 0 and (new_memory < 0 or (old_swap is not None and new_memory > old_swap)):
            writes.insert(0, writes.pop(names.index("memory.memsw.limit_in_bytes")))
    for name, value in writes:
        path = next((p for p in paths if os.path.exists(os.path.join(p, name))), None)
        if path is None:
            raise OSError(errno.ENOENT, f"no cgroup file {name} for this container's groups")
        try:
            with open(os.path.join(path, name), "w") as f:
                f.write(value)
        except OSError as e:
            raise OSError(e.errno, f"write {value} to {os.path.join(path, name)}: {e.strerror}") from None


def apply_device_rules(paths, rules, unified):
    """Deny every device to the container's groups PATHS but what RULES allow (spec.devices.Rule), before
    any process joins them: v1 writes `a` to devices.deny then each rule to devices.allow; v2 has no such
    files and takes a BPF program instead (native/devices.c)."""
    if unified:
        native.attach_device_filter(paths[0], rules)
        return
    group = next((p for p in paths if os.path.exists(os.path.join(p, "devices.deny"))), None)
    if group is None:
        raise OSError(errno.ENOENT, "no devices cgroup for the container: its access to the host's devices "
                                    "cannot be limited")
    for name, line in [("devices.deny", "a")] + [("devices.allow", str(rule)) for rule in rules]:
        try:
            with open(os.path.join(group, name), "w") as f:
                f.write(line)
        except OSError as e:
            raise OSError(e.errno, f"write {line!r} to {os.path.join(group, name)}: {e.strerror}") from None


def _read_int(paths, name):
    for path in paths:
        text = read_or_empty(os.path.join(path, name)).strip()
        if text.lstrip("-").isdigit():
            return int(text)
    return None


def _make_group(path):
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        return
    # A v1 cpuset group refuses tasks until it has cpus and mems: inherit the parent's. Not on v2 (a group
    # with cgroup.controllers): its empty cpuset.cpus already means the parent's, and the root group has
    # no cpuset.cpus to copy (the first group made below it failed with ENOENT, seen on Debian 12).
    if os.path.exists(os.path.join(path, "cgroup.controllers")):
        return
    for name in ("cpuset.cpus", "cpuset.mems"):
        own = os.path.join(path, name)
        if os.path.exists(own):
            with open(os.path.join(os.path.dirname(path), name)) as f:
                value = f.read().strip()
            with open(own, "w") as f:
                f.write(value)


def _remove_group(path):
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno == errno.EBUSY:
            return False
        log.warning("cannot remove cgroup %s: %s", path, e.strerror)
    return True


def freeze(freezer_file, frozen):
    """Freeze or thaw a group and wait until the kernel says it is done (v1 goes through FREEZING)."""
    v2 = freezer_file.endswith("cgroup.freeze")
    with open(freezer_file, "w") as f:
        f.write(("1" if frozen else "0") if v2 else ("FROZEN" if frozen else "THAWED"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if v2:
            with open(os.path.join(os.path.dirname(freezer_file), "cgroup.events")) as f:
                done = f"frozen {1 if frozen else 0}" in f.read()
        else:
            with open(freezer_file) as f:
                done = f.read().strip() == ("FROZEN" if frozen else "THAWED")
        if done:
            return True
        time.sleep(0.005)
    return False


class MigrationWarmer:
    """Takes the wait for an RCU grace period off a container's start (cgroup v1, as root).

    Moving a process into a cgroup takes the kernel's cgroup_threadgroup_rwsem for writing. The
    first writer after a quiet spell waits for an RCU grace period (8-16 ms measured here); writers
    within about one grace period of the last one do not (the rwsem's rcu_sync is still in its
    slow-reader mode). So while containers are being created and started, a thread of the daemon,
    kept in the minictr/ group of one hierarchy, moves itself into that same group every few ms (a
    move that changes nothing, but takes the rwsem), for _ACTIVE seconds after the last create or
    start: the monitor's move of the container's process then finds the wait over. This is what the
    kernel's `favordynmods` cgroup option does for good, at the same price: forks and exits take
    the rwsem's slower read path meanwhile. The first start after a quiet spell still waits for
    one grace period, before it spawns the monitor: two writers waiting at once wait longer."""

    _PERIOD = 0.004  # well within one grace period
    _ACTIVE = 2.0
    _MAX_WAIT = 0.1

    def __init__(self, group):
        self._tasks = os.path.join(group, "tasks")
        self._active_until = 0.0
        self._first = None  # the first move after a quiet spell, while it is under way
        self._wake = threading.Event()
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._serve, name="cgroup-warmer", daemon=True).start()

    @classmethod
    def for_cgroups(cls, cgroups):
        """A warmer for these groups, or None where there is nothing to warm (no v1 groups)."""
        if cgroups.rootless or cgroups.unified or not cgroups.parents:
            return None
        by_name = {os.path.basename(os.path.dirname(p)): p for p in cgroups.parents}
        group = by_name.get("freezer") or by_name.get("pids") or cgroups.parents[0]
        try:
            _make_group(group)
        except OSError:
            return None
        return cls(group)

    def warm(self):
        """Keep moves fast for the next _ACTIVE seconds."""
        idle = time.monotonic() >= self._active_until
        self._active_until = time.monotonic() + self._ACTIVE
        if idle and self._first is None:
            self._first = self._loop.create_future()
            self._wake.set()

    async def ready(self):
        """Return once the first move after a quiet spell is done (at most _MAX_WAIT later)."""
        if self._first is not None:
            await asyncio.wait([self._first], timeout=self._MAX_WAIT)

    def _serve(self):
        tid = str(threading.get_native_id()).encode()
        fd = os.open(self._tasks, os.O_WRONLY | os.O_CLOEXEC)
        while True:
            self._wake.wait()
            self._wake.clear()
            while time.monotonic() < self._active_until:
                try:
                    os.write(fd, tid)
                except OSError as e:
                    log.warning("cgroup warm-up off: %s", e)
                    self._active_until = float("inf")
                    self._loop.call_soon_threadsafe(self._first_done)
                    return
                if self._first is not None:
                    self._loop.call_soon_threadsafe(self._first_done)
                time.sleep(self._PERIOD)

    def _first_done(self):
        if self._first is not None:
            self._first.set_result(None)
            self._first = None
