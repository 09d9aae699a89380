"""The data root: one daemon at a time, and private to its owner (issue 17, item 5)."""

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.integration.conftest import Daemon, alive, wait_until


@pytest.fixture
def top():
    """A directory for a daemon of the test's own, its path short (the rootless daemon's sockets live
    under it)."""
    path = Path(tempfile.mkdtemp(prefix="mct-dr-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _start_second(socket, data_root):
    """A second daemon, as a user or the CLI's auto-start would run it; its result once it exits."""
    argv = [sys.executable, "-m", "minictr", "-H", f"unix://{socket}", "daemon", "--data-root", str(data_root)]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        # It runs: the very defect. kill(1) by pid is done by subprocess.run before raising.
        raise AssertionError(f"a second daemon started on {data_root}") from e


def _refused_naming(result, pid):
    lines = result.stderr.strip().splitlines()
    return result.returncode != 0 and len(lines) == 1 and f"pid {pid}" in lines[0] and "Traceback" not in lines[0]


def test_a_second_daemon_on_the_same_data_root_is_refused_naming_the_holder(daemon, top):
    other_socket = top / "run" / "minictr.sock"
    other_socket.parent.mkdir(mode=0o700)
    result = _start_second(other_socket, daemon.data_root)
    assert _refused_naming(result, daemon.process.pid), result.stderr
    assert str(daemon.data_root) in result.stderr
    assert not other_socket.exists()
    assert daemon.ok("ps", "-a").startswith("CONTAINER ID")


def test_a_second_daemon_on_the_same_socket_is_refused_and_the_first_keeps_it(daemon, top):
    result = _start_second(daemon.socket, top / "data")
    assert _refused_naming(result, daemon.process.pid), result.stderr
    assert daemon.socket.exists()
    assert daemon.ok("ps", "-a").startswith("CONTAINER ID")


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_data_root_left_readable_is_made_private_at_start(top):
    data_root = top / "data"
    data_root.mkdir(mode=0o755)
    os.chmod(data_root, 0o755)  # whatever the umask
    # As an older minictr left it: a WAL database and an engine id, every file 0644.
    with sqlite3.connect(data_root / "minictr.db") as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE leftover (x)")
    (data_root / "engine-id").write_text("0123456789abcdef0123456789abcdef")
    for name in os.listdir(data_root):
        os.chmod(data_root / name, 0o644)
    d = Daemon(top)
    try:
        d.start()
        d.ok("volume", "create", "private-vol")  # a write: the WAL is in use
        assert _mode(data_root) == 0o700
        for name in ("minictr.db", "minictr.db-wal", "minictr.db-shm", "engine-id", "minictrd.lock"):
            assert _mode(data_root / name) == 0o600, name
        assert _mode(d.socket.parent / "minictrd.pid") == 0o600
    finally:
        d.teardown()


def test_the_lock_goes_with_the_daemon(top):
    """A daemon killed with -9 does not keep the next one out: the kernel drops its locks."""
    first = Daemon(top)
    second = Daemon(top)
    try:
        first.start()
        first.kill()
        assert not alive(first.process.pid)
        second.start()
        assert second.ok("ps", "-a").startswith("CONTAINER ID")
        assert (first.socket.parent / "minictrd.pid").read_text().strip() == str(second.process.pid)
    finally:
        first.teardown()
        second.teardown()


def test_a_new_data_root_is_private(daemon):
    daemon.ok("volume", "create", "private-new")
    try:
        assert _mode(daemon.data_root) == 0o700
        for name in ("minictr.db", "minictr.db-wal", "minictr.db-shm", "engine-id"):
            assert _mode(daemon.data_root / name) == 0o600, name
    finally:
        daemon.ok("volume", "rm", "private-new")


def _daemons_on(data_root):
    """The pids of the daemons (their outer process, when rootless) started on `data_root` by the CLI."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if (b"minictr.daemon" in argv and b"--inner" not in argv and alive(int(entry))
                and f"MINICTR_DATA_ROOT={data_root}".encode() in environ):
            pids.append(int(entry))
    return pids


def test_commands_racing_to_start_the_daemon_all_work_with_one_daemon(top):
    env = dict(os.environ, MINICTR_RUNTIME_DIR=str(top / "run"), MINICTR_DATA_ROOT=str(top / "data"))
    env.pop("MINICTR_HOST", None)
    commands = [subprocess.Popen([sys.executable, "-m", "minictr", "ps"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        results = [(c.wait(60), *c.communicate()) for c in commands]
        for status, out, err in results:
            assert status == 0 and out.startswith("CONTAINER ID"), err
        assert _daemons_on(top / "data") == [int((top / "run" / "minictrd.pid").read_text())]
    finally:
        for pid in _daemons_on(top / "data"):
            os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not _daemons_on(top / "data"), what="the daemons to stop")


class _DaemonListeningAsDockerd(Daemon):
    """Started as dockerd is: the socket given to the daemon command itself (`daemon -H unix://PATH`)."""

    flag = "-H"

    def _argv(self):
        return [sys.executable, "-m", "minictr", "daemon", self.flag, self.host, "--data-root", str(self.data_root)]


@pytest.mark.parametrize("flag", ["-H", "--host"])
def test_daemon_takes_its_socket_as_dockerd_does(top, flag):
    from tests.integration.dockercli import PATH as DOCKER_PATH

    own = _DaemonListeningAsDockerd(top)
    own.flag = flag
    own.start()
    try:
        assert own.socket.exists()
        version = subprocess.run(["docker", "-H", own.host, "version", "--format", "{{.Server.Os}}"],
                                 capture_output=True, text=True, timeout=30,
                                 env={"PATH": DOCKER_PATH, "HOME": str(top)})
        assert version.returncode == 0, version.stderr
        assert version.stdout == "linux\n"
    finally:
        own.teardown()
    assert not alive(own.process.pid)
