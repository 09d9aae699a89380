"""The daemon reaps what it starts (monitors, their helpers, the rootless holder and slirp4netns):
under a PID 1 that never waits — `sleep infinity` in a CI job container — nothing is left a zombie.

As root the daemon runs in a PID namespace of its own whose PID 1 is `sleep infinity`. Rootless
(no PID namespace without privileges) its parent is a child subreaper that never waits: what the
daemon leaves goes there, as it would to that PID 1."""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.integration.conftest import IMAGE, ROOTLESS, Daemon, alive, inspect, wait_until

# Exec'ed as PID 1 (root) or run as the daemon's parent (rootless): starts the daemon and never waits.
_SUBREAPER_THAT_NEVER_WAITS = """
import os, signal, sys, prctl
prctl.set_child_subreaper(1)
os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
while True:
    signal.pause()
"""


class NonReapingParentDaemon(Daemon):
    """A daemon whose orphans go to a process that never reaps (self.process); `storage_driver` as
    MINICTR_STORAGE_DRIVER ("": the daemon's choice)."""

    def __init__(self, top, storage_driver):
        super().__init__(top)
        self.storage_driver = storage_driver

    def _argv(self):
        daemon = [shutil.which("env"), f"MINICTR_STORAGE_DRIVER={self.storage_driver}", *super()._argv()]
        if ROOTLESS:
            return [sys.executable, "-c", _SUBREAPER_THAT_NEVER_WAITS, *daemon]
        return ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c",
                '"$@" & exec sleep infinity', "sh", *daemon]

    def reaper_pid(self):
        """The process that never waits: PID 1 of the namespace (unshare's child) or the subreaper."""
        if ROOTLESS:
            return self.process.pid
        return wait_until(lambda: _children(self.process.pid), what="unshare's child")[0]

    def daemon_process(self):
        """The daemon (rootless: its wrapper), the child of the process that never waits."""
        return next(pid for pid in _children(self.reaper_pid()) if "daemon" in _argv_of(pid))

    def stop_daemon(self):
        """SIGTERM to the daemon; returns its pid once it has ended, as a zombie of the process that
        never waits (as anything would), or None if it had already."""
        pid = next((pid for pid in _children(self.reaper_pid()) if "daemon" in _argv_of(pid)), None)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not alive(pid), what="the daemon to stop")
        return pid

    def stop(self):
        if self.process and self.process.poll() is None:
            self.stop_daemon()
            self.process.kill()
            self.process.wait()


def _children(pid):
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return children


def _argv_of(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


def _comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def zombies_below(pid):
    """The zombies among the descendants of `pid`, each as (pid, comm)."""
    found, pending = [], _children(pid)
    while pending:
        child = pending.pop()
        if _state(child) == "Z":
            found.append((child, _comm(child)))
            continue
        try:
            pending += _children(child)
        except OSError:
            pass  # ended meanwhile
    return found


# fuse-overlayfs daemonizes once per container mount: forced, its processes are reaped too.
@pytest.fixture(params=["", "fuse-overlayfs"], ids=["default-driver", "fuse-overlayfs"])
def daemon_under_sleep_infinity(request, busybox_tar):
    top = Path(tempfile.mkdtemp(prefix="minictr-reap-"))
    os.chmod(top, 0o755)
    d = NonReapingParentDaemon(top, request.param)
    try:
        d.start()
        d.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), IMAGE)
        yield d
    finally:
        d.teardown()
        subprocess.run(["rm", "-rf", str(top)], check=False)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_twenty_five_containers_leave_no_zombie_under_a_pid_1_that_never_waits(daemon_under_sleep_infinity):
    d = daemon_under_sleep_infinity
    network = "reap" + secrets.token_hex(3)
    d.ok("network", "create", network)
    try:
        for i in range(5):
            assert d.ok("run", "--rm", IMAGE, "echo", "hi").strip() == "hi"
            cid = d.ok("run", "-d", IMAGE, "sh", "-c", "exit 3").strip()
            assert d.ok("wait", cid).strip() == "3"
            d.ok("rm", cid)
            served = d.ok("run", "-d", "-p", f"127.0.0.1:{_free_port()}:80", IMAGE, "sleep", "600").strip()
            assert d.ok("exec", served, "echo", "in").strip() == "in"
            d.cli("exec", served, "sh", "-c", "exit 5")
            d.ok("rm", "-f", served)
            assert "inet " in d.ok("run", "--rm", "--network", network, IMAGE, "ip", "-o", "-4", "addr", "show", "eth0")
            restarted = d.ok("run", "-d", IMAGE, "sleep", "600").strip()
            first = inspect(d, restarted)["State"]["Pid"]
            d.ok("restart", "-t", "0", restarted)
            assert inspect(d, restarted)["State"]["Pid"] != first
            d.ok("rm", "-f", restarted)
        assert d.ok("ps", "-a", "-q") == ""
        reaper = d.reaper_pid()
        try:
            wait_until(lambda: not zombies_below(reaper), timeout=10, what="no zombie left")
        except AssertionError:
            raise AssertionError(f"zombies left: {zombies_below(reaper)}") from None
        assert alive(d.daemon_process())
    finally:
        d.cli("network", "rm", network)



def test_a_daemon_stopped_leaves_no_zombie_but_its_own(daemon_under_sleep_infinity):
    """Rootless, the holder of the namespaces and slirp4netns end with the last daemon: its wrapper
    reaps them before it ends itself."""
    d = daemon_under_sleep_infinity
    assert d.ok("run", "--rm", "-p", f"127.0.0.1:{_free_port()}:80", IMAGE, "echo", "hi").strip() == "hi"
    reaper = d.reaper_pid()
    stopped = d.stop_daemon()
    wait_until(lambda: [pid for pid, _ in zombies_below(reaper)] == [stopped], timeout=10,
               what=f"only the daemon {stopped} left a zombie")
