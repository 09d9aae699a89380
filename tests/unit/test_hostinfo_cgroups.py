"""Mapping a group named in /proc/PID/cgroup to its directory through the cgroup mounts' roots
(hostinfo.cgroup_dir): on a host the roots are `/`; inside a container without a cgroup namespace
they are the container's own group."""

from minictr.hostinfo import cgroup_dir, cgroup_mounts

HOST = """\
30 24 0:26 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
31 24 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
32 24 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
"""
# Docker's privileged container without a cgroup namespace: each hierarchy shows the container's group.
NESTED = """\
700 690 0:27 /docker/abc /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
701 690 0:28 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
702 690 0:26 /docker/abc /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
"""


def _mounts(tmp_path, text):
    path = tmp_path / "mountinfo"
    path.write_text(text)
    return cgroup_mounts(str(path))


def test_on_a_host_the_group_is_below_the_mount_point(tmp_path):
    mounts = _mounts(tmp_path, HOST)
    assert cgroup_dir("/user.slice/x", "memory", mounts) == "/sys/fs/cgroup/memory/user.slice/x"
    assert cgroup_dir("/", "cpu", mounts) == "/sys/fs/cgroup/cpu,cpuacct"
    assert cgroup_dir("/user.slice", None, mounts) == "/sys/fs/cgroup/unified/user.slice"


def test_nested_without_a_cgroup_namespace_the_mount_root_is_taken_off(tmp_path):
    mounts = _mounts(tmp_path, NESTED)
    assert cgroup_dir("/docker/abc", "memory", mounts) == "/sys/fs/cgroup/memory"
    assert cgroup_dir("/docker/abc/minictr/c1", "cpuacct", mounts) == "/sys/fs/cgroup/cpu,cpuacct/minictr/c1"
    assert cgroup_dir("/docker/abc/init", None, mounts) == "/sys/fs/cgroup/unified/init"


def test_a_group_outside_every_mount_root_has_no_directory_here(tmp_path):
    mounts = _mounts(tmp_path, NESTED)
    assert cgroup_dir("/docker/other", "memory", mounts) is None
    assert cgroup_dir("/docker/abcdef", "memory", mounts) is None  # a prefix of the name is not a parent
    assert cgroup_dir("/docker/abc", "pids", mounts) is None  # no hierarchy of that controller


def test_a_later_mount_on_the_same_group_hides_the_earlier(tmp_path):
    mounts = _mounts(tmp_path, HOST + "40 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    assert cgroup_dir("/a", None, mounts) == "/sys/fs/cgroup/a"


def test_a_mount_on_the_point_of_another_hides_it(tmp_path):
    mounts = _mounts(tmp_path, HOST + "41 31 0:27 /a/nest /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
                                      "42 32 0:60 / /sys/fs/cgroup/cpu,cpuacct rw - tmpfs tmpfs rw\n")
    assert [(m.point, m.root) for m in mounts] == [("/sys/fs/cgroup/unified", "/"), ("/sys/fs/cgroup/memory", "/a/nest")]
    assert cgroup_dir("/a/nest/minictr/c1", "memory", mounts) == "/sys/fs/cgroup/memory/minictr/c1"
