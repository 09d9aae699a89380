"""minictr-monitor with `exec_pid`: a process that joins a running container (docs/internals.md)."""

import os
import signal
import socket
from pathlib import Path

import pytest

from .conftest import PATH_ENV, Container, read_frames, wait_for
from .test_userns import IDMAPS, OUTSIDE


@pytest.fixture
def running(containers):
    """A container whose init sleeps, started, with its hostname set."""

    def start(**options):
        c = containers.create(["sleep", "60"], hostname="target", **options)
        assert c.created.startswith("created "), c.created
        assert c.start() == "started\n"
        wait_for(lambda: os.readlink(f"/proc/{c.pid}/exe").endswith("busybox"), what="exec of init")
        return c

    return start


def exec_in(containers, target, args, *, uid=0, gid=0, cwd="/", stdin=False, env=(PATH_ENV,), extra=()):
    """Spawn a monitor in exec mode against TARGET's init; returns it created (not started)."""
    directory = Path(os.path.realpath(containers.tmp_path / f"exec{len(containers.containers)}"))
    (directory / "run").mkdir(parents=True)
    config = [("id", "c" * 64), ("exec_pid", str(target.pid)), ("cwd", cwd), ("uid", str(uid)),
              ("gid", str(gid)), ("stdin", "1" if stdin else "0"),
              ("exit", str(directory / "run/exit")), ("attach", str(directory / "run/attach.sock"))]
    config += [("arg", a) for a in args] + [("env", e) for e in env] + list(extra)
    e = Container(directory, config)
    containers.containers.append(e)
    return e


def run_exec(containers, target, args, mask=6, **options):
    e = exec_in(containers, target, args, **options)
    assert e.created.startswith("created "), e.created
    client = e.attach(mask)
    e.started = e.start()
    e.output = read_frames(client)
    client.close()
    e.exit_code, _ = e.wait_exit()
    return e


def stop(target):
    os.kill(target.pid, signal.SIGKILL)
    assert target.wait_exit()[0] == 137


def test_exec_sees_the_containers_hostname_and_processes(containers, running):
    target = running()
    e = run_exec(containers, target, ["sh", "-c", "hostname; ps -o pid,comm; exit 0"])
    assert e.started == "started\n"
    lines = e.output[1].decode().splitlines()
    assert lines[0] == "target"
    processes = [line.split() for line in lines[2:]]
    assert processes[0] == ["1", "sleep"]
    assert {"sh", "ps"} <= {p[1] for p in processes}
    assert e.exit_code == 0
    stop(target)


def test_exec_shares_every_namespace_of_the_init(containers, running):
    target = running()
    e = exec_in(containers, target, ["sleep", "30"])
    assert e.start() == "started\n"
    for ns in ("mnt", "uts", "ipc", "net", "cgroup", "pid"):
        assert os.readlink(f"/proc/{e.pid}/ns/{ns}") == os.readlink(f"/proc/{target.pid}/ns/{ns}"), ns
    assert os.readlink(f"/proc/{e.pid}/root") == "/"
    assert os.stat(f"/proc/{e.pid}/root").st_ino == os.stat(f"/proc/{target.pid}/root").st_ino
    assert Path(f"/proc/{e.pid}/comm").read_text() == "sleep\n"
    assert sorted(os.listdir(f"/proc/{e.pid}/fd")) == ["0", "1", "2"]
    os.kill(e.pid, signal.SIGKILL)
    assert e.wait_exit()[0] == 137
    stop(target)


def test_exec_sees_the_containers_files_not_the_hosts(containers, running):
    target = running()
    run_exec(containers, target, ["sh", "-c", "echo from-exec > /tmp/made"])
    assert (target.upper / "tmp/made").read_text() == "from-exec\n"
    e = run_exec(containers, target, ["cat", "/tmp/made"])
    assert e.output[1] == b"from-exec\n"
    stop(target)


def test_exit_status_and_missing_command(containers, running):
    target = running()
    assert run_exec(containers, target, ["sh", "-c", "exit 3"]).exit_code == 3
    e = run_exec(containers, target, ["nosuchcmd"])
    assert e.started == "error 2 exec `nosuchcmd`: No such file or directory\n"
    assert e.exit_code == 127
    e = run_exec(containers, target, ["/etc/passwd"])
    assert e.started.startswith("error 13 exec `/etc/passwd`")
    assert e.exit_code == 126
    stop(target)


def test_user_cwd_and_capabilities_as_the_init_gets_them(containers, running):
    target = running()
    e = run_exec(containers, target, ["sh", "-c", "id; pwd; grep -E 'CapEff|CapBnd' /proc/self/status"],
                 uid=1000, gid=1001, cwd="/tmp")
    assert e.output[1].decode().splitlines() == [
        "uid=1000 gid=1001", "/tmp", "CapEff:\t0000000000000000", "CapBnd:\t00000000a80425fb"]
    e = run_exec(containers, target, ["grep", "-E", "CapEff", "/proc/self/status"])
    assert e.output[1] == b"CapEff:\t00000000a80425fb\n"
    stop(target)


def test_missing_working_directory_is_an_error_as_in_docker(containers, running):
    target = running()
    e = exec_in(containers, target, ["true"], cwd="/no/such/dir")
    assert e.created == "error 2 chdir `/no/such/dir`: No such file or directory\n"
    e.wait_monitor_gone()
    assert not e.attach_path.exists() and not e.exit_path.exists()
    stop(target)


def test_stdin_reaches_the_exec(containers, running):
    target = running()
    e = exec_in(containers, target, ["cat"], stdin=True)
    client = e.attach(1 | 2)
    assert e.start() == "started\n"
    client.sendall(b"into the exec\n")
    client.shutdown(socket.SHUT_WR)
    assert read_frames(client) == {1: b"into the exec\n", 2: b""}
    assert e.wait_exit()[0] == 0
    stop(target)


def test_exec_dies_with_the_container(containers, running):
    target = running()
    e = exec_in(containers, target, ["sleep", "30"])
    assert e.start() == "started\n"
    stop(target)
    assert e.wait_exit()[0] == 137


def test_exec_into_a_stopped_container_fails_and_leaves_nothing(containers, running):
    target = running()
    stop(target)
    target.wait_monitor_gone()
    e = exec_in(containers, target, ["true"])
    assert e.created.startswith("error 3 pidfd_open"), e.created
    e.wait_monitor_gone()
    assert not e.attach_path.exists() and not e.exit_path.exists()


def test_exec_joins_the_user_namespace_of_a_userns_container(containers, running):
    def scratch_owned_by_inside_1000(upper):
        (upper / "scratch").mkdir()
        os.chown(upper / "scratch", OUTSIDE + 1000, OUTSIDE + 1000)

    target = running(userns=True, idmaps=IDMAPS, owner=(OUTSIDE, OUTSIDE),
                     prepare_upper=scratch_owned_by_inside_1000)
    e = run_exec(containers, target, ["sh", "-c", "id -u; cat /proc/self/uid_map; touch /scratch/mine"],
                 uid=1000, gid=1000)
    assert e.output[1].decode().split() == ["1000", "0", str(OUTSIDE), "65536"], e.output
    assert e.exit_code == 0
    assert (target.upper / "scratch/mine").stat().st_uid == OUTSIDE + 1000
    stop(target)


def test_exec_with_a_tty_gets_a_pty_of_the_containers_devpts(containers, running):
    from .test_monitor_tty import control, read_raw

    target = running()
    e = exec_in(containers, target, ["sh", "-c", "sleep 0.3; tty; stty size; echo err >&2"],
                extra=[("tty", "1"), ("tty_size", "30", "100")])
    assert e.created.startswith("created "), e.created
    client = e.attach(2 | 4)
    assert e.start() == "started\n"
    assert control(e, b"resize 40 120\n") == b"ok\n"
    assert read_raw(client) == b"/dev/pts/0\r\n40 120\r\nerr\r\n"
    assert e.wait_exit()[0] == 0
    stop(target)
