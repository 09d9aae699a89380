"""`minictr exec` and the exec API: a process that joins a running container."""

import os
import shutil
import subprocess
import time

import pytest

from tests.integration.dockercli import PATH as DOCKER_PATH
from .conftest import ROOTLESS


def _wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def running(daemon, image):
    """A detached container (`sleep`) named for the test, removed afterwards."""
    names = []

    def start(name, *options):
        names.append(name)
        daemon.ok("create", "--name", name, *options, image, "sleep", "300")
        daemon.ok("start", name)
        return name

    yield start
    for name in names:
        daemon.cli("rm", "-f", name)


def exec_(daemon, *args, **kwargs):
    return daemon.cli("exec", *args, **kwargs)


def test_exec_sees_the_containers_hostname_and_processes(daemon, running):
    name = running("ex-ps", "-h", "inside")
    result = exec_(daemon, name, "sh", "-c", "hostname; ps -o pid,comm; exit 0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "inside"
    processes = [line.split() for line in lines[2:]]
    assert processes[0] == ["1", "sleep"]
    assert {"sh", "ps"} <= {p[1] for p in processes}


def test_exec_is_in_the_containers_cgroup(daemon, running):
    name = running("ex-cgroup")
    ours = exec_(daemon, name, "cat", "/proc/self/cgroup")
    init = exec_(daemon, name, "cat", "/proc/1/cgroup")
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == init.stdout
    assert ours.stdout.strip()
    if not ROOTLESS or "0::/\n" in init.stdout:
        assert "0::/\n" in ours.stdout or ":/\n" in ours.stdout  # the container's cgroup is its root


def test_exec_gets_the_containers_env_plus_its_own(daemon, running, tmp_path):
    name = running("ex-env", "-e", "FROM_CTR=1", "-e", "SHARED=ctr")
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nFROM_FILE=yes\n")
    result = exec_(daemon, "-e", "SHARED=exec", "--env-file", str(env_file), name, "env")
    assert result.returncode == 0, result.stderr
    env = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert env["FROM_CTR"] == "1"
    assert env["SHARED"] == "exec"
    assert env["FROM_FILE"] == "yes"
    assert env["HOSTNAME"] and env["PATH"]


def test_exec_workdir_and_user(daemon, running):
    name = running("ex-user", "-w", "/tmp")
    assert exec_(daemon, name, "pwd").stdout == "/tmp\n"
    assert exec_(daemon, "-w", "/etc", name, "pwd").stdout == "/etc\n"
    assert exec_(daemon, name, "id", "-u").stdout == "0\n"
    result = exec_(daemon, "-u", "1000:1000", name, "id")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("uid=1000 gid=1000")


def test_exec_user_defaults_to_the_containers(daemon, running):
    name = running("ex-ctr-user", "-u", "65534")
    assert exec_(daemon, name, "id", "-u").stdout == "65534\n"
    assert exec_(daemon, "-u", "0", name, "id", "-u").stdout == "0\n"


def test_exec_exit_codes(daemon, running):
    name = running("ex-codes")
    assert exec_(daemon, name, "sh", "-c", "exit 3").returncode == 3
    missing = exec_(daemon, name, "nosuchcmd")
    assert missing.returncode == 127
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in missing.stderr
    not_executable = exec_(daemon, name, "/etc/passwd")
    assert not_executable.returncode == 126
    assert "permission denied" in not_executable.stderr
    assert "Traceback" not in missing.stderr + not_executable.stderr


def test_exec_missing_working_directory_fails_like_docker_and_leaves_nothing(daemon, running):
    name = running("ex-nowd")
    result = exec_(daemon, "-w", "/no/such/dir", name, "true")
    assert result.returncode == 126
    assert "chdir `/no/such/dir`" in result.stderr
    assert exec_(daemon, name, "nosuchcmd").returncode == 127
    assert list((daemon.socket.parent / "c").glob("*/e/*")) == []
    processes = exec_(daemon, name, "ps", "-o", "comm").stdout.split()
    assert processes == ["COMMAND", "sleep", "ps"]


def test_exec_detached_runs_in_the_background(daemon, running):
    name = running("ex-detach")
    started = time.monotonic()
    result = exec_(daemon, "-d", name, "sh", "-c", "sleep 1; touch /tmp/x")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert time.monotonic() - started < 5
    assert exec_(daemon, name, "test", "-e", "/tmp/x").returncode == 1
    _wait_for(lambda: exec_(daemon, name, "test", "-e", "/tmp/x").returncode == 0, what="/tmp/x")


def test_exec_interactive_reads_piped_stdin(daemon, running):
    name = running("ex-stdin")
    result = exec_(daemon, "-i", name, "sh", "-c", "cat; echo done", input="piped line\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "piped line\ndone\n"
    # Without -i the exec's stdin is empty.
    assert exec_(daemon, name, "cat", input="ignored\n").stdout == ""


def test_exec_stdout_and_stderr_stay_apart(daemon, running):
    name = running("ex-streams")
    result = exec_(daemon, name, "sh", "-c", "echo out; echo err >&2")
    assert (result.stdout, result.stderr, result.returncode) == ("out\n", "err\n", 0)


def test_exec_has_only_stdio_open(daemon, running):
    name = running("ex-fds")
    result = exec_(daemon, name, "sh", "-c", "ls /proc/$$/fd; true")  # the shell's, listed by a child
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1", "2"]
    result = exec_(daemon, name, "ls", "/proc/self/fd")
    assert result.stdout.split() == ["0", "1", "2", "3"]  # 3: the directory ls is reading


def test_exec_on_a_stopped_container_fails_and_leaves_nothing(daemon, image):
    daemon.ok("run", "--name", "ex-stopped", image, "true")
    try:
        run_dir = daemon.socket.parent / "c"
        before = sorted(p.name for p in run_dir.rglob("*"))
        result = exec_(daemon, "ex-stopped", "true")
        assert result.returncode == 1
        container_id = daemon.ok("inspect", "--type", "container", "ex-stopped").split('"Id": "')[1][:64]
        assert result.stderr.strip() == f"Error response from daemon: container {container_id} is not running"
        assert sorted(p.name for p in run_dir.rglob("*")) == before
    finally:
        daemon.ok("rm", "ex-stopped")
    result = exec_(daemon, "no-such-container", "true")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error response from daemon: No such container: no-such-container"


def test_exec_api_inspect_and_errors(daemon, running):
    name = running("ex-api")
    client = daemon.client()
    exec_id = client.post(f"/containers/{name}/exec", None,
                          {"Cmd": ["sh", "-c", "exit 5"], "AttachStdout": True}).json()["Id"]
    info = client.get(f"/exec/{exec_id}/json")
    assert info["Running"] is False and info["ExitCode"] is None and info["Pid"] == 0
    assert info["ProcessConfig"] == {"entrypoint": "sh", "arguments": ["-c", "exit 5"], "tty": False,
                                     "privileged": False, "user": ""}
    assert info["OpenStdout"] is True and info["OpenStdin"] is False
    assert len(info["ContainerID"]) == 64
    client.post(f"/exec/{exec_id}/start", None, {"Detach": True})
    _wait_for(lambda: client.get(f"/exec/{exec_id}/json")["ExitCode"] == 5, what="exit code 5")
    from minictr.errors import Conflict, NotFound

    with pytest.raises(Conflict, match="has already run"):
        client.post(f"/exec/{exec_id}/start", None, {"Detach": True})
    with pytest.raises(NotFound, match="No such exec instance: nope"):
        client.get("/exec/nope/json")


def test_a_resize_sent_before_the_exec_runs_waits_for_it(daemon, running):
    """The docker CLI resizes an exec's tty right after asking for its start; Docker's daemon
    waits for the exec to run instead of refusing, so the shell gets the terminal's size."""
    import threading

    name = running("ex-early-resize")
    client = daemon.client()
    exec_id = client.post(f"/containers/{name}/exec", None,
                          {"Cmd": ["sh", "-c", "sleep 1; stty size > /tmp/size"], "Tty": True}).json()["Id"]
    outcome = []
    resizer = threading.Thread(target=lambda: outcome.append(  # a connection of its own
        daemon.client().post(f"/exec/{exec_id}/resize", {"h": 27, "w": 81}).status))
    resizer.start()
    time.sleep(0.5)  # the resize is waiting now: the exec has not been started
    assert resizer.is_alive()
    client.post(f"/exec/{exec_id}/start", None, {"Detach": True, "Tty": True})
    resizer.join(15)
    assert outcome == [200]
    _wait_for(lambda: client.get(f"/exec/{exec_id}/json")["ExitCode"] == 0, what="the exec's exit")
    assert daemon.ok("exec", name, "cat", "/tmp/size").strip() == "27 81"


def test_exec_instances_go_with_their_container(daemon, image):
    daemon.ok("create", "--name", "ex-gone", image, "sleep", "300")
    daemon.ok("start", "ex-gone")
    client = daemon.client()
    exec_id = client.post("/containers/ex-gone/exec", None, {"Cmd": ["true"]}).json()["Id"]
    daemon.ok("rm", "-f", "ex-gone")
    from minictr.errors import NotFound

    with pytest.raises(NotFound):
        client.get(f"/exec/{exec_id}/json")


def test_exec_survives_a_daemon_restart(daemon, running):
    name = running("ex-restart")
    assert exec_(daemon, "-d", name, "sh", "-c", "sleep 2; touch /tmp/after-restart").returncode == 0
    daemon.kill()
    daemon.start()
    _wait_for(lambda: exec_(daemon, name, "test", "-e", "/tmp/after-restart").returncode == 0,
              what="the exec to finish across the restart")


def test_docker_exec(daemon, running):
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on the PATH")
    name = running("ex-docker", "-h", "dockerbox")

    def docker(*args, input=None):
        return subprocess.run(["docker", "-H", daemon.host, *args], capture_output=True, text=True, timeout=60,
                              input=input, env={"PATH": DOCKER_PATH, "HOME": str(daemon.top)})

    result = docker("exec", name, "hostname")
    assert (result.returncode, result.stdout) == (0, "dockerbox\n"), result.stderr
    assert docker("exec", name, "sh", "-c", "exit 7").returncode == 7
    result = docker("exec", "-i", "-e", "X=1", name, "sh", "-c", "cat; echo $X", input="hi\n")
    assert (result.returncode, result.stdout) == (0, "hi\n1\n"), result.stderr
    missing = docker("exec", name, "nosuchcmd")
    assert missing.returncode == 127
    assert "executable file not found" in missing.stdout + missing.stderr
    assert docker("exec", "-d", name, "touch", "/tmp/by-docker").returncode == 0
    _wait_for(lambda: docker("exec", name, "test", "-e", "/tmp/by-docker").returncode == 0, what="/tmp/by-docker")


def test_exec_tty_from_a_terminal(daemon, running):
    import pty
    import select
    import sys

    name = running("ex-tty")
    pid, fd = pty.fork()
    if pid == 0:  # the CLI on a terminal of its own, as a user runs it
        os.execv(sys.executable, [sys.executable, "-m", "minictr", "-H", daemon.host, "exec", "-it", name,
                                  "sh", "-c", "read line; tty; echo got $line; exit 4"])
    try:
        os.write(fd, b"typed\r")
        output = b""
        while select.select([fd], [], [], 20)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the CLI exited and the terminal is gone
                break
            if not chunk:
                break
            output += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 4, output
    assert b"/dev/pts/" in output and b"got typed" in output


def test_docker_py_exec_run(daemon, running):
    docker = pytest.importorskip("docker")
    name = running("ex-docker-py")
    client = docker.DockerClient(base_url=daemon.host, version="1.43")
    try:
        container = client.containers.get(name)
        result = container.exec_run(["sh", "-c", "echo out; echo err >&2; exit 2"], environment={"A": "b"})
        assert result.exit_code == 2
        assert b"out" in result.output and b"err" in result.output
        out, err = container.exec_run(["sh", "-c", "echo $A; echo e >&2"], environment={"A": "b"}, demux=True).output
        assert (out, err) == (b"b\n", b"e\n")
        assert container.exec_run("hostname", tty=True).output.strip() == container.attrs["Config"]["Hostname"].encode()
    finally:
        client.close()


def test_container_inspect_lists_its_running_execs(daemon, running):
    import json

    name = running("exec-ids")

    def exec_ids():
        return json.loads(daemon.ok("inspect", "--format", "{{json .ExecIDs}}", name))

    assert exec_ids() is None
    daemon.ok("exec", "-d", name, "sleep", "2")
    assert len(exec_ids()) == 1
    _wait_for(lambda: exec_ids() is None, what="the exec to end")
