"""A daemon inside a container: its cgroup mounts show its own group, not the hierarchy's root.

Docker gives a privileged container /sys/fs/cgroup/memory (and the others) mounted with root
`/docker/ID`, and without a cgroup namespace /proc/self/cgroup says `/docker/ID` too. The test makes
the same: a root daemon in a mount namespace of its own in which every cgroup mount of this host is
replaced by a bind mount of a new group below the test's own (mountinfo's root field is then that
group), the daemon moved into it. Limits, stats and pause must act on the container's real group,
seen from the host below that nested one. (Root only: cgroup v1, the hierarchy here, is never
delegated to a rootless daemon; rootless, the same mapping finds the daemon's own v2 group, which
tests/unit/test_hostinfo_cgroups.py and test_doctor.py check.)"""

import os
import secrets
import subprocess
import tempfile
from pathlib import Path

import pytest

from minictr.hostinfo import cgroup_mounts
from tests.integration.conftest import IMAGE, ROOTLESS, Daemon, cgroup_dir_of, inspect, wait_until

MiB = 1 << 20


class NestedCgroupDaemon(Daemon):
    """A root daemon whose cgroup mounts are bind mounts of NESTS[point] (a group under ours)."""

    def __init__(self, top, nests):
        super().__init__(top)
        self.nests = nests

    def _argv(self):
        script = "".join(f'mount --bind "{nest}" "{point}" && echo $$ > "{point}/cgroup.procs" && '
                         for point, nest in self.nests.items())
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script + 'exec "$@"', "sh",
                *super()._argv()]


def _make_nests():
    """A new group below the test's own in every cgroup hierarchy: {mount point: its directory}."""
    name = "mctest-nest-" + secrets.token_hex(3)
    nests = {}
    for mount in cgroup_mounts():
        controller = None if mount.fstype == "cgroup2" else next(
            (o for o in mount.options if o != "rw" and not o.startswith("name=")), None)
        if mount.fstype == "cgroup" and controller is None:
            continue  # a named hierarchy (name=systemd): no controller to check
        own = cgroup_dir_of("self", controller)
        if own and own.startswith(mount.point) and mount.point not in nests:
            nests[mount.point] = os.path.join(own, name)
    for nest in nests.values():
        os.mkdir(nest)
        # A new cpuset group has no cpus nor memory nodes (no process may join it): its parent's, as Docker does.
        for name in ("cpuset.cpus", "cpuset.mems"):
            if os.path.exists(os.path.join(nest, name)):
                Path(nest, name).write_text(Path(os.path.dirname(nest), name).read_text())
    return nests


def _remove_nests(nests):
    for nest in nests.values():
        for top, dirs, _ in sorted(os.walk(nest), key=lambda entry: -len(entry[0])):
            try:
                os.rmdir(top)
            except OSError:
                pass


@pytest.fixture
def nested_daemon(busybox_tar):
    top = Path(tempfile.mkdtemp(prefix="minictr-nested-"))
    os.chmod(top, 0o755)
    nests = _make_nests()
    d = NestedCgroupDaemon(top, nests)
    try:
        d.start()
        d.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), IMAGE)
        yield d
    finally:
        d.teardown()
        _remove_nests(nests)
        subprocess.run(["rm", "-rf", str(top)], check=False)


def _nest_of(d, point):
    return next(nest for mount_point, nest in d.nests.items() if mount_point == point)


def _real_group(pid, controller):
    path = cgroup_dir_of(pid, controller)
    assert path, f"no {controller} group for {pid}"
    return Path(path)


def test_limits_stats_and_pause_act_on_the_containers_group_below_the_nested_root(nested_daemon):
    d = nested_daemon
    cid = d.ok("run", "-d", "--memory", "48m", "--pids-limit", "33", "--cpus", "0.5", IMAGE, "sleep", "600").strip()
    try:
        pid = inspect(d, cid)["State"]["Pid"]
        memory = _real_group(pid, "memory")
        # Seen from the host, the container's group is below the nested one, not at the hierarchy's top.
        nest = next(n for n in d.nests.values() if memory.is_relative_to(n))
        assert memory == Path(nest, "minictr", cid)
        assert (memory / "memory.limit_in_bytes").read_text().strip() == str(48 * MiB)
        assert (_real_group(pid, "pids") / "pids.max").read_text().strip() == "33"
        assert (_real_group(pid, "cpu") / "cpu.cfs_quota_us").read_text().strip() == "50000"

        usage, limit = d.ok("stats", "--no-stream", "--format", "{{.MemUsage}}", cid).strip().split(" / ")
        assert limit == "48MiB" and not usage.startswith("0B")
        assert d.ok("stats", "--no-stream", "--format", "{{.PIDs}}", cid).strip() == "1"

        freezer = _real_group(pid, "freezer") / "freezer.state"
        d.ok("pause", cid)
        assert freezer.read_text().strip() == "FROZEN"
        d.ok("unpause", cid)
        assert freezer.read_text().strip() == "THAWED"
    finally:
        d.cli("rm", "-f", cid)
    wait_until(lambda: not memory.exists(), what="the container's group to go")


if ROOTLESS:
    del test_limits_stats_and_pause_act_on_the_containers_group_below_the_nested_root
