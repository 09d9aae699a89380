"""A cgroup per container: v1 controllers (root on hybrid machines), v2 (root, or delegated rootless).

Limits come later; for now each container gets its own group, joined by the
monitor before the container unshares its cgroup namespace, and removed when
the container is gone.
"""

import errno
import logging
import os

log = logging.getLogger("minictr.cgroups")

CGROUP_ROOT = "/sys/fs/cgroup"


def _mounts():
    """(mount point, fstype, super options) of every cgroup mount we can see."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            before, _, after = line.partition(" - ")
            fstype, _source, options = after.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                yield before.split()[4], fstype, options.split(",")


def _own_v2_cgroup():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


class Cgroups:
    def __init__(self, rootless: bool):
        self.rootless = rootless
        self.parents = self._parent_dirs()
        if not self.parents:
            log.warning("no writable cgroup hierarchy: containers run without a cgroup of their own")

    def _parent_dirs(self):
        mounts = list(_mounts())
        unified = os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))
        if unified:
            if not self.rootless:
                return [os.path.join(CGROUP_ROOT, "minictr")]
            own = _own_v2_cgroup()
            # Rootless needs a delegated subtree (systemd's user@UID.service gives one).
            parent = os.path.join(CGROUP_ROOT, own.lstrip("/")) if own else None
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

    def create(self, container_id):
        """Make the container's groups; returns their directories for the monitor to join."""
        made = []
        try:
            for parent in self.parents:
                _make_group(parent)
                path = os.path.join(parent, container_id)
                _make_group(path)
                made.append(path)
        except OSError:
            self.remove(made)
            raise
        return made

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


def _make_group(path):
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        return
    # A v1 cpuset group refuses tasks until it has cpus and mems: inherit the parent's.
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
    import time

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
