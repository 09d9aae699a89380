"""`events`: a container's create/start/die/destroy as Docker reports them, filtered, past and
live, and read by the real docker CLI (root and rootless)."""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9})(Z|[+-]\d\d:\d\d) (\w+) (\S+) ([0-9a-f]{64}) \((.*)\)$")


def run_one(daemon, image, name, *run_args):
    """Run a short container that exits 0 and is removed; returns its (start, end) unix times as API strings."""
    start = time.time()
    daemon.ok("run", "--rm", "--name", name, *run_args, image, "true")
    time.sleep(0.05)
    return f"{int(start) - 1}", f"{time.time():.9f}"


def test_past_events_replay_with_since_and_until(daemon, image):
    since, until = run_one(daemon, image, "ev-past", "--label", "team=blue")
    lines = daemon.ok("events", "--since", since, "--until", until, "--filter", "container=ev-past").splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [m.group(4) for m in parsed] == ["create", "start", "die", "destroy"]
    assert all(m.group(3) == "container" for m in parsed)
    assert "image=busybox-local, name=ev-past, team=blue" in parsed[0].group(6)
    assert "exitCode=0" in parsed[2].group(6)


def test_filters_by_event_label_type_and_image(daemon, image):
    since, until = run_one(daemon, image, "ev-filt", "--label", "team=red")
    base = ["events", "--since", since, "--until", until, "--format", "{{.Action}} {{.Actor.Attributes.name}}"]
    assert daemon.ok(*base, "--filter", "container=ev-filt", "--filter", "event=die").splitlines() == ["die ev-filt"]
    assert daemon.ok(*base, "--filter", "label=team=red", "--filter", "event=start",
                     "--filter", "event=destroy").splitlines() == ["start ev-filt", "destroy ev-filt"]
    assert daemon.ok(*base, "--filter", "label=team=green").strip() == ""
    assert daemon.ok(*base, "--filter", "type=image", "--filter", "container=ev-filt").strip() == ""
    assert "create ev-filt" in daemon.ok(*base, "--filter", "image=busybox-local", "--filter", "container=ev-filt")


def test_api_stream_is_dockers_json(daemon, image):
    since, until = run_one(daemon, image, "ev-json")
    response = daemon.client().stream("GET", "/events", {"since": since, "until": until,
                                                          "filters": '{"container":["ev-json"]}'})
    events = list(response.json_lines())
    assert [e["Action"] for e in events] == ["create", "start", "die", "destroy"]
    first = events[0]
    assert first["status"] == "create" and first["id"] == first["Actor"]["ID"] and first["from"] == "busybox-local"
    assert first["Type"] == "container" and first["scope"] == "local"
    assert first["time"] == first["timeNano"] // 10**9
    assert first["Actor"]["Attributes"]["name"] == "ev-json"


def test_live_events_arrive_and_a_future_until_ends_the_stream(daemon, image):
    until = time.time() + 4
    watcher = subprocess.Popen([sys.executable, "-m", "minictr", "-H", daemon.host, "events", "--until", f"{until:.3f}",
                                "--filter", "container=ev-live", "--format", "{{json .}}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        daemon.ok("run", "--rm", "--name", "ev-live", "busybox-local", "true")
        out, err = watcher.communicate(timeout=20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, err
    assert time.time() >= until - 0.1
    assert [json.loads(line)["Action"] for line in out.splitlines()] == ["create", "start", "die", "destroy"]


@pytest.mark.parametrize("args, message", [
    (["--filter", "colour=red"], "invalid filter 'colour'"),
    (["--filter", "type=teapot"], "invalid filter 'type=teapot'"),
    (["--since", "not-a-time"], "failed to parse value as time or duration"),
    (["--since", "20", "--until", "10"], "cannot be after `until`"),
    (["--format", "{{.Nope}}"], "can't evaluate field Nope"),
])
def test_bad_arguments_are_one_line_errors(daemon, args, message):
    result = daemon.cli("events", "--until", "1", *args) if "--until" not in args else daemon.cli("events", *args)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


DOCKER = shutil.which("docker")


@pytest.mark.skipif(DOCKER is None, reason="no docker CLI on the PATH")
def test_docker_events_reads_our_stream_and_prints_what_we_print(daemon, image):
    since, until = run_one(daemon, image, "ev-docker", "--label", "x=y")
    args = ["events", "--since", since, "--until", until, "--filter", "container=ev-docker"]
    env = dict(os.environ, DOCKER_HOST=daemon.host, HOME=str(daemon.top), DOCKER_CONFIG=str(daemon.top / "docker"))
    theirs = subprocess.run([DOCKER, *args], capture_output=True, text=True, env=env, timeout=60)
    assert theirs.returncode == 0, theirs.stderr
    lines = theirs.stdout.splitlines()
    assert [LINE.match(line).group(4) for line in lines] == ["create", "start", "die", "destroy"]
    assert daemon.ok(*args) == theirs.stdout
    fmt = ["--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.From}} {{json .Actor.Attributes}}"]
    theirs = subprocess.run([DOCKER, *args, *fmt], capture_output=True, text=True, env=env, timeout=60)
    assert daemon.ok(*args, *fmt) == theirs.stdout


def test_exec_and_image_events(daemon, image, busybox_tar):
    since = f"{time.time() - 1:.3f}"
    container_id = daemon.ok("run", "-d", image, "sleep", "100").strip()
    try:
        daemon.ok("exec", container_id, "true")
        daemon.ok("import", str(busybox_tar), "events-image")
        daemon.ok("rmi", "events-image")
        until = f"{time.time() + 0.5:.3f}"
        lines = daemon.ok("events", "--since", since, "--until", until, "--format", "{{json .}}").splitlines()
        events = [json.loads(line) for line in lines]
        seen = [(e["Type"], e["Action"]) for e in events]
        assert ("container", "exec_create: true") in seen
        assert ("container", "exec_start: true") in seen
        assert ("container", "exec_die") in seen
        ours = [e for e in events if e["Type"] == "image" and e["Actor"]["Attributes"]["name"] != "busybox-local:latest"]
        assert [e["Action"] for e in ours] == ["import", "untag", "delete"]
    finally:
        daemon.cli("rm", "-f", container_id)
