"""The cgroup v2 writer, against a fake /sys/fs/cgroup (this machine binds its controllers to v1, so v2
is only exercised here), and the v1 file names."""

import os
from pathlib import Path

import pytest

from minictr.containers import cgroups
from minictr.containers.resources import cgroup_limits
from minictr.spec.resources import normalize

MiB = 1024 * 1024


@pytest.fixture
def v2_root(tmp_path, monkeypatch):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", str(tmp_path))
    return tmp_path


def _fake_group(path, cpu_max="max 100000"):
    """A container's group as the kernel would show it (and its parent, minictr/, made by hand: the
    kernel fills a new group's interface files, a plain mkdir here does not)."""
    path.parent.mkdir(exist_ok=True)
    for name, text in (("cgroup.controllers", "cpuset cpu io memory pids\n"), ("cgroup.subtree_control", "")):
        if not (path.parent / name).exists():
            (path.parent / name).write_text(text)
    path.mkdir()
    for name in ("memory.max", "memory.swap.max", "cpu.weight", "cpuset.cpus", "pids.max", "cgroup.procs"):
        (path / name).write_text("max\n")
    (path / "cpu.max").write_text(cpu_max + "\n")
    (path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (path / "cgroup.subtree_control").write_text("")
    return path


def _limits(**host_config):
    normalize(host_config)
    return cgroup_limits(host_config)


def test_v2_limits_go_to_memory_max_swap_max_cpu_max_weight_cpuset_and_pids(v2_root):
    c = cgroups.Cgroups(rootless=False)
    assert c.parents == [str(v2_root / "minictr")]
    assert {"memory", "swap", "cpu", "cpuset", "pids"} <= c.controllers
    group = _fake_group(v2_root / "minictr" / "abc")
    made = c.create("abc", _limits(Memory=64 * MiB, MemorySwap=96 * MiB, NanoCpus=1_500_000_000, CpuShares=1024,
                                   CpusetCpus="0-1", PidsLimit=40))
    assert made == [str(group)]
    assert (group / "memory.max").read_text() == str(64 * MiB)
    assert (group / "memory.swap.max").read_text() == str(32 * MiB)  # swap is the total minus the memory
    assert (group / "cpu.max").read_text() == "150000 100000"
    assert (group / "cpu.weight").read_text() == "39"  # runc's conversion of 1024 shares
    assert (group / "cpuset.cpus").read_text() == "0-1"
    assert (group / "pids.max").read_text() == "40"


def test_the_first_v2_group_below_the_root_is_made_though_the_root_has_no_cpuset_cpus(v2_root, monkeypatch):
    # The kernel fills a new group with its interface files (cpuset.cpus, empty, when the parent delegates
    # cpuset); the root group has only cpuset.cpus.effective. minictr/ is made at the first create.
    made_by_mkdir = os.mkdir

    def kernel_mkdir(path, mode=0o777):
        made_by_mkdir(path, mode)
        for name, text in (("cgroup.controllers", "cpuset cpu io memory pids"), ("cgroup.subtree_control", ""),
                           ("cpuset.cpus", ""), ("cpuset.mems", ""), ("pids.max", "max")):
            (Path(path) / name).write_text(text)

    monkeypatch.setattr(os, "mkdir", kernel_mkdir)
    made = cgroups.Cgroups(rootless=False).create("abc", _limits(PidsLimit=5))
    assert made == [str(v2_root / "minictr" / "abc")]
    assert (v2_root / "minictr" / "abc" / "pids.max").read_text() == "5"
    assert (v2_root / "minictr" / "abc" / "cpuset.cpus").read_text() == ""  # the parent's cpus


def test_v2_enables_the_controllers_in_the_parents_subtree_control(v2_root):
    _fake_group(v2_root / "minictr" / "abc")
    cgroups.Cgroups(rootless=False).create("abc", _limits(PidsLimit=5))
    assert (v2_root / "cgroup.subtree_control").read_text() == "+cpu +cpuset +io +memory +pids"
    assert (v2_root / "minictr" / "cgroup.subtree_control").read_text() == "+cpu +cpuset +io +memory +pids"


def test_v2_memory_alone_gets_dockers_default_swap_equal_to_the_memory(v2_root):
    group = _fake_group(v2_root / "minictr" / "abc")
    cgroups.Cgroups(rootless=False).create("abc", _limits(Memory=10 * MiB))
    assert (group / "memory.swap.max").read_text() == str(10 * MiB)


def test_v2_unlimited_swap_and_update_back_to_unlimited(v2_root):
    group = _fake_group(v2_root / "minictr" / "abc", cpu_max="50000 100000")
    cgroups.apply_limits([str(group)], cgroup_limits({"Memory": 10 * MiB, "MemorySwap": -1}), True)
    assert (group / "memory.swap.max").read_text() == "max"
    # An update that lifts the pids limit and sets a quota keeps the period it found.
    cgroups.apply_limits([str(group)], cgroup_limits({"PidsLimit": None, "CpuQuota": 20000},
                                                     keys=["PidsLimit", "CpuQuota"]), True)
    assert (group / "pids.max").read_text() == "max"
    assert (group / "cpu.max").read_text() == "20000 100000"


def test_oom_kills_are_read_from_memory_events(v2_root):
    group = _fake_group(v2_root / "minictr" / "abc")
    c = cgroups.Cgroups(rootless=False)
    (group / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    assert c.oom_killed([str(group)]) is False
    (group / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert c.oom_killed([str(group)]) is True


def test_a_v2_parent_without_the_memory_controller_cannot_enforce_memory(v2_root):
    (v2_root / "cgroup.controllers").write_text("cpu pids\n")
    c = cgroups.Cgroups(rootless=False)
    assert "memory" not in c.controllers and "pids" in c.controllers
    assert "memory" in c.missing_reason(["memory"])


@pytest.mark.parametrize("shares, weight", [(2, 1), (1024, 39), (262144, 10000)])
def test_shares_become_weight_as_runc_converts_them(shares, weight):
    assert cgroups.shares_to_weight(shares) == weight


def test_v1_file_names():
    writes = dict(cgroups.limit_files(_limits(Memory=32 * MiB, NanoCpus=500_000_000, CpuShares=512, CpusetCpus="0",
                                              PidsLimit=9), unified=False))
    assert writes == {"memory.limit_in_bytes": str(32 * MiB), "memory.memsw.limit_in_bytes": str(64 * MiB),
                      "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000", "cpu.shares": "512",
                      "cpuset.cpus": "0", "pids.max": "9"}


def _kernel_refuses_delegation_from_a_group_with_processes(monkeypatch):
    """The v2 rule a fake tree cannot enforce by itself: a non-root group holding processes gives its
    children no controllers (EBUSY)."""
    import errno
    import os

    real_write, real_move = cgroups._write_subtree_control, cgroups._move_processes_to_leaf

    def write(path, names):
        procs = os.path.join(path, "cgroup.procs")
        if os.path.exists(procs) and open(procs).read().split():
            raise OSError(errno.EBUSY, "Device or resource busy")
        real_write(path, names)

    def move(path):
        moved = real_move(path)
        open(os.path.join(path, "cgroup.procs"), "w").close()  # migration empties the source group
        return moved

    monkeypatch.setattr(cgroups, "_write_subtree_control", write)
    monkeypatch.setattr(cgroups, "_move_processes_to_leaf", move)


def test_a_daemon_group_holding_processes_moves_them_to_a_leaf_to_delegate_its_controllers(v2_root, monkeypatch):
    # A rootless daemon in a delegated systemd scope: its own group is writable and holds its processes.
    own = v2_root / "user.slice" / "run-1.scope"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpu memory pids\n")
    (own / "cgroup.subtree_control").write_text("")
    (own / "cgroup.procs").write_text("4242\n4243\n")
    monkeypatch.setattr(cgroups, "_own_v2_dir", lambda: str(own))
    _kernel_refuses_delegation_from_a_group_with_processes(monkeypatch)
    c = cgroups.Cgroups(rootless=True)
    assert c.parents == [str(own / "minictr")]
    _fake_group(own / "minictr" / "abc")
    c.create("abc", _limits(Memory=64 * MiB, PidsLimit=10))
    assert (own / "init" / "cgroup.procs").read_text() == "4243"  # each pid written in turn (the fake keeps the last)
    assert (own / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (own / "minictr" / "abc" / "memory.max").read_text() == str(64 * MiB)
    # A daemon started again finds itself in the leaf and keeps the same parent for its containers.
    monkeypatch.setattr(cgroups, "_own_v2_dir", lambda: str(own / "init"))
    assert cgroups.Cgroups(rootless=True).parents == [str(own / "minictr")]


def test_a_group_the_kernel_refuses_for_another_reason_is_left_with_a_warning(v2_root, monkeypatch, caplog):
    import errno

    def refuse(path, names):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(cgroups, "_write_subtree_control", refuse)
    cgroups.enable_controllers([str(v2_root)], {"memory"})
    assert "cannot enable the memory controllers" in caplog.text
    assert not (v2_root / "init").exists()
