"""The real docker CLI drives minictr's containers as it drives Docker's: run and its flags, create,
start -a, attach, exec -it, stop/kill/restart/wait, rm -f, cp, port — each asserting what a user
sees (stdout, the stderr line, the exit code, the state after), root and rootless.

What other files already cover through the docker CLI is not repeated here: run --rm/-i and exit
codes (test_docker_cli.py), run -it and its detach keys (test_tty.py), exec (test_exec.py), cp of
a directory, diff and top (test_files.py), logs and logs -f (test_logs.py), ps/inspect --format
(test_ps.py), stats --no-stream (test_limits.py), network commands and run --network (test_network_api.py)."""

import os
import re
import socket
import subprocess
import time

from tests.integration.dockercli import PATH as DOCKER_PATH, older_than, run_error
from .conftest import CGROUP_LIMITS, CGROUP_V2, container_group, wait_until
from .test_docker_cli import docker
from .test_tty import CTRL_P, CTRL_Q, shell_ready, terminals  # noqa: F401 (terminals: a fixture)


def ok(daemon, *args, input=None):
    result = docker(daemon, *args, input=input)
    assert result.returncode == 0, f"docker {' '.join(args)} ({result.returncode}): {result.stderr}"
    return result.stdout


def fmt(daemon, template, name):
    return ok(daemon, "inspect", "--format", template, name).strip()


def docker_argv(daemon, *args):
    docker(daemon, "version", "--format", "{{.Client.Version}}")  # the one check that the CLI is there
    return ["docker", "-H", daemon.host, *args]


DOCKER_ENV_FOR_PTY = {"PATH": DOCKER_PATH}


def pty_env(daemon):
    return {**DOCKER_ENV_FOR_PTY, "HOME": str(daemon.top)}


def test_version_and_info(daemon):
    version = ok(daemon, "version")
    assert "Server:" in version and "Engine:" in version
    # From the Engine component's details, as moby's SystemVersion gives them.
    assert re.search(r"API version:\s+1\.43 \(minimum version 1\.24\)\n", version)
    server = version.split("Server:")[1]
    assert re.search(r"OS/Arch:\s+linux/(amd64|arm64)\n", server) and re.search(r"Experimental:\s+false\n", server)
    info = docker(daemon, "info")
    assert info.returncode == 0, info.stderr
    assert "Server Version:" in info.stdout and "Containers:" in info.stdout
    assert "ERROR" not in info.stdout + info.stderr
    line = ok(daemon, "info", "--format", "{{.OSType}} {{.Architecture}} {{.NCPU}} {{json .Containers}}").split()
    assert line[0] == "linux" and int(line[2]) >= 1 and int(line[3]) >= 0


def test_run_detached_then_stop_start_restart_kill_wait_rm(daemon, image):
    container_id = ok(daemon, "run", "-d", "--name", "dk-life", image, "sleep", "300").strip()
    try:
        assert re.fullmatch(r"[0-9a-f]{64}", container_id)
        assert ok(daemon, "ps", "--format", "{{.ID}} {{.Names}}", "--filter", "name=dk-life").split() == \
            [container_id[:12], "dk-life"]
        assert fmt(daemon, "{{.State.Running}} {{.Name}}", "dk-life") == "true /dk-life"
        # sleep as PID 1 ignores SIGTERM: stop waits the timeout, then SIGKILL → 137
        assert ok(daemon, "stop", "-t", "1", "dk-life").strip() == "dk-life"
        assert fmt(daemon, "{{.State.Status}} {{.State.ExitCode}}", "dk-life") == "exited 137"
        assert re.match(r"Exited \(137\) ", ok(daemon, "ps", "-a", "--format", "{{.Status}}", "-f", "name=dk-life"))
        assert ok(daemon, "start", "dk-life").strip() == "dk-life"
        pid = int(fmt(daemon, "{{.State.Pid}}", "dk-life"))
        assert ok(daemon, "restart", "-t", "0", "dk-life").strip() == "dk-life"
        assert fmt(daemon, "{{.State.Running}}", "dk-life") == "true"
        assert int(fmt(daemon, "{{.State.Pid}}", "dk-life")) != pid
        assert re.match(r"Up ", ok(daemon, "ps", "--format", "{{.Status}}", "-f", "name=dk-life"))
        waiter = subprocess.Popen(["docker", "-H", daemon.host, "wait", "dk-life"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=pty_env(daemon))
        time.sleep(0.3)
        assert ok(daemon, "kill", "-s", "KILL", "dk-life").strip() == "dk-life"
        out, err = waiter.communicate(timeout=30)
        assert (out, err, waiter.returncode) == ("137\n", "", 0)
        assert ok(daemon, "wait", "dk-life") == "137\n"  # a stopped container: at once
        killed = docker(daemon, "kill", "dk-life")
        assert killed.returncode == 1
        assert killed.stderr.strip().endswith("is not running"), killed.stderr
        ok(daemon, "start", "dk-life")
        assert ok(daemon, "rm", "-f", "dk-life").strip() == "dk-life"
        assert ok(daemon, "ps", "-a", "-q", "-f", "name=dk-life") == ""
        gone = docker(daemon, "inspect", "dk-life")
        assert gone.returncode == 1 and "No such object: dk-life" in gone.stderr
    finally:
        docker(daemon, "rm", "-f", "dk-life")


def test_run_env_workdir_user_entrypoint_name(daemon, image):
    result = docker(daemon, "run", "--rm", "--name", "dk-flags", "-e", "GREETING=hi there", "-e", "EMPTY=",
                    "-w", "/srv/app", "-u", "1000:1001", "--entrypoint", "sh", image,
                    "-c", 'echo "$GREETING|$EMPTY|$(pwd)|$(id -u):$(id -g)|$(cat /proc/1/comm)"')
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi there||/srv/app|1000:1001|sh\n"
    assert docker(daemon, "ps", "-a", "-q", "-f", "name=dk-flags").stdout == ""
    relative = docker(daemon, "run", "--rm", "-w", "rel", image, "pwd")
    assert relative.returncode == 125 and relative.stdout == ""
    assert relative.stderr.startswith(
        run_error("the working directory 'rel' is invalid, it needs to be an absolute path") + "\n")
    nobody = docker(daemon, "run", "--rm", "-u", "nosuchuser", image, "id")
    assert nobody.returncode == 125 and "unable to find user nosuchuser" in nobody.stderr
    unknown = docker(daemon, "run", "--rm", "--log-driver", "no-such-driver", image, "true")
    assert unknown.returncode == 125 and unknown.stderr.startswith(
        run_error('error looking up logging plugin no-such-driver: plugin "no-such-driver" not found') + "\n")
    # A bare `-e NAME` the CLI finds no value for reaches the daemon as given: unset in the process.
    bare = docker(daemon, "run", "--rm", "-e", "DK_UNSET_HERE", "-e", "HOSTNAME", image, "env")
    assert bare.returncode == 0, bare.stderr
    assert [line for line in bare.stdout.splitlines() if line.startswith(("DK_UNSET_HERE", "HOSTNAME"))] == []
    assert docker(daemon, "ps", "-a", "-q").stdout == ""


def test_run_rm_detached_removes_the_container_when_it_exits(daemon, image):
    container_id = ok(daemon, "run", "--rm", "-d", "--name", "dk-rm-d", image, "sleep", "0.3").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", container_id)
    wait_until(lambda: docker(daemon, "ps", "-a", "-q", "-f", "name=dk-rm-d").stdout == "", what="dk-rm-d removed")
    gone = docker(daemon, "inspect", "--type", "container", "dk-rm-d")
    assert gone.returncode == 1 and "No such container: dk-rm-d" in gone.stderr


def test_run_init_makes_docker_init_pid_1(daemon, image):
    output = ok(daemon, "run", "--rm", "--init", image, "cat", "/proc/1/cmdline")
    assert output.split("\0")[:3] == ["/sbin/docker-init", "--", "cat"]


def test_run_bad_entrypoint_is_127_with_dockers_line(daemon, image):
    result = docker(daemon, "run", "--rm", "--entrypoint", "/no/such", image)
    assert result.returncode == 127
    assert "/no/such" in result.stderr and "Traceback" not in result.stderr
    assert docker(daemon, "ps", "-a", "-q").stdout == ""


def test_run_with_a_bind_mount_and_a_named_volume(daemon, image, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "in.txt").write_text("from the host\n")
    os.chmod(tmp_path, 0o777)
    os.chmod(host, 0o777)
    ok(daemon, "volume", "create", "dk-vol")
    try:
        out = ok(daemon, "run", "--rm", "-v", f"{host}:/h", "-v", "dk-vol:/data", image,
                 "sh", "-c", "cat /h/in.txt; echo kept > /data/k; echo back > /h/out.txt")
        assert out == "from the host\n"
        assert (host / "out.txt").read_text() == "back\n"
        assert ok(daemon, "run", "--rm", "-v", "dk-vol:/data:ro", image, "cat", "/data/k") == "kept\n"
        ro = docker(daemon, "run", "--rm", "-v", "dk-vol:/data:ro", image, "touch", "/data/x")
        assert ro.returncode == 1 and "Read-only file system" in ro.stderr
        mounts = ok(daemon, "run", "--name", "dk-mounts", "-v", "dk-vol:/data", image, "true")
        assert mounts == ""
        assert fmt(daemon, "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}", "dk-mounts") == \
            "volume dk-vol /data"
        ok(daemon, "rm", "dk-mounts")
    finally:
        docker(daemon, "rm", "-f", "dk-mounts")
        docker(daemon, "volume", "rm", "dk-vol")
    assert "dk-vol" not in ok(daemon, "volume", "ls", "-q").split()


def test_run_publish_then_reach_the_port_on_loopback(daemon, image):
    ok(daemon, "run", "-d", "--name", "dk-port", "-p", "127.0.0.1::8080", image,
       "sh", "-c", "while :; do echo served | nc -l -p 8080; done")
    try:
        mapping = ok(daemon, "port", "dk-port").strip()
        match = re.fullmatch(r"8080/tcp -> 127\.0\.0\.1:(\d+)", mapping)
        assert match, mapping
        port = int(match.group(1))
        assert ok(daemon, "port", "dk-port", "8080").strip() == f"127.0.0.1:{port}"
        assert ok(daemon, "ps", "--format", "{{.Ports}}", "-f", "name=dk-port").strip() == \
            f"127.0.0.1:{port}->8080/tcp"

        def served():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                    conn.settimeout(2)
                    return conn.recv(100) == b"served\n"
            except OSError:
                return False
        wait_until(served, timeout=20, what=f"'served' on 127.0.0.1:{port}")
        nope = docker(daemon, "port", "dk-port", "9999")
        # The CLI 20.10 names the port with its protocol.
        port_words = "'9999/tcp'" if older_than(23) else "'9999'"
        assert nope.returncode == 1 and f"Error: No public port {port_words} published for dk-port" in nope.stderr
    finally:
        docker(daemon, "rm", "-f", "dk-port")


def test_run_on_a_user_network_is_attached_to_it(daemon, image):
    ok(daemon, "network", "create", "--subnet", "10.238.7.0/24", "dk-net")
    try:
        out = ok(daemon, "run", "--rm", "--network", "dk-net", image, "ip", "-o", "-4", "addr", "show", "eth0")
        assert " 10.238.7." in out
        ok(daemon, "create", "--name", "dk-on-net", "--network", "dk-net", image, "true")
        assert fmt(daemon, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", "dk-on-net") == "dk-net"
        ok(daemon, "rm", "dk-on-net")
    finally:
        docker(daemon, "rm", "-f", "dk-on-net")
        docker(daemon, "network", "rm", "dk-net")


def test_restart_on_failure_counts_up_to_its_maximum(daemon, image):
    ok(daemon, "run", "-d", "--name", "dk-restart", "--restart", "on-failure:2", image, "sh", "-c", "exit 3")
    try:
        assert fmt(daemon, "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
                   "dk-restart") == "on-failure:2"
        wait_until(lambda: fmt(daemon, "{{.RestartCount}} {{.State.Status}}", "dk-restart") == "2 exited",
                   timeout=30, what="two restarts, then exited")
        time.sleep(1.5)
        assert fmt(daemon, "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", "dk-restart") == "2 exited 3"
    finally:
        docker(daemon, "rm", "-f", "dk-restart")


# A skip counts as a failure in CI: each of these two exists only in the mode it applies to (cgroup limits
# need root, or a delegated cgroup v2 subtree; elsewhere a limit is refused), as in test_limits.py.
def with_limits(test):
    return test if CGROUP_LIMITS else None


def without_limits(test):
    return None if CGROUP_LIMITS else test


@with_limits
def test_run_memory_sets_the_cgroup_limit(daemon, image):
    ok(daemon, "run", "-d", "--name", "dk-mem", "--memory", "64m", image, "sleep", "300")
    try:
        assert fmt(daemon, "{{.HostConfig.Memory}}", "dk-mem") == str(64 << 20)
        group = container_group(fmt(daemon, "{{.State.Pid}}", "dk-mem"), "memory")
        assert int((group / ("memory.max" if CGROUP_V2 else "memory.limit_in_bytes")).read_text()) == 64 << 20
        assert "/ 64MiB" in ok(daemon, "stats", "--no-stream", "--format", "{{.MemUsage}}", "dk-mem")
    finally:
        docker(daemon, "rm", "-f", "dk-mem")


@without_limits
def test_run_memory_rootless_is_refused_in_one_line_and_leaves_nothing(daemon, image):
    before = set(os.listdir(daemon.data_root / "containers"))
    result = docker(daemon, "run", "-d", "--name", "dk-mem", "--memory", "64m", image, "true")
    assert result.returncode == 125
    first, *rest = result.stderr.strip().splitlines()
    assert first.startswith("docker: Error response from daemon: ") and "--memory" in first, result.stderr
    # Then only the CLI's usage hint, in the words of its version.
    hint = "See 'docker run --help'." if older_than(23) else "Run 'docker run --help'"
    assert all(not line.strip() or line.startswith(hint) for line in rest), result.stderr
    assert docker(daemon, "ps", "-a", "-q", "-f", "name=dk-mem").stdout == ""
    assert set(os.listdir(daemon.data_root / "containers")) == before


def test_create_then_start_attached(daemon, image):
    container_id = ok(daemon, "create", "--name", "dk-created", image, "sh", "-c", "echo out; echo err >&2; exit 5")
    try:
        assert re.fullmatch(r"[0-9a-f]{64}\n", container_id)
        assert fmt(daemon, "{{.State.Status}}", "dk-created") == "created"
        assert re.match(r"Created\s*$", ok(daemon, "ps", "-a", "--format", "{{.Status}}", "-f", "name=dk-created"))
        result = docker(daemon, "start", "-a", "dk-created")
        assert (result.stdout, result.stderr, result.returncode) == ("out\n", "err\n", 5)
        assert fmt(daemon, "{{.State.Status}} {{.State.ExitCode}}", "dk-created") == "exited 5"
    finally:
        docker(daemon, "rm", "-f", "dk-created")


def test_attach_shows_the_output_and_returns_when_the_container_is_killed(daemon, image):
    ok(daemon, "run", "-d", "--name", "dk-attach", image,
       "sh", "-c", "i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.2; done")
    attach = subprocess.Popen(["docker", "-H", daemon.host, "attach", "--no-stdin", "dk-attach"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=pty_env(daemon))
    try:
        assert attach.stdout.readline().startswith("tick")
        ok(daemon, "kill", "dk-attach")
        out, err = attach.communicate(timeout=30)
        assert attach.returncode == 137, (attach.returncode, err)
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.wait()
        docker(daemon, "rm", "-f", "dk-attach")


def test_attach_to_a_tty_detaches_with_the_detach_keys(daemon, image, terminals):
    ok(daemon, "run", "-dit", "--name", "dk-attach-tty", image, "sh")
    try:
        t = terminals(docker_argv(daemon, "attach", "--detach-keys", "ctrl-x,x", "dk-attach-tty"), env=pty_env(daemon))
        time.sleep(0.3)
        shell_ready(t, "att")
        t.send(b"\x18x")
        # as with Docker's engine: the CLI prints the escape error and exits 1 (a detached `run -it` exits 0)
        assert t.wait() == 1, t.output
        assert t.output.rstrip().endswith(b"read escape sequence")
        assert fmt(daemon, "{{.State.Running}}", "dk-attach-tty") == "true"
        # and the default keys, ctrl-p ctrl-q
        t = terminals(docker_argv(daemon, "attach", "dk-attach-tty"), env=pty_env(daemon))
        time.sleep(0.3)
        shell_ready(t, "att2")
        t.send(CTRL_P + CTRL_Q)
        assert t.wait() == 1, t.output
        assert t.output.rstrip().endswith(b"read escape sequence")
        assert fmt(daemon, "{{.State.Running}}", "dk-attach-tty") == "true"
    finally:
        docker(daemon, "rm", "-f", "dk-attach-tty")


def test_exec_it_is_a_shell_on_a_pty(daemon, image, terminals):
    ok(daemon, "run", "-d", "--name", "dk-exec-it", image, "sleep", "300")
    try:
        t = terminals(docker_argv(daemon, "exec", "-it", "dk-exec-it", "sh"), rows=27, cols=81, env=pty_env(daemon))
        shell_ready(t, "ex")
        t.send("tty; stty size\r")
        screen = t.expect("27 81")
        assert b"/dev/pts/" in screen
        t.send("exit 6\r")
        assert t.wait() == 6
        assert fmt(daemon, "{{.State.Running}}", "dk-exec-it") == "true"
    finally:
        docker(daemon, "rm", "-f", "dk-exec-it")


def test_cp_a_file_both_ways_and_a_directory_out(daemon, image, tmp_path):
    os.chmod(tmp_path, 0o777)
    ok(daemon, "run", "-d", "--name", "dk-cp", image, "sh", "-c", "mkdir -p /d/sub; echo deep > /d/sub/f; sleep 300")
    try:
        (tmp_path / "one.txt").write_text("one file\n")
        assert ok(daemon, "cp", str(tmp_path / "one.txt"), "dk-cp:/tmp/") == ""
        assert ok(daemon, "exec", "dk-cp", "cat", "/tmp/one.txt") == "one file\n"
        ok(daemon, "cp", str(tmp_path / "one.txt"), "dk-cp:/tmp/renamed.txt")
        assert ok(daemon, "exec", "dk-cp", "cat", "/tmp/renamed.txt") == "one file\n"
        wait_until(lambda: docker(daemon, "exec", "dk-cp", "test", "-f", "/d/sub/f").returncode == 0, what="/d/sub/f")
        ok(daemon, "cp", "dk-cp:/d/sub/f", str(tmp_path / "f.out"))
        assert (tmp_path / "f.out").read_text() == "deep\n"
        ok(daemon, "cp", "dk-cp:/d", str(tmp_path / "d.out"))
        assert (tmp_path / "d.out" / "sub" / "f").read_text() == "deep\n"
        missing = docker(daemon, "cp", "dk-cp:/nope", str(tmp_path / "x"))
        assert missing.returncode == 1
        # The CLI 20.10 words the daemon's 404 itself.
        words = ("Error: No such container:path: dk-cp:/nope" if older_than(23)
                 else "Could not find the file /nope in container dk-cp")
        assert words in missing.stderr, missing.stderr
        assert not (tmp_path / "x").exists()
    finally:
        docker(daemon, "rm", "-f", "dk-cp")


def test_cp_into_a_volume_of_a_created_container(daemon, image, tmp_path):
    # The CLI asks HEAD for the destination, then PUTs: both see the container's volume
    # though it never ran, and the file is there at its start (as Docker's).
    os.chmod(tmp_path, 0o777)
    (tmp_path / "in.txt").write_text("copied before the start\n")
    ok(daemon, "create", "--name", "dk-cp-vol", "-v", "/vol1", image, "cat", "/vol1/in.txt")
    try:
        assert ok(daemon, "cp", str(tmp_path / "in.txt"), "dk-cp-vol:/vol1/") == ""
        ok(daemon, "cp", "dk-cp-vol:/vol1/in.txt", str(tmp_path / "back.txt"))
        assert (tmp_path / "back.txt").read_text() == "copied before the start\n"
        assert ok(daemon, "start", "-a", "dk-cp-vol") == "copied before the start\n"
    finally:
        docker(daemon, "rm", "-f", "-v", "dk-cp-vol")


def test_top_and_stats_no_stream(daemon, image):
    ok(daemon, "run", "-d", "--name", "dk-top", image, "sleep", "300")
    try:
        top = ok(daemon, "top", "dk-top").splitlines()
        assert top[0].split()[:3] == ["UID", "PID", "PPID"] and "CMD" in top[0]
        assert len(top) == 2 and top[1].endswith("sleep 300")
        stats = ok(daemon, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "dk-top").split()
        assert stats == ["dk-top", "1"]
    finally:
        docker(daemon, "rm", "-f", "dk-top")


def test_rm_without_force_of_a_running_container_is_dockers_conflict(daemon, image):
    ok(daemon, "run", "-d", "--name", "dk-rm", image, "sleep", "300")
    try:
        result = docker(daemon, "rm", "dk-rm")
        assert result.returncode == 1
        assert "cannot remove container" in result.stderr.lower() and "stop the container before" in result.stderr
        assert fmt(daemon, "{{.State.Running}}", "dk-rm") == "true"
        missing = docker(daemon, "rm", "dk-nope")
        assert missing.returncode == 1 and "No such container: dk-nope" in missing.stderr
    finally:
        docker(daemon, "rm", "-f", "dk-rm")
