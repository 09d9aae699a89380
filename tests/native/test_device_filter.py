"""cgroup v2's device controller: the BPF program of native/devices.c, attached to a group of this test's
own under the machine's cgroup2 hierarchy (/sys/fs/cgroup/unified on this hybrid machine, /sys/fs/cgroup
on a v2 one: a device program works on any cgroup2 group, whatever its controllers), checked by a child
moved into it opening nodes this test made. Nothing here writes to a device but /dev/null's twin; the
loop device is only opened O_RDONLY, and only where the program must refuse it."""

import errno
import json
import os
import secrets
from pathlib import Path

import pytest

from minictr.containers import cgroups
from minictr.security.devices import DEFAULT_RULES
from minictr.spec.devices import ANY, Rule

NODES = {"null": ("c", 1, 3), "mem": ("c", 1, 1), "fuse": ("c", 10, 229), "loop": ("b", 7, 0)}


def _cgroup2_root():
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if " - cgroup2 " in line]
    assert points, "this machine mounts no cgroup2 hierarchy"
    return Path(sorted(points, key=len)[0])


@pytest.fixture
def group():
    """A v2 group of this test's own, removed afterwards (its program goes with it)."""
    path = _cgroup2_root() / f"minictr-test-devices-{secrets.token_hex(4)}"
    path.mkdir()
    try:
        yield path
    finally:
        path.rmdir()


@pytest.fixture
def nodes(tmp_path):
    """Device nodes made here (not the host's /dev): the program judges by type and numbers alone."""
    for name, (kind, major, minor) in NODES.items():
        os.mknod(tmp_path / name, 0o600 | (0o020000 if kind == "c" else 0o060000), os.makedev(major, minor))
    return tmp_path


def in_group(group, action):
    """What `action()` returns (JSON-able) when run by a child moved into GROUP."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            (group / "cgroup.procs").write_text("0")
            os.write(write, json.dumps(action()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        result = f.read()
    os.waitpid(pid, 0)
    return json.loads(result)


def attempt(call):
    try:
        fd = call()
        if isinstance(fd, int):
            os.close(fd)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]


def opens(nodes, name, flags):
    return lambda: attempt(lambda: os.open(nodes / name, flags))


def test_dockers_default_list_on_a_v2_group_refuses_a_loop_device_and_dev_mem(group, nodes):
    cgroups.apply_device_rules([str(group)], DEFAULT_RULES, unified=True)
    result = in_group(group, lambda: {
        "null rw": opens(nodes, "null", os.O_RDWR)(),
        "mem r": opens(nodes, "mem", os.O_RDONLY)(),
        "fuse r": opens(nodes, "fuse", os.O_RDONLY)(),
        "loop r": opens(nodes, "loop", os.O_RDONLY)(),
        "mknod b": attempt(lambda: os.mknod(nodes / "b2", 0o600 | 0o060000, os.makedev(7, 1))),
    })
    assert result == {"null rw": "ok", "mem r": "EPERM", "fuse r": "EPERM", "loop r": "EPERM", "mknod b": "ok"}


def test_a_rule_grants_exactly_its_access(group, nodes):
    rules = [Rule("c", 10, 229, "r"), Rule("c", 1, ANY, "w")]
    cgroups.apply_device_rules([str(group)], rules, unified=True)
    result = in_group(group, lambda: {
        "fuse r": opens(nodes, "fuse", os.O_RDONLY)(),
        "fuse rw": opens(nodes, "fuse", os.O_RDWR)(),
        "null w": opens(nodes, "null", os.O_WRONLY)(),
        "null r": opens(nodes, "null", os.O_RDONLY)(),
        "mknod c": attempt(lambda: os.mknod(nodes / "c2", 0o600 | 0o020000, os.makedev(1, 3))),
    })
    assert result == {"fuse r": "ok", "fuse rw": "EPERM", "null w": "ok", "null r": "EPERM", "mknod c": "EPERM"}


def test_a_process_outside_the_group_is_not_affected(group, nodes):
    cgroups.apply_device_rules([str(group)], [], unified=True)
    assert in_group(group, opens(nodes, "null", os.O_RDONLY)) == "EPERM"
    assert opens(nodes, "null", os.O_RDONLY)() == "ok"
