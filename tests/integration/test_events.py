"""`events`: a container's create/attach/start/die/destroy, its networks' connect/disconnect and its
execs as Docker reports them, in Docker's order, filtered, past and live, and read by the real docker
CLI (root and rootless)."""

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
    assert [m.group(4) for m in parsed] == ["create", "attach", "start", "die", "destroy"]
    assert all(m.group(3) == "container" for m in parsed)
    assert "image=busybox-local, name=ev-past, team=blue" in parsed[0].group(6)
    assert "exitCode=0" in parsed[3].group(6)


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
    assert [e["Action"] for e in events] == ["create", "attach", "start", "die", "destroy"]
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
    assert [json.loads(line)["Action"] for line in out.splitlines()] == ["create", "attach", "start", "die", "destroy"]


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
    assert [LINE.match(line).group(4) for line in lines] == ["create", "attach", "start", "die", "destroy"]
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
        # Docker's words: the program, a space, its arguments (none here).
        assert ("container", "exec_create: true ") in seen
        assert ("container", "exec_start: true ") in seen
        assert ("container", "exec_die") in seen
        ours = [e for e in events if e["Type"] == "image" and e["Actor"]["Attributes"]["name"] != "busybox-local:latest"]
        assert [e["Action"] for e in ours] == ["import", "untag", "delete"]
    finally:
        daemon.cli("rm", "-f", container_id)


def _events_of(daemon, container_id, since, until):
    """(Type, Action, attributes) of the events about one container, its networks' included, in order."""
    response = daemon.client().stream("GET", "/events", {"since": since, "until": until})
    return [(e["Type"], e["Action"], e["Actor"]["Attributes"], e["Actor"]["ID"]) for e in response.json_lines()
            if (e["Type"] == "container" and e["Actor"]["ID"] == container_id)
            or (e["Type"] == "network" and e["Actor"]["Attributes"].get("container") == container_id)]


def _network_id(daemon, name):
    return daemon.client().get(f"/networks/{name}")["Id"]


def test_a_containers_life_has_dockers_events_in_dockers_order(daemon, image):
    # Docker 20.10's order (seen with its dockerd here): network connect comes before start, the
    # disconnects after die (daemon/monitor.go logs die, then cleans up); stop signals through kill
    # (daemon/stop.go); a network connect of a running container says so at once, its disconnect
    # twice (moby logs it in two places); an exec has create, start and die.
    ev_net = daemon.ok("network", "create", "ev-net").strip()
    since = f"{time.time() - 0.5:.3f}"
    container_id = daemon.ok("run", "-d", "--name", "ev-order", "--network", "ev-net", image, "sleep", "300").strip()
    try:
        daemon.ok("network", "connect", "bridge", "ev-order")
        daemon.ok("network", "disconnect", "bridge", "ev-order")
        assert daemon.cli("exec", "ev-order", "sh", "-c", "exit 3").returncode == 3
        daemon.ok("stop", "-t", "0", "ev-order")  # sleep, pid 1, ignores TERM: KILL follows at once
        daemon.ok("rm", "ev-order")
        until = f"{time.time() + 0.5:.3f}"
        events = _events_of(daemon, container_id, since, until)
    finally:
        daemon.cli("rm", "-f", "ev-order")
        daemon.cli("network", "rm", "ev-net")
    assert [(kind, action) for kind, action, _, _ in events] == [
        ("container", "create"), ("network", "connect"), ("container", "start"),
        ("network", "connect"), ("network", "disconnect"), ("network", "disconnect"),
        ("container", "exec_create: sh -c exit 3"), ("container", "exec_start: sh -c exit 3"),
        ("container", "exec_die"),
        ("container", "kill"), ("container", "kill"), ("container", "die"), ("network", "disconnect"),
        ("container", "stop"), ("container", "destroy")]
    networks = [(attributes, actor) for kind, _, attributes, actor in events if kind == "network"]
    on_ev_net = ({"container": container_id, "name": "ev-net", "type": "bridge"}, ev_net)
    on_bridge = ({"container": container_id, "name": "bridge", "type": "bridge"}, _network_id(daemon, "bridge"))
    assert networks == [on_ev_net, on_bridge, on_bridge, on_bridge, on_ev_net]
    exec_die = events[8][2]
    assert exec_die["exitCode"] == "3" and len(exec_die["execID"]) == 64
    assert events[6][2]["execID"] == events[7][2]["execID"] == exec_die["execID"]
    assert [events[9][2]["signal"], events[10][2]["signal"]] == ["15", "9"]


def test_a_container_on_host_or_none_is_connected_to_that_network(daemon, image):
    since = f"{time.time() - 0.5:.3f}"
    container_id = daemon.ok("run", "-d", "--network", "none", image, "sleep", "300").strip()
    daemon.ok("rm", "-f", container_id)
    until = f"{time.time() + 0.5:.3f}"
    events = _events_of(daemon, container_id, since, until)
    assert [(kind, action) for kind, action, _, _ in events] == [
        ("container", "create"), ("network", "connect"), ("container", "start"), ("container", "kill"),
        ("container", "die"), ("network", "disconnect"), ("container", "destroy")]
    none = _network_id(daemon, "none")
    assert all(e[2] == {"container": container_id, "name": "none", "type": "null"} and e[3] == none
               for e in events if e[0] == "network")


def test_a_stopped_container_says_disconnect_but_not_connect(daemon, image):
    # Docker: a network connect of a stopped container is only recorded (its event comes at the start);
    # a disconnect is logged whatever the state.
    daemon.ok("network", "create", "ev-idle")
    since = f"{time.time() - 0.5:.3f}"
    container_id = daemon.ok("create", image, "true").strip()
    try:
        daemon.ok("network", "connect", "ev-idle", container_id)
        daemon.ok("network", "disconnect", "ev-idle", container_id)
        until = f"{time.time() + 0.5:.3f}"
        events = _events_of(daemon, container_id, since, until)
    finally:
        daemon.cli("rm", "-f", container_id)
        daemon.cli("network", "rm", "ev-idle")
    assert [(kind, action) for kind, action, _, _ in events] == [("container", "create"), ("network", "disconnect")]


def test_attach_and_its_detach_keys_are_events(daemon, image):
    container_id = daemon.ok("run", "-d", "-it", image, "sh").strip()
    since = f"{time.time() - 0.5:.3f}"
    try:
        import docker

        client = docker.DockerClient(base_url=daemon.host)
        socket = client.api.attach_socket(container_id, params={"stdin": 1, "stdout": 1, "stream": 1,
                                                                "detachKeys": "ctrl-x"})
        raw = getattr(socket, "_sock", socket)
        raw.sendall(b"\x18")  # ctrl-x
        raw.settimeout(10)
        while raw.recv(4096):
            pass
        raw.close()
        attach_events = lambda: [a for k, a, _, _ in _events_of(daemon, container_id, since,  # noqa: E731
                                                                  f"{time.time():.3f}") if a in ("attach", "detach")]
        from tests.integration.conftest import wait_until
        wait_until(lambda: attach_events() == ["attach", "detach"], timeout=10, what="attach and detach events")
        assert daemon.ok("inspect", "--format", "{{.State.Running}}", container_id).strip() == "true"
    finally:
        daemon.cli("rm", "-f", container_id)


@pytest.mark.skipif(DOCKER is None, reason="no docker CLI on the PATH")
def test_docker_run_gives_dockers_sequence_to_docker_events(daemon, image):
    env = dict(os.environ, DOCKER_HOST=daemon.host, HOME=str(daemon.top), DOCKER_CONFIG=str(daemon.top / "docker"))
    since = f"{time.time():.3f}"  # the earlier tests' events (their bridge's disconnects) left out
    ran = subprocess.run([DOCKER, "run", "--rm", "--name", "ev-dkrun", image, "true"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert ran.returncode == 0, ran.stderr
    until = f"{time.time() + 0.5:.3f}"
    shown = subprocess.run([DOCKER, "events", "--since", since, "--until", until, "--format",
                            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert shown.returncode == 0, shown.stderr
    lines = [line.split(" ") for line in shown.stdout.splitlines()
             if line.endswith(" ev-dkrun") or line.startswith(("network connect ", "network disconnect "))]
    assert lines == [["container", "create", "ev-dkrun"], ["container", "attach", "ev-dkrun"],
                     ["network", "connect", "bridge"], ["container", "start", "ev-dkrun"],
                     ["container", "die", "ev-dkrun"], ["network", "disconnect", "bridge"],
                     ["container", "destroy", "ev-dkrun"]]


def test_an_exec_whose_command_cannot_run_has_no_exec_die(daemon, image):
    # moby logs exec_start before its runtime tries the command, and exec_die only for a process that ran.
    container_id = daemon.ok("run", "-d", image, "sleep", "300").strip()
    since = f"{time.time():.3f}"
    try:
        assert daemon.cli("exec", container_id, "/no/such/command").returncode == 127
        assert daemon.cli("exec", container_id, "true").returncode == 0
        until = f"{time.time() + 0.5:.3f}"
        actions = [action for kind, action, _, _ in _events_of(daemon, container_id, since, until)]
    finally:
        daemon.cli("rm", "-f", container_id)
    assert actions == ["exec_create: /no/such/command ", "exec_start: /no/such/command ",
                       "exec_create: true ", "exec_start: true ", "exec_die"]
