"""Bad input: one clear line, a non-zero exit, and nothing left behind."""

import glob
import os
import signal
import subprocess
import sys
import threading
import time

from tests.integration.conftest import ROOTLESS, daemon_pid, mounts_of


def one_line(result):
    return (result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
            and "Traceback" not in result.stderr)


def assert_nothing_left(daemon, container_id, pid=None):
    assert container_id not in daemon.ok("ps", "-a", "-q", "--no-trunc")
    assert not (daemon.data_root / "containers" / container_id).exists()
    assert container_id not in mounts_of(daemon_pid(daemon))
    assert not glob.glob(f"/sys/fs/cgroup/*/minictr/{container_id}")
    if pid:
        assert not os.path.exists(f"/proc/{pid}")


# Every command that names a container, as a user types it with a container that does not exist.
CONTAINER_COMMANDS = [
    ["attach", "nosuch"], ["commit", "nosuch"], ["cp", "nosuch:/etc/hostname", "-"], ["cp", "-", "nosuch:/tmp"],
    ["diff", "nosuch"], ["exec", "nosuch", "true"], ["export", "nosuch"], ["kill", "nosuch"], ["logs", "nosuch"],
    ["pause", "nosuch"], ["port", "nosuch"], ["rename", "nosuch", "other"], ["restart", "nosuch"], ["rm", "nosuch"],
    ["start", "nosuch"], ["stats", "--no-stream", "nosuch"], ["stop", "nosuch"], ["top", "nosuch"],
    ["unpause", "nosuch"], ["update", "--cpus", "1", "nosuch"], ["wait", "nosuch"],
    ["container", "rm", "nosuch"], ["container", "stop", "nosuch"],
]


def test_a_missing_container_exits_1_with_dockers_line_from_every_command(daemon):
    for args in CONTAINER_COMMANDS:
        result = daemon.cli(*args, input="")
        assert (result.returncode, result.stderr) == (1, "Error response from daemon: No such container: nosuch\n"), args
    typed = daemon.cli("inspect", "--type", "container", "nosuch")
    assert (typed.returncode, typed.stdout, typed.stderr) == (
        1, "[]\n", "Error response from daemon: No such container: nosuch\n")
    untyped = daemon.cli("inspect", "nosuch")
    assert (untyped.returncode, untyped.stderr) == (1, "Error: No such object: nosuch\n")


def test_run_and_create_exit_125_when_they_fail_themselves(daemon, image):
    for verb in ("run", "create"):
        result = daemon.cli(verb, "--volumes-from", "nosuch", image, "true")
        assert one_line(result) and result.returncode == 125, (verb, result.stderr)
        assert result.stderr == "Error response from daemon: No such container: nosuch\n"
    assert daemon.ok("ps", "-a", "-q") == ""


def test_name_already_in_use(daemon, image):
    first = daemon.ok("create", "--name", "taken", image, "true").strip()
    result = daemon.cli("run", "--rm", "--name", "taken", image, "true")
    assert one_line(result) and "already in use" in result.stderr and result.returncode == 125
    assert daemon.ok("ps", "-a", "-q", "--no-trunc").split() == [first]
    daemon.ok("rm", "taken")


def test_bad_name_and_missing_command(daemon, image):
    assert one_line(daemon.cli("run", "--rm", "--name", "bad/name", image, "true"))
    assert daemon.ok("ps", "-a", "-q") == ""


def test_failed_start_leaves_nothing(daemon, image):
    container_id = daemon.ok("create", "--name", "broken", image, "/no/such/binary").strip()
    result = daemon.cli("start", "broken")
    assert result.returncode == 1 and "no/such/binary" in result.stderr
    state = daemon.client().get("/containers/broken/json")["State"]
    # Docker's words for a container that never ran: still "created", with the code and the reason.
    assert state["Status"] == "created" and state["ExitCode"] == 127 and "no/such/binary" in state["Error"]
    daemon.ok("rm", "broken")
    assert_nothing_left(daemon, container_id)


def test_run_rm_leaves_no_process_mount_cgroup_row_or_dir(daemon, image):
    daemon.ok("create", "--name", "tracked", image, "sleep", "1000")
    daemon.ok("start", "tracked")
    inspect = daemon.client().get("/containers/tracked/json")
    container_id, pid = inspect["Id"], inspect["State"]["Pid"]
    daemon.ok("rm", "-f", "tracked")
    assert_nothing_left(daemon, container_id, pid)


def test_each_container_gets_its_own_cgroup_where_the_machine_allows_it(daemon, image):
    daemon.ok("create", "--name", "grouped", image, "sleep", "1000")
    daemon.ok("start", "grouped")
    inspect = daemon.client().get("/containers/grouped/json")
    container_id, pid = inspect["Id"], inspect["State"]["Pid"]
    host_view = open(f"/proc/{pid}/cgroup").read()
    inside = daemon.ok("run", "--rm", image, "cat", "/proc/self/cgroup")
    v2_only = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    if not ROOTLESS or v2_only:
        assert f"/minictr/{container_id}" in host_view
        assert glob.glob(f"/sys/fs/cgroup/*/minictr/{container_id}") or v2_only
    else:
        # Rootless on cgroup v1: nothing is delegated, so no group of its own (said once in the log).
        assert "minictr" not in host_view
    # Its own cgroup namespace: inside, every path is the root of its view.
    assert all(line.endswith(":/") for line in inside.splitlines()), inside
    daemon.ok("rm", "-f", "grouped")
    assert_nothing_left(daemon, container_id, pid)


def test_start_while_another_is_being_removed(daemon, image):
    names = [f"churn{i}" for i in range(6)]
    for name in names:
        daemon.ok("create", "--name", name, image, "sleep", "1000")
    for name in names[:3]:
        daemon.ok("start", name)
    results = {}

    def act(args):
        results[tuple(args)] = daemon.cli(*args)

    threads = [threading.Thread(target=act, args=(["rm", "-f", n],)) for n in names[:3]]
    threads += [threading.Thread(target=act, args=(["start", n],)) for n in names[3:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in results.values()), {k: r.stderr for k, r in results.items()}
    running = daemon.ok("ps")
    assert all(n in running for n in names[3:]) and not any(n in running for n in names[:3])
    for name in names[3:]:
        daemon.ok("rm", "-f", name)


def test_start_of_a_container_being_removed_is_refused_cleanly(daemon, image):
    daemon.ok("create", "--name", "doomed", image, "sleep", "1000")
    daemon.ok("start", "doomed")
    remover = subprocess.Popen([sys.executable, "-m", "minictr", "-H", daemon.host, "rm", "-f", "doomed"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    starts = [daemon.cli("start", "doomed") for _ in range(5)]
    _, err = remover.communicate(timeout=60)
    assert remover.returncode == 0, err
    for result in starts:
        assert result.returncode == 0 or one_line(result), result.stderr
    assert "doomed" not in daemon.ok("ps", "-a")


def test_daemon_that_cannot_start_says_why(tmp_path):
    env = dict(os.environ, MINICTR_RUNTIME_DIR=str(tmp_path / "run"), MINICTR_DATA_ROOT="/proc/no-data-root-here")
    env.pop("MINICTR_HOST", None)
    result = subprocess.run([sys.executable, "-m", "minictr", "ps"], capture_output=True, text=True, env=env, timeout=60)
    assert one_line(result), result.stderr
    assert "cannot start the daemon" in result.stderr and "/proc/no-data-root-here" in result.stderr


def test_cli_starts_a_daemon_when_none_answers(tmp_path, image):
    run_dir = tmp_path / "run"
    env = dict(os.environ, MINICTR_RUNTIME_DIR=str(run_dir), MINICTR_DATA_ROOT=str(tmp_path / "data"))
    env.pop("MINICTR_HOST", None)
    try:
        result = subprocess.run([sys.executable, "-m", "minictr", "ps"], capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("CONTAINER ID")
        assert (run_dir / "minictr.sock").exists()
    finally:
        pidfile = run_dir / "minictrd.pid"
        if pidfile.exists():
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
            for _ in range(200):
                if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
                    break
                time.sleep(0.05)
