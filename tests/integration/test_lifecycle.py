"""What a user does with a container's life: run -d, stop, kill, restart, pause, rename, restart
policies, --init, labels and the run options around them (root and rootless)."""

import os
import time

import pytest

from tests.integration.conftest import ROOTLESS, cgroup_dir_of, inspect, wait_until

# PID 1 of a container gets no default signal actions: a shell that traps TERM exits on it,
# a bare `sleep` ignores it.
TRAP_TERM = 'trap "exit 3" TERM; while :; do sleep 0.1; done'


@pytest.fixture
def running(daemon, image):
    """A running container with a shell that exits 3 on SIGTERM; removed afterwards."""
    container_id = daemon.ok("run", "-d", image, "sh", "-c", TRAP_TERM).strip()
    yield container_id
    daemon.cli("rm", "-f", container_id)


def test_run_detached_prints_the_id_and_returns_while_the_container_runs(daemon, running):
    assert len(running) == 64 and all(c in "0123456789abcdef" for c in running)
    state = inspect(daemon, running)["State"]
    assert state["Running"] is True and state["Pid"] > 0
    assert running[:12] in daemon.ok("ps", "-q")


def test_stop_sends_sigterm_and_the_container_exits_with_its_own_code(daemon, running):
    started = time.monotonic()
    assert daemon.ok("stop", running).strip() == running
    assert time.monotonic() - started < 8
    state = inspect(daemon, running)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 3


def test_stop_kills_a_pid_1_that_ignores_sigterm_after_the_timeout(daemon, image):
    container_id = daemon.ok("run", "-d", image, "sleep", "100").strip()
    try:
        started = time.monotonic()
        daemon.ok("stop", "-t", "1", container_id)
        elapsed = time.monotonic() - started
        assert 1 <= elapsed < 8
        assert inspect(daemon, container_id)["State"]["ExitCode"] == 137
    finally:
        daemon.cli("rm", "-f", container_id)


def test_stop_signal_of_the_container_is_used(daemon, image):
    container_id = daemon.ok("run", "-d", "--stop-signal", "USR1", image,
                             "sh", "-c", 'trap "exit 10" USR1; while :; do sleep 0.1; done').strip()
    try:
        daemon.ok("stop", "-t", "30", container_id)
        assert inspect(daemon, container_id)["State"]["ExitCode"] == 10
    finally:
        daemon.cli("rm", "-f", container_id)


def test_stop_signal_of_the_image_is_honoured(daemon, busybox_tar):
    daemon.ok("import", "--change", "STOPSIGNAL SIGUSR2", str(busybox_tar), "busybox-stopsignal")
    try:
        container_id = daemon.ok("run", "-d", "busybox-stopsignal",
                                 "sh", "-c", 'trap "exit 12" USR2; while :; do sleep 0.1; done').strip()
        daemon.ok("stop", "-t", "30", container_id)
        assert inspect(daemon, container_id)["State"]["ExitCode"] == 12
        daemon.ok("rm", container_id)
    finally:
        daemon.cli("rmi", "-f", "busybox-stopsignal")


def test_stop_of_a_stopped_container_is_not_an_error(daemon, image):
    container_id = daemon.ok("create", image, "true").strip()
    try:
        daemon.ok("stop", container_id)
    finally:
        daemon.cli("rm", "-f", container_id)


def test_kill_sends_the_signal_asked_for(daemon, image):
    container_id = daemon.ok("run", "-d", image,
                             "sh", "-c", 'trap "exit 5" HUP; while :; do sleep 0.1; done').strip()
    try:
        daemon.ok("kill", "-s", "HUP", container_id)
        assert daemon.ok("wait", container_id).strip() == "5"
    finally:
        daemon.cli("rm", "-f", container_id)


def test_kill_returns_once_the_container_has_stopped_so_a_plain_remove_follows(daemon, image):
    client = daemon.client()
    for _ in range(5):  # the window between the signal and the exit is short: try more than once
        container_id = daemon.ok("run", "-d", image, "sleep", "1000").strip()
        try:
            client.post(f"/containers/{container_id}/kill")
            assert client.get(f"/containers/{container_id}/json")["State"]["Status"] == "exited"
            client.delete(f"/containers/{container_id}")  # no force: a running container is a 409
        finally:
            daemon.cli("rm", "-f", container_id)


def test_kill_of_a_stopped_container_fails_in_one_line(daemon, image):
    container_id = daemon.ok("create", image, "true").strip()
    try:
        result = daemon.cli("kill", container_id)
        assert result.returncode != 0
        assert "is not running" in result.stderr and "Traceback" not in result.stderr
    finally:
        daemon.cli("rm", "-f", container_id)


def test_restart_runs_the_same_container_again(daemon, running):
    first = inspect(daemon, running)["State"]
    daemon.ok("restart", "-t", "5", running)
    second = inspect(daemon, running)["State"]
    assert second["Running"] is True
    assert second["Pid"] != first["Pid"]
    assert second["StartedAt"] > first["StartedAt"]


def test_pause_freezes_every_process_and_unpause_thaws_them(daemon, image):
    container_id = daemon.ok("run", "-d", image,
                             "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done").strip()
    try:
        result = daemon.cli("pause", container_id)
        if ROOTLESS and not _rootless_has_freezer():
            # Rootless on cgroup v1 (these machines): no freezer to use, and the user is told so.
            assert result.returncode != 0 and "pause is not supported" in result.stderr
            return
        assert result.returncode == 0, result.stderr
        assert inspect(daemon, container_id)["State"]["Status"] == "paused"
        assert "(Paused)" in daemon.ok("ps")
        counter = _counter(container_id, daemon)
        time.sleep(0.5)
        assert _counter(container_id, daemon) == counter
        assert daemon.cli("pause", container_id).returncode != 0  # already paused
        daemon.ok("unpause", container_id)
        assert inspect(daemon, container_id)["State"]["Status"] == "running"
        wait_until(lambda: _counter(container_id, daemon) > counter, what="the counter to move again")
    finally:
        daemon.cli("rm", "-f", container_id)


def _rootless_has_freezer():
    own = cgroup_dir_of("self")
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers") and own is not None and os.access(own, os.W_OK)


def _counter(container_id, daemon):
    upper = inspect(daemon, container_id)["GraphDriver"]["Data"]["UpperDir"]
    try:
        with open(os.path.join(upper, "tmp", "n")) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def test_rename_gives_the_container_a_new_name(daemon, image):
    container_id = daemon.ok("create", "--name", "before-rename", image, "true").strip()
    try:
        daemon.ok("rename", "before-rename", "after-rename")
        assert inspect(daemon, "after-rename")["Id"] == container_id
        assert inspect(daemon, "after-rename")["Name"] == "/after-rename"
        assert daemon.cli("inspect", "--type", "container", "before-rename").returncode != 0
    finally:
        daemon.cli("rm", "-f", container_id)


def test_rename_to_a_name_in_use_is_a_conflict(daemon, image):
    first = daemon.ok("create", "--name", "rename-a", image, "true").strip()
    second = daemon.ok("create", "--name", "rename-b", image, "true").strip()
    try:
        result = daemon.cli("rename", "rename-a", "rename-b")
        assert result.returncode != 0 and "is already in use" in result.stderr
        assert inspect(daemon, first)["Name"] == "/rename-a"
    finally:
        daemon.cli("rm", "-f", first, second)


def test_on_failure_restarts_up_to_the_maximum_then_stays_exited(daemon, image):
    container_id = daemon.ok("run", "-d", "--restart", "on-failure:2", image, "sh", "-c", "exit 4").strip()
    try:
        final = wait_until(lambda: (s := inspect(daemon, container_id))["State"]["Status"] == "exited"
                           and s["RestartCount"] == 2 and s, what="two restarts")
        assert final["State"]["ExitCode"] == 4
        time.sleep(1)  # the back-off would have fired by now
        assert inspect(daemon, container_id)["RestartCount"] == 2
    finally:
        daemon.cli("rm", "-f", container_id)


def test_on_failure_does_not_restart_a_success(daemon, image):
    container_id = daemon.ok("run", "-d", "--restart", "on-failure", image, "true").strip()
    try:
        daemon.ok("wait", container_id)
        time.sleep(0.5)
        state = inspect(daemon, container_id)
        assert state["State"]["Status"] == "exited" and state["RestartCount"] == 0
    finally:
        daemon.cli("rm", "-f", container_id)


def test_always_restarts_with_a_growing_back_off_until_stopped(daemon, image):
    container_id = daemon.ok("run", "-d", "--restart", "always", image, "true").strip()
    try:
        wait_until(lambda: inspect(daemon, container_id)["RestartCount"] >= 3, what="three restarts")
        daemon.ok("stop", container_id)
        count = inspect(daemon, container_id)["RestartCount"]
        time.sleep(1.5)
        state = inspect(daemon, container_id)
        assert state["State"]["Status"] == "exited"
        assert state["RestartCount"] == count  # stopped by hand: the policy leaves it alone
    finally:
        daemon.cli("rm", "-f", container_id)


def test_always_containers_come_back_when_the_daemon_starts(daemon, image):
    always = daemon.ok("run", "-d", "--restart", "always", image, "sleep", "100").strip()
    unless = daemon.ok("run", "-d", "--restart", "unless-stopped", image, "sleep", "100").strip()
    try:
        daemon.ok("stop", "-t", "0", always, unless)
        daemon.stop()
        daemon.start()
        wait_until(lambda: inspect(daemon, always)["State"]["Running"], what="the always container to run")
        assert inspect(daemon, unless)["State"]["Status"] == "exited"
    finally:
        daemon.cli("rm", "-f", always, unless)


def test_rm_and_restart_policy_cannot_be_combined(daemon, image):
    before = daemon.ok("ps", "-a", "-q")
    result = daemon.cli("run", "--rm", "--restart", "always", image, "true")
    assert result.returncode == 125
    assert "Conflicting options: --restart and --rm" in result.stderr
    assert daemon.ok("ps", "-a", "-q") == before


def test_a_bad_restart_policy_is_one_line_and_creates_nothing(daemon, image):
    before = daemon.ok("ps", "-a", "-q")
    result = daemon.cli("run", "-d", "--restart", "sometimes", image, "true")
    assert result.returncode == 125
    assert result.stderr.strip().count("\n") == 0 and "invalid restart policy" in result.stderr
    assert daemon.ok("ps", "-a", "-q") == before


def test_init_is_pid_1_and_forwards_sigterm(daemon, image):
    output = daemon.ok("run", "--rm", "--init", image, "cat", "/proc/1/cmdline")
    assert output.split("\0")[:2] == ["/sbin/docker-init", "--"]
    container_id = daemon.ok("run", "-d", "--init", image, "sleep", "100").strip()
    try:
        started = time.monotonic()
        daemon.ok("stop", "-t", "20", container_id)
        assert time.monotonic() - started < 10  # sleep got the SIGTERM: no wait for the timeout
        assert inspect(daemon, container_id)["State"]["ExitCode"] == 143
    finally:
        daemon.cli("rm", "-f", container_id)


def test_init_reaps_orphaned_zombies(daemon, image):
    # The orphan's parent (a subshell) exits at once; only a reaping PID 1 keeps it from
    # lingering as a zombie once it ends.
    script = "(sleep 0.2 &); sleep 1; cat /proc/[0-9]*/stat | awk '{print $3}'"
    with_init = daemon.ok("run", "--rm", "--init", image, "sh", "-c", script).split()
    assert "Z" not in with_init


def test_labels_env_file_label_file_and_cidfile(daemon, image, tmp_path):
    (tmp_path / "env").write_text("# comment\nFROM_FILE=yes\n\nOVERRIDDEN=file\n")
    (tmp_path / "labels").write_text("team=storage\nempty\n")
    cidfile = tmp_path / "cid"
    container_id = daemon.ok("create", "--env-file", str(tmp_path / "env"), "-e", "OVERRIDDEN=flag",
                             "--label-file", str(tmp_path / "labels"), "-l", "tier=web",
                             "--cidfile", str(cidfile), "--stop-timeout", "7", image, "true").strip()
    try:
        assert cidfile.read_text() == container_id
        config = inspect(daemon, container_id)["Config"]
        assert "FROM_FILE=yes" in config["Env"] and "OVERRIDDEN=flag" in config["Env"]
        assert config["Labels"] == {"team": "storage", "empty": "", "tier": "web"}
        assert config["StopTimeout"] == 7
        before = daemon.ok("ps", "-a", "-q")
        result = daemon.cli("create", "--cidfile", str(cidfile), image, "true")
        assert result.returncode == 125 and "Container ID file found" in result.stderr
        assert daemon.ok("ps", "-a", "-q") == before
    finally:
        daemon.cli("rm", "-f", container_id)


def _attached_run(daemon, *args):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "minictr", "-H", daemon.host, "run", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_signals_to_an_attached_run_go_to_the_container(daemon, image):
    client = _attached_run(daemon, "--rm", image, "sh", "-c",
                           'echo ready; trap "echo got-term; exit 4" TERM; while :; do sleep 0.1; done')
    try:
        assert client.stdout.readline() == "ready\n"
        client.terminate()
        out, _ = client.communicate(timeout=20)
        assert "got-term" in out and client.returncode == 4
    finally:
        if client.poll() is None:
            client.kill()


def test_sig_proxy_false_leaves_the_container_alone(daemon, image):
    client = _attached_run(daemon, "--sig-proxy=false", "--name", "no-proxy", image,
                           "sh", "-c", 'echo ready; trap "exit 4" TERM; while :; do sleep 0.1; done')
    try:
        assert client.stdout.readline() == "ready\n"
        client.terminate()
        client.wait(timeout=20)
        assert inspect(daemon, "no-proxy")["State"]["Running"] is True
    finally:
        if client.poll() is None:
            client.kill()
        daemon.cli("rm", "-f", "no-proxy")


def test_wait_on_a_paused_container_waits_for_its_end(daemon, image):
    import subprocess
    import sys

    container_id = daemon.ok("run", "-d", image, "sleep", "100").strip()
    try:
        if daemon.cli("pause", container_id).returncode != 0:
            assert ROOTLESS and not _rootless_has_freezer()  # no freezer here: nothing to wait on
            return
        waiter = subprocess.Popen([sys.executable, "-m", "minictr", "-H", daemon.host, "wait", container_id],
                                  stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        assert waiter.poll() is None, "wait returned while the container was only paused"
        daemon.ok("kill", container_id)
        assert waiter.communicate(timeout=20)[0].strip() == "137"
    finally:
        daemon.cli("rm", "-f", container_id)
