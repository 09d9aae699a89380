"""User namespaces: a monitor with `userns 1`, and mc_userns_spawn via runtime/minictr/native.py."""

import os
import signal

import pytest

from minictr import native

OUTSIDE = 100000
IDMAPS = [("uidmap", (0, OUTSIDE, 65536)), ("gidmap", (0, OUTSIDE, 65536))]


def test_files_created_in_a_userns_container_belong_to_the_mapped_id(containers):
    c = containers.run(
        ["sh", "-c", "touch /made-here; mkdir -p /srv/d; id -u; cat /proc/self/uid_map"],
        userns=True, idmaps=IDMAPS, owner=(OUTSIDE, OUTSIDE),
    )
    assert c.started == "started\n", c.output
    lines = c.output[1].decode().split()
    assert lines == ["0", "0", str(OUTSIDE), "65536"]
    made = (c.upper / "made-here").stat()
    assert (made.st_uid, made.st_gid) == (OUTSIDE, OUTSIDE)
    assert (c.upper / "srv/d").stat().st_uid == OUTSIDE
    assert c.exit_code == 0


def test_userns_container_user_switch_maps_to_the_sub_range(containers):
    def scratch_owned_by_inside_1000(upper):
        (upper / "scratch").mkdir()
        os.chown(upper / "scratch", OUTSIDE + 1000, OUTSIDE + 1000)

    c = containers.run(["sh", "-c", "touch /scratch/mine; id -u"], uid=1000, gid=1000,
                       userns=True, idmaps=IDMAPS, owner=(OUTSIDE, OUTSIDE),
                       prepare_upper=scratch_owned_by_inside_1000)
    assert c.output == {1: b"1000\n", 2: b""}
    assert (c.upper / "scratch/mine").stat().st_uid == OUTSIDE + 1000


def test_userns_container_has_dev_nodes_and_sys(containers):
    c = containers.run(["sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c; ls /sys"],
                       userns=True, idmaps=IDMAPS, owner=(OUTSIDE, OUTSIDE))
    out = c.output[1].decode().split()
    assert out[0] == "4" and "kernel" in out
    assert c.exit_code == 0


def _write_maps(pid):
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(f"0 {OUTSIDE} 65536\n")


def test_spawn_in_userns_runs_as_root_of_a_new_user_namespace(containers):
    shared = containers.tmp_path / "spawn"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    out = shared / "out"
    script = f"id -u > {out}; readlink /proc/self/ns/user >> {out}; cat /proc/self/uid_map >> {out}"
    pid, sync_fd = native.spawn_in_userns(["/bin/sh", "-c", script], {"PATH": "/bin:/usr/bin"})
    try:
        _write_maps(pid)
        native.release_userns(sync_fd)
        _, status = os.waitpid(pid, 0)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    assert os.waitstatus_to_exitcode(status) == 0
    uid, userns, *uid_map = out.read_text().split()
    assert uid == "0"
    assert userns != os.readlink("/proc/self/ns/user")
    assert uid_map == ["0", str(OUTSIDE), "65536"]


def test_spawn_in_userns_exec_failure_raises_file_not_found():
    pid, sync_fd = native.spawn_in_userns(["/nonexistent/minictr-cmd"], {})
    _write_maps(pid)
    with pytest.raises(FileNotFoundError, match="exec `/nonexistent/minictr-cmd`"):
        native.release_userns(sync_fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 127


def test_spawned_child_exits_if_never_released():
    pid, sync_fd = native.spawn_in_userns(["/bin/true"], {})
    os.close(sync_fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1
