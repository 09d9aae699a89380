"""`minictr logs`, GET /containers/{id}/logs, and the docker CLI and docker-py reading them."""

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.dockercli import PATH as DOCKER_PATH

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"


def create(daemon, image, cmd, **fields):
    body = {"Image": image, "Cmd": cmd, **fields}
    return daemon.client().post("/containers/create", None, body).json()["Id"]


def run_to_end(daemon, image, cmd, **fields):
    """Create, start and wait for a container through the API; returns its id."""
    client = daemon.client()
    container_id = create(daemon, image, cmd, **fields)
    client.post(f"/containers/{container_id}/start")
    client.post(f"/containers/{container_id}/wait")
    return container_id


def api_logs(daemon, container_id, **query):
    """GET …/logs: (content type, [(stream, payload)] frames)."""
    response = daemon.client().stream("GET", f"/containers/{container_id}/logs",
                                      {"stdout": 1, "stderr": 1, **query})
    data = b"".join(response.chunks())
    frames = []
    while data:
        length = int.from_bytes(data[4:8], "big")
        frames.append((data[0], data[8:8 + length]))
        data = data[8 + length:]
    return response.headers.get("content-type"), frames


def docker(daemon, *args):
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on the PATH")
    return subprocess.run(["docker", "-H", daemon.host, *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": DOCKER_PATH, "HOME": str(daemon.top)})


def test_api_keeps_stdout_and_stderr_apart_in_docker_frames(daemon, image):
    cid = run_to_end(daemon, image, ["sh", "-c", "echo out1; echo err1 >&2; echo out2; printf tail"])
    try:
        content_type, frames = api_logs(daemon, cid)
        assert content_type == "application/vnd.docker.multiplexed-stream"
        assert sorted(frames) == sorted([(1, b"out1\n"), (2, b"err1\n"), (1, b"out2\n"), (1, b"tail")])
        assert [f for f in frames if f[0] == 1] == [(1, b"out1\n"), (1, b"out2\n"), (1, b"tail")]
        assert api_logs(daemon, cid, stdout=0)[1] == [(2, b"err1\n")]
        assert [s for s, _ in api_logs(daemon, cid, stderr=0)[1]] == [1, 1, 1]
    finally:
        daemon.ok("rm", "-f", cid)


def test_api_without_any_stream_is_a_bad_request(daemon, image):
    cid = run_to_end(daemon, image, ["true"])
    try:
        result = daemon.client().stream
        with pytest.raises(Exception, match="you must choose at least one stream"):
            result("GET", f"/containers/{cid}/logs", {"stdout": 0, "stderr": 0})
    finally:
        daemon.ok("rm", "-f", cid)


def test_cli_writes_stdout_and_stderr_to_their_own_streams(daemon, image):
    daemon.ok("run", "--name", "logs-streams", image, "sh", "-c", "echo out; echo err >&2")
    try:
        result = daemon.cli("logs", "logs-streams")
        assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")
    finally:
        daemon.ok("rm", "-f", "logs-streams")


def test_tty_container_logs_are_raw_bytes(daemon, image):
    cid = run_to_end(daemon, image, ["sh", "-c", "echo hello; echo oops >&2"], Tty=True)
    try:
        response = daemon.client().stream("GET", f"/containers/{cid}/logs", {"stdout": 1, "stderr": 1})
        assert response.headers["content-type"] == "application/vnd.docker.raw-stream"
        body = b"".join(response.chunks())
        assert b"hello" in body and b"oops" in body and not body.startswith(b"\x01\x00\x00\x00")
    finally:
        daemon.ok("rm", "-f", cid)


def test_follow_sees_later_lines_and_ends_when_the_container_exits(daemon, image):
    daemon.ok("run", "-d", "--name", "logs-follow", image, "sh", "-c",
              "echo first; sleep 1.5; echo second; sleep 1; echo third")
    try:
        follower = subprocess.Popen([sys.executable, "-m", "minictr", "-H", daemon.host, "logs", "-f", "logs-follow"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert follower.stdout.readline() == "first\n"
        assert daemon.ok("inspect", "-f", "{{.State.Running}}", "logs-follow").strip() == "true"
        assert follower.stdout.readline() == "second\n"
        assert follower.poll() is None  # still following: the container still runs
        out, err = follower.communicate(timeout=20)
        assert (follower.returncode, out, err) == (0, "third\n", "")
        assert daemon.ok("inspect", "-f", "{{.State.Running}}", "logs-follow").strip() == "false"
    finally:
        daemon.ok("rm", "-f", "logs-follow")


def test_follow_of_a_stopped_container_returns_at_once(daemon, image):
    daemon.ok("run", "--name", "logs-stopped", image, "echo", "done")
    try:
        result = daemon.cli("logs", "-f", "logs-stopped", timeout=10)
        assert (result.returncode, result.stdout) == (0, "done\n")
    finally:
        daemon.ok("rm", "-f", "logs-stopped")


def test_tail_timestamps_since_and_until(daemon, image):
    daemon.ok("run", "--name", "logs-tail", image, "sh", "-c", "seq 1 10; sleep 1.2; echo late")
    try:
        assert daemon.ok("logs", "--tail", "3", "logs-tail") == "9\n10\nlate\n"
        assert daemon.ok("logs", "-n", "0", "logs-tail") == ""
        assert daemon.ok("logs", "--tail", "all", "logs-tail").split() == [str(i) for i in range(1, 11)] + ["late"]
        stamped = daemon.ok("logs", "-t", "logs-tail").splitlines()
        assert all(re.fullmatch(STAMP + r" (\d+|late)", line) for line in stamped), stamped
        late_time = stamped[-1].split()[0]
        assert daemon.ok("logs", "--since", late_time, "logs-tail") == "late\n"
        assert daemon.ok("logs", "--until", stamped[-2].split()[0], "logs-tail").split() == [str(i) for i in range(1, 11)]
        assert daemon.ok("logs", "--since", "1h", "logs-tail").split()[-1] == "late"
        assert daemon.ok("logs", "--until", "1h", "logs-tail") == ""
    finally:
        daemon.ok("rm", "-f", "logs-tail")


def test_bad_since_is_one_line_and_no_traceback(daemon, image):
    daemon.ok("create", "--name", "logs-bad-since", image, "true")
    try:
        result = daemon.cli("logs", "--since", "yesterday", "logs-bad-since")
        assert result.returncode != 0
        assert result.stderr.strip().count("\n") == 0 and "failed to parse value" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        daemon.ok("rm", "-f", "logs-bad-since")


def test_created_container_has_empty_logs(daemon, image):
    daemon.ok("create", "--name", "logs-created", image, "echo", "never")
    try:
        result = daemon.cli("logs", "logs-created")
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    finally:
        daemon.ok("rm", "-f", "logs-created")


def test_rotation_end_to_end_with_log_config(daemon, image):
    cid = run_to_end(daemon, image, ["sh", "-c", "for i in $(seq 1 400); do echo line-$i; done"],
                     HostConfig={"LogConfig": {"Type": "json-file", "Config": {"max-size": "2k", "max-file": "3"}}})
    try:
        log_path = Path(daemon.client().get(f"/containers/{cid}/json")["LogPath"])
        files = sorted(p.name for p in log_path.parent.glob(log_path.name + "*"))
        assert files == [log_path.name, log_path.name + ".1", log_path.name + ".2"]
        assert all(p.stat().st_size <= 2000 for p in log_path.parent.glob(log_path.name + "*"))
        lines = daemon.ok("logs", cid).split()
        first = int(lines[0].split("-")[1])
        assert first > 1 and lines == [f"line-{i}" for i in range(first, 401)]
        assert daemon.ok("logs", "--tail", "40", cid).split() == [f"line-{i}" for i in range(361, 401)]
    finally:
        daemon.ok("rm", "-f", cid)


def test_follow_goes_on_across_rotation(daemon, image):
    cid = create(daemon, image, ["sh", "-c", "sleep 1.5; for i in $(seq 1 300); do echo line-$i; done"],
                 HostConfig={"LogConfig": {"Type": "json-file", "Config": {"max-size": "1k", "max-file": "100"}}})
    try:
        daemon.ok("start", cid)
        follower = subprocess.Popen([sys.executable, "-m", "minictr", "-H", daemon.host, "logs", "-f", cid],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = follower.communicate(timeout=30)
        assert (follower.returncode, err) == (0, "")
        assert out.split() == [f"line-{i}" for i in range(1, 301)]
    finally:
        daemon.ok("rm", "-f", cid)


def test_unsupported_log_driver_is_refused_at_create(daemon, image):
    before = daemon.ok("ps", "-a", "-q")
    with pytest.raises(Exception, match='logging driver "syslog" is not supported'):
        create(daemon, image, ["true"], HostConfig={"LogConfig": {"Type": "syslog", "Config": {}}})
    with pytest.raises(Exception, match="unknown log opt 'max-sizes'"):
        create(daemon, image, ["true"], HostConfig={"LogConfig": {"Type": "json-file", "Config": {"max-sizes": "1"}}})
    assert daemon.ok("ps", "-a", "-q") == before


def test_none_driver_keeps_no_log_and_logs_says_so(daemon, image):
    cid = run_to_end(daemon, image, ["echo", "hi"], HostConfig={"LogConfig": {"Type": "none", "Config": {}}})
    try:
        log_path = Path(daemon.client().get(f"/containers/{cid}/json")["LogPath"])
        assert not any(log_path.parent.glob("*-json.log*"))
        result = daemon.cli("logs", cid)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert result.stderr.strip() == "Error response from daemon: configured logging driver does not support reading"
    finally:
        daemon.ok("rm", "-f", cid)


def test_logs_are_removed_with_their_container(daemon, image):
    cid = run_to_end(daemon, image, ["echo", "bye"])
    log_path = Path(daemon.client().get(f"/containers/{cid}/json")["LogPath"])
    assert log_path.exists()
    daemon.ok("rm", cid)
    assert not log_path.parent.exists()
    result = daemon.cli("logs", cid)
    assert result.returncode != 0 and "No such container" in result.stderr


def test_logs_written_while_the_daemon_was_down_are_there(daemon, image):
    daemon.ok("run", "-d", "--name", "logs-restart", image, "sh", "-c", "echo before; sleep 1.5; echo during")
    try:
        daemon.kill()
        time.sleep(2)
        daemon.start()
        assert daemon.ok("logs", "logs-restart") == "before\nduring\n"
    finally:
        daemon.ok("rm", "-f", "logs-restart")


def test_docker_cli_logs_output_is_ours(daemon, image):
    daemon.ok("run", "--name", "logs-docker", image, "sh", "-c", "echo o1; echo e1 >&2; seq 2 5; printf end")
    try:
        for args in ([], ["-t"], ["--tail", "2"], ["--details"]):
            ours = daemon.cli("logs", *args, "logs-docker")
            theirs = docker(daemon, "logs", *args, "logs-docker")
            assert theirs.returncode == 0, theirs.stderr
            assert (theirs.stdout, theirs.stderr) == (ours.stdout, ours.stderr)
        assert docker(daemon, "logs", "logs-docker").stderr == "e1\n"
    finally:
        daemon.ok("rm", "-f", "logs-docker")


def test_docker_cli_follows(daemon, image):
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on the PATH")
    daemon.ok("run", "-d", "--name", "logs-docker-f", image, "sh", "-c", "echo a; sleep 1; echo b")
    try:
        result = docker(daemon, "logs", "-f", "logs-docker-f")
        assert (result.returncode, result.stdout) == (0, "a\nb\n")
    finally:
        daemon.ok("rm", "-f", "logs-docker-f")


def test_docker_py_streams_and_follows(daemon, image):
    docker_py = pytest.importorskip("docker")
    client = docker_py.DockerClient(base_url=daemon.host)
    daemon.ok("run", "-d", "--name", "logs-docker-py", image, "sh", "-c", "echo a; echo b >&2; sleep 1; echo c")
    try:
        container = client.containers.get("logs-docker-py")
        streamed = b"".join(container.logs(stream=True, follow=True))
        assert sorted(streamed.splitlines()) == [b"a", b"b", b"c"]
        assert container.logs(stderr=False) == b"a\nc\n"
        assert container.logs(tail=1) == b"c\n"
    finally:
        client.close()
        daemon.ok("rm", "-f", "logs-docker-py")


def test_cli_log_opts_rotate_and_a_bad_driver_is_one_line(daemon, image):
    daemon.ok("run", "--name", "logs-cli-opts", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", image,
              "sh", "-c", "for i in $(seq 1 100); do echo line-$i; done")
    try:
        log_path = Path(daemon.ok("inspect", "-f", "{{.LogPath}}", "logs-cli-opts").strip())
        assert sorted(p.name for p in log_path.parent.glob(log_path.name + "*")) == \
            [log_path.name, log_path.name + ".1"]
        assert daemon.ok("logs", "--tail", "1", "logs-cli-opts") == "line-100\n"
    finally:
        daemon.ok("rm", "-f", "logs-cli-opts")
    before = daemon.ok("ps", "-a", "-q")
    result = daemon.cli("run", "--log-driver", "syslog", image, "true")
    assert result.returncode == 125 and "Traceback" not in result.stderr
    assert result.stderr == 'Error response from daemon: logging driver "syslog" is not supported: minictr has json-file and none\n'
    assert daemon.ok("ps", "-a", "-q") == before
