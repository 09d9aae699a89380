"""A container's resolved mounts on this host (containers/mounts.py)."""

from minictr.containers import mounts


def test_parents_mount_before_children():
    got = mounts.by_depth([{"destination": "/a/b/c"}, {"destination": "/a"}, {"destination": "/a/b"}])
    assert [m["destination"] for m in got] == ["/a", "/a/b", "/a/b/c"]
