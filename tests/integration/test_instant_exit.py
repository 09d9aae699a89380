"""A command that ends at once (`true`) may end, and its monitor with it, before the daemon has read
the monitor's "started". Its exit must still come after its start: the container ends exited, its
restart policy goes on, and the events say start before die.

To make that order certain rather than a matter of luck, this daemon reads "started" 0.3 s late
(a sitecustomize that wraps Monitor.start). Before the fix, the exit was handled first and the
start then marked the container running with no process: `wait` and `rm -f` hung."""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import IMAGE, Daemon, inspect, wait_until

_LATE_STARTED = """
import asyncio

from minictr.containers import monitor

_start = monitor.Monitor.start


async def _late_start(self):
    await _start(self)
    await asyncio.sleep(0.3)  # by now an instant command and its monitor have ended


monitor.Monitor.start = _late_start
"""


class _LateStartedDaemon(Daemon):
    def __init__(self, top):
        super().__init__(top)
        self.site = top / "site"
        self.site.mkdir()
        (self.site / "sitecustomize.py").write_text(_LATE_STARTED)

    def start(self):
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.site), saved) if p)
        try:
            super().start()
        finally:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def late(busybox_tar):
    top = Path(tempfile.mkdtemp(prefix="minictr-late-"))
    os.chmod(top, 0o755)
    d = _LateStartedDaemon(top)
    try:
        d.start()
        d.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), IMAGE)
        yield d
    finally:
        d.teardown()
        shutil.rmtree(top, ignore_errors=True)


def _status(d, ref):
    return inspect(d, ref)["State"]["Status"]


def test_an_instant_command_ends_exited(late):
    container_id = late.ok("run", "-d", IMAGE, "true").strip()
    try:
        wait_until(lambda: _status(late, container_id) == "exited", timeout=10, what="the container to exit")
        assert late.ok("wait", container_id, timeout=10).strip() == "0"
        assert inspect(late, container_id)["State"]["Pid"] == 0
    finally:
        late.cli("rm", "-f", container_id)


def test_an_instant_command_under_restart_always_keeps_restarting_and_stops(late):
    container_id = late.ok("run", "-d", "--restart", "always", IMAGE, "true").strip()
    try:
        wait_until(lambda: inspect(late, container_id)["RestartCount"] >= 3, what="three restarts")
        late.ok("rm", "-f", container_id, timeout=15)
        assert late.ok("ps", "-a", "-q").split() == []
    finally:
        late.cli("rm", "-f", container_id)


def test_its_events_say_start_before_die(late):
    since = str(int(time.time()) - 1)
    container_id = late.ok("run", "-d", IMAGE, "true").strip()
    try:
        late.ok("wait", container_id, timeout=10)
        exec_host = late.ok("run", "-d", IMAGE, "sleep", "30").strip()
        try:
            assert late.cli("exec", exec_host, "true").returncode == 0
        finally:
            late.cli("rm", "-f", exec_host)
        until = str(int(time.time()) + 1)
        lines = late.ok("events", "--since", since, "--until", until, "--format", "{{json .}}").splitlines()
        actions = [(e["id"], e["Action"].split(":")[0]) for e in map(json.loads, lines) if e.get("Type") == "container"]
        mine = [action for cid, action in actions if cid == container_id]
        assert mine.index("start") < mine.index("die"), mine
        theirs = [action for cid, action in actions if cid == exec_host]
        assert theirs.index("exec_start") < theirs.index("exec_die"), theirs
    finally:
        late.cli("rm", "-f", container_id)


def test_a_command_that_cannot_run_is_not_restarted_by_its_policy(late):
    result = late.cli("run", "-d", "--name", "no-such-command", "--restart", "always", IMAGE, "/no/such/command")
    try:
        assert result.returncode == 127, result.stderr
        assert "no such file or directory" in result.stderr.lower()
        # As in Docker: the container stays created, with the exit code, and is left alone.
        time.sleep(1)
        state = inspect(late, "no-such-command")
        assert (state["State"]["Status"], state["State"]["ExitCode"], state["RestartCount"]) == ("created", 127, 0)
    finally:
        late.cli("rm", "-f", "no-such-command")
