"""A full data root (root and rootless): the daemon still records exits, kills, removes and
restarts, and a client that meets the full disk is told so in one plain line.

The data root is a small tmpfs mounted in a mount namespace of the test's own making (never the
machine's): as root, one an `unshare -m` of ours keeps, which the daemon joins; rootless, the
namespaces the daemon's holder keeps (a first daemon makes them and is killed; the tmpfs is
mounted there; the next daemons join them)."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.integration.conftest import IMAGE, ROOTLESS, Daemon, inspect, wait_until

TMPFS_SIZE = "48m"


class FullDiskDaemon(Daemon):
    """A daemon whose data root is a tmpfs of TMPFS_SIZE that only a mount namespace of the test sees;
    the namespace outlives the daemon, so that a restarted daemon finds the same full disk."""

    holder = None  # as root, the process (ours) that keeps the namespace

    def _argv(self):
        if ROOTLESS:
            return super()._argv()
        # --wd: entering a mount namespace moves to its root, and PYTHONPATH may be relative.
        return ["nsenter", "-t", str(self.holder.pid), "-m", f"--wd={os.getcwd()}", *super()._argv()]

    def start_on_tmpfs(self):
        self.data_root.mkdir(mode=0o700)
        if ROOTLESS:
            # The first daemon makes the holder of the namespaces; killed, it leaves them behind.
            self.start()
            self.kill()
        else:
            self.holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "infinity"])
            ours = os.readlink("/proc/self/ns/mnt")
            wait_until(lambda: os.readlink(f"/proc/{self.holder.pid}/ns/mnt") != ours, what="the mount namespace")
        mounted = self.in_namespace("mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "minictr-full",
                                    str(self.data_root))
        assert mounted.returncode == 0, mounted.stderr
        self.start()

    def release_namespace(self):
        if self.holder:
            self.holder.kill()
            self.holder.wait()
        elif ROOTLESS and self.namespace_pid():  # a daemon that could not stop cleanly left it
            os.kill(self.namespace_pid(), 9)

    def namespace_pid(self):
        if ROOTLESS:
            from minictr.daemon.rootless import live_holder

            return live_holder(str(self.socket.parent))
        return self.holder.pid if self.holder else None

    def in_namespace(self, *argv):
        """ARGV run in the mount namespace where the data root is the tmpfs."""
        user = ["-U", "--preserve-credentials"] if ROOTLESS else []
        return subprocess.run(["nsenter", "-t", str(self.namespace_pid()), *user, "-m", *argv],
                              capture_output=True, text=True, timeout=60)

    def fill(self):
        """Take every free byte of the data root."""
        self.in_namespace("sh", "-c", f'cat /dev/zero > "{self.data_root}/filler"')
        free = self.in_namespace("stat", "-f", "-c", "%a", str(self.data_root)).stdout.strip()
        assert free == "0", f"{free} blocks still free"

    def free_space(self):
        self.in_namespace("rm", "-f", f"{self.data_root}/filler")


@pytest.fixture
def full_disk_daemon(busybox_tar):
    top = Path(tempfile.mkdtemp(prefix="minictr-full-"))
    os.chmod(top, 0o755)
    d = FullDiskDaemon(top)
    try:
        d.start_on_tmpfs()
        d.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), IMAGE)
        yield d
    finally:
        try:
            if d.namespace_pid():
                d.free_space()
            d.teardown()
        finally:
            d.kill()
            kill_monitors_of(top)
            d.release_namespace()
        shutil.rmtree(top, ignore_errors=True)


def kill_monitors_of(top):
    """What a failed test may have left running: the monitors of this daemon and their containers."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        if comm == "minictr:[monito" and str(top).encode() in cmdline:
            for child in children:
                os.kill(int(child), 9)
            os.kill(int(pid), 9)


def ps_status(d, name):
    return d.ok("ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.Status}}").strip()


def test_a_full_data_root_still_records_exits_kills_removals_and_restarts(full_disk_daemon):
    d = full_disk_daemon
    # Running on, it carries on under the restarted daemon (and keeps a rootless daemon's namespaces).
    d.ok("run", "-d", "--name", "keeps", IMAGE, "sleep", "1000")
    d.ok("run", "-d", "--name", "exits", IMAGE, "sh", "-c", 'trap "exit 7" USR1; while :; do sleep 0.1; done')
    d.ok("run", "-d", "--name", "floods", IMAGE, "yes", "a line the full disk cannot take")
    d.ok("run", "-d", "--name", "removed", IMAGE, "sleep", "1000")
    d.ok("run", "-d", "--name", "stopped", IMAGE, "sleep", "1000")
    d.fill()

    d.ok("kill", "-s", "USR1", "exits")
    wait_until(lambda: ps_status(d, "exits").startswith("Exited (7)"), what="the exit to show in ps -a")
    d.ok("kill", "floods")
    wait_until(lambda: ps_status(d, "floods").startswith("Exited (137)"), what="the killed flood to show")
    d.ok("stop", "-t", "1", "stopped", timeout=20)  # sleep as PID 1 ignores SIGTERM: killed after 1 s
    assert ps_status(d, "stopped").startswith("Exited (137)")
    started = time.monotonic()
    d.ok("rm", "-f", "removed", timeout=20)
    assert time.monotonic() - started < 10
    assert "removed" not in d.ok("ps", "-a", "--format", "{{.Names}}").split()

    failed = d.cli("create", "--name", "new", IMAGE, "true")
    assert failed.returncode != 0
    message = failed.stderr.strip()
    assert "no space left on device" in message and str(d.data_root) in message, message
    assert "internal error" not in message and "Errno" not in message and "Traceback" not in message

    d.stop()
    d.start()
    assert ps_status(d, "exits").startswith("Exited (7)")
    assert ps_status(d, "floods").startswith("Exited (137)")
    assert ps_status(d, "keeps").startswith("Up")
    assert ps_status(d, "stopped").startswith("Exited (137)")
    assert sorted(d.ok("ps", "-a", "--format", "{{.Names}}").split()) == ["exits", "floods", "keeps", "stopped"]


def test_state_kept_only_in_memory_on_a_full_disk_reaches_the_database_once_space_returns(full_disk_daemon):
    d = full_disk_daemon
    d.ok("run", "-d", "--name", "exits", IMAGE, "sh", "-c", 'trap "exit 7" USR1; while :; do sleep 0.1; done')
    d.fill()
    d.ok("kill", "-s", "USR1", "exits")
    wait_until(lambda: ps_status(d, "exits").startswith("Exited (7)"), what="the exit to show in ps -a")
    d.free_space()
    d.ok("rm", "exits")
    d.kill()  # no clean shutdown: only what reached the database counts
    d.start()
    assert d.ok("ps", "-a", "--format", "{{.Names}}").split() == []
