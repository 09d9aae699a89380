"""Healthchecks as Docker runs them (root and rootless): the docker CLI's --health-* flags, docker-py's
`healthcheck=`, an image's HEALTHCHECK (commit --change, save/load), State.Health in inspect, `ps`'s
`(healthy)` and `--filter health=`, the start period, retries, the timeout, --no-healthcheck, bad
input, the events of the probes, and a daemon restart that keeps the health."""

import json
import time
import uuid

import docker as docker_py
import pytest

from tests.integration.dockercli import run_error
from tests.integration.registry import (  # noqa: F401 (fixtures)
    busybox_layer, docker_archive, image_config, push_archive, registry,
)
from .conftest import inspect, wait_until
from .test_docker_cli import docker

# Probes every 200 ms: the tests wait a second or two, not Docker's default 30 s.
FAST = ["--health-interval", "200ms"]


def unique(name):
    return f"hc-{name}-{uuid.uuid4().hex[:6]}"


def ok(daemon, *args):
    result = docker(daemon, *args)
    assert result.returncode == 0, f"docker {' '.join(args)} ({result.returncode}): {result.stderr}"
    return result.stdout


def health(daemon, name):
    return inspect(daemon, name)["State"].get("Health")


def wait_status(daemon, name, status, timeout=20):
    wait_until(lambda: (health(daemon, name) or {}).get("Status") == status, timeout=timeout,
               what=f"{name} to be {status}: {health(daemon, name)}")
    return health(daemon, name)


@pytest.fixture
def names(daemon):
    made = []
    yield made
    for name in made:
        daemon.cli("rm", "-f", name)


def run(daemon, names, image, *flags, command=("sleep", "300")):
    name = unique("c")
    names.append(name)
    ok(daemon, "run", "-d", "--name", name, *flags, image, *command)
    return name


def test_docker_cli_healthy_in_inspect_ps_and_filters(daemon, image, names):
    healthy = run(daemon, names, image, "--health-cmd", "echo fine", *FAST)
    waiting = run(daemon, names, image, "--health-cmd", "true", "--health-interval", "1h")
    plain = run(daemon, names, image)

    state = wait_status(daemon, healthy, "healthy")
    assert state["FailingStreak"] == 0
    assert state["Log"][-1]["ExitCode"] == 0 and state["Log"][-1]["Output"] == "fine\n"
    assert ok(daemon, "inspect", "--format", "{{.State.Health.Status}}", healthy).strip() == "healthy"
    # Docker's JSON leaves the zero fields out.
    assert json.loads(ok(daemon, "inspect", "--format", "{{json .Config.Healthcheck}}", healthy)) == {
        "Test": ["CMD-SHELL", "echo fine"], "Interval": 200_000_000}

    statuses = dict(line.split(" ", 1) for line in
                    ok(daemon, "ps", "--format", "{{.Names}} {{.Status}}").splitlines())
    assert statuses[healthy].startswith("Up ") and statuses[healthy].endswith(" (healthy)")
    assert statuses[waiting].endswith(" (health: starting)")
    assert "(" not in statuses[plain]

    def filtered(value):
        return set(ok(daemon, "ps", "--filter", f"health={value}", "--format", "{{.Names}}").split())

    assert healthy in filtered("healthy") and healthy not in filtered("starting")
    assert waiting in filtered("starting")
    assert plain in filtered("none") and {healthy, waiting}.isdisjoint(filtered("none"))
    assert "Health" not in inspect(daemon, plain)["State"]


def test_failing_probes_make_it_unhealthy_after_the_retries(daemon, image, names):
    since = str(int(time.time()) - 1)
    name = run(daemon, names, image, "--health-cmd", "echo sick; exit 1", *FAST, "--health-retries", "2")
    state = wait_status(daemon, name, "unhealthy")
    assert state["FailingStreak"] >= 2
    assert {(e["ExitCode"], e["Output"]) for e in state["Log"]} == {(1, "sick\n")}
    assert len(health(daemon, name)["Log"]) <= 5
    wait_until(lambda: len(health(daemon, name)["Log"]) == 5, what="five log entries")
    assert ok(daemon, "ps", "--filter", f"name={name}", "--format", "{{.Status}}").strip().endswith("(unhealthy)")

    actions = ok(daemon, "events", "--since", since, "--until", str(int(time.time()) + 1),
                 "--filter", f"container={name}", "--format", "{{.Action}}").splitlines()
    # Each probe is an exec, with Docker's events; the status change has its own.
    assert "exec_create: /bin/sh -c echo sick; exit 1" in actions
    assert "exec_start: /bin/sh -c echo sick; exit 1" in actions and "exec_die" in actions
    assert actions.count("health_status: unhealthy") == 1
    assert "health_status: healthy" not in actions


def test_a_probe_past_its_timeout_is_killed_and_fails(daemon, image, names):
    name = run(daemon, names, image, "--health-cmd", "echo slow; exec sleep 31", "--health-timeout", "300ms",
               *FAST, "--health-retries", "1")
    state = wait_status(daemon, name, "unhealthy")
    entry = state["Log"][0]
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (300ms): slow\n"
    # Killed: the probes that timed out do not pile up in the container (one may be under way).
    wait_until(lambda: len(health(daemon, name)["Log"]) >= 3, what="three timed-out probes")
    processes = ok(daemon, "exec", name, "ps", "-o", "args").splitlines()
    assert processes.count("sleep 31") <= 1 and "sleep 300" in processes


def test_the_start_period_forgives_failures_until_the_first_success(daemon, image, names):
    # minictr's CLI: the docker CLI sends --health-start-interval only to an API of 1.44 or later.
    name = unique("start")
    names.append(name)
    daemon.ok("run", "-d", "--name", name, "--health-cmd", "test -e /tmp/ready", "--health-interval", "300ms",
              "--health-retries", "1", "--health-start-period", "60s", "--health-start-interval", "100ms",
              image, "sleep", "300")
    wait_until(lambda: len((health(daemon, name) or {}).get("Log") or []) >= 3, what="three failed probes")
    state = health(daemon, name)
    assert state["Status"] == "starting" and state["FailingStreak"] == 0
    assert all(e["ExitCode"] == 1 for e in state["Log"])

    ok(daemon, "exec", name, "touch", "/tmp/ready")
    wait_status(daemon, name, "healthy")
    ok(daemon, "exec", name, "rm", "/tmp/ready")
    # The success ended the start period: one failure (retries 1) now makes it unhealthy.
    wait_status(daemon, name, "unhealthy")


def test_stop_leaves_it_unhealthy_and_a_start_probes_again(daemon, image, names):
    name = run(daemon, names, image, "--health-cmd", "true", *FAST)
    wait_status(daemon, name, "healthy")
    ok(daemon, "stop", "-t", "0", name)
    stopped = health(daemon, name)
    assert stopped["Status"] == "unhealthy"
    time.sleep(0.6)
    assert health(daemon, name)["Log"] == stopped["Log"], "probes went on after the stop"

    ok(daemon, "start", name)
    assert health(daemon, name)["Status"] in ("starting", "healthy")
    wait_status(daemon, name, "healthy")


def test_an_images_healthcheck_is_kept_by_commit_save_and_load(daemon, image, names, tmp_path):
    source = run(daemon, names, image)
    tagged = unique("img")
    daemon.ok("commit", "--change", "HEALTHCHECK --interval=200ms --retries=2 CMD echo from-image", source, tagged)
    try:
        expected = {"Test": ["CMD-SHELL", "echo from-image"], "Interval": 200_000_000, "Retries": 2}
        assert json.loads(ok(daemon, "image", "inspect", "--format", "{{json .Config.Healthcheck}}", tagged)) == expected
        archive = tmp_path / "hc.tar"
        ok(daemon, "save", "-o", str(archive), tagged)
        ok(daemon, "rmi", tagged)
        ok(daemon, "load", "-i", str(archive))
        assert json.loads(ok(daemon, "image", "inspect", "--format", "{{json .Config.Healthcheck}}", tagged)) == expected

        from_image = run(daemon, names, tagged)
        assert wait_status(daemon, from_image, "healthy")["Log"][-1]["Output"] == "from-image\n"
        # Flags override the image's fields one by one: the image's command stays.
        overridden = run(daemon, names, tagged, "--health-timeout", "5s")
        assert inspect(daemon, overridden)["Config"]["Healthcheck"] == {**expected, "Timeout": 5_000_000_000}
        # --no-healthcheck: not even the image's.
        disabled = run(daemon, names, tagged, "--no-healthcheck")
        assert inspect(daemon, disabled)["Config"]["Healthcheck"]["Test"] == ["NONE"]
        time.sleep(0.6)
        assert health(daemon, disabled) is None
        assert "(" not in ok(daemon, "ps", "--filter", f"name={disabled}", "--format", "{{.Status}}")

        # A container's Healthcheck goes into the image committed from it.
        recommitted = unique("img2")
        daemon.ok("commit", from_image, recommitted)
        try:
            assert json.loads(ok(daemon, "image", "inspect", "--format", "{{json .Config.Healthcheck}}",
                                 recommitted)) == expected
        finally:
            daemon.cli("rmi", recommitted)
    finally:
        for name in list(names):
            daemon.cli("rm", "-f", name)
        names.clear()
        daemon.cli("rmi", tagged)


def test_a_pulled_images_healthcheck_is_kept_and_run(daemon, registry, busybox_layer, tmp_path, names):
    """An image config with a HEALTHCHECK, as a registry serves it (pushed with skopeo)."""
    from tests.integration.registry import _sha

    document = json.loads(image_config([_sha(busybox_layer)]))
    document["config"]["Healthcheck"] = {"Test": ["CMD", "echo", "pulled"], "Interval": 200_000_000}
    archive = docker_archive(tmp_path / "hc.tar", [busybox_layer], config=json.dumps(document).encode())
    ref = registry.ref(f"health/pulled-{uuid.uuid4().hex[:6]}:1")
    push_archive(registry, archive, ref.split("/", 1)[1])
    daemon.ok("pull", ref)
    try:
        assert json.loads(ok(daemon, "image", "inspect", "--format", "{{json .Config.Healthcheck}}", ref)) == \
            document["config"]["Healthcheck"]
        name = run(daemon, names, ref)
        assert wait_status(daemon, name, "healthy")["Log"][-1]["Output"] == "pulled\n"
    finally:
        for name in list(names):
            daemon.cli("rm", "-f", name)
        names.clear()
        daemon.cli("rmi", ref)


def test_docker_py_healthcheck(daemon, image):
    client = docker_py.DockerClient(base_url="unix://" + str(daemon.socket), timeout=60)
    container = client.containers.run(image, "sleep 300", detach=True, name=unique("dpy"),
                                      healthcheck={"test": ["CMD", "true"], "interval": 200_000_000, "retries": 2})
    try:
        wait_until(lambda: container.reload() or container.attrs["State"]["Health"]["Status"] == "healthy",
                   what="docker-py's container to be healthy")
        assert container.attrs["Config"]["Healthcheck"]["Test"] == ["CMD", "true"]
        assert container.id in {c.id for c in client.containers.list(filters={"health": "healthy"})}
        with pytest.raises(docker_py.errors.APIError, match="Retries in Healthcheck cannot be negative"):
            client.containers.create(image, "true", healthcheck={"test": ["CMD", "true"], "retries": -1})
    finally:
        container.remove(force=True)
        client.close()


@pytest.mark.parametrize("flags,message", [
    (["--health-cmd", "true", "--health-interval", "500us"], "Interval in Healthcheck cannot be less than 1ms"),
    (["--health-cmd", "true", "--health-timeout", "1us"], "Timeout in Healthcheck cannot be less than 1ms"),
])
def test_bad_durations_are_one_line_and_create_nothing(daemon, image, flags, message):
    before = daemon.ok("ps", "-aq")
    result = docker(daemon, "run", "-d", *flags, image, "true")
    assert result.returncode == 125
    assert result.stderr.splitlines()[0] == run_error(message)
    assert daemon.ok("ps", "-aq") == before


def test_minictr_cli_bad_health_flags_are_one_line(daemon, image):
    before = daemon.ok("ps", "-aq")
    for flags, message in [(["--health-interval", "soon", "--health-cmd", "true"], 'time: invalid duration "soon"'),
                           (["--no-healthcheck", "--health-cmd", "true"],
                            "--no-healthcheck conflicts with --health-* options"),
                           (["--health-retries", "-2"], "--health-retries cannot be negative")]:
        result = daemon.cli("run", "-d", *flags, image, "true")
        assert result.returncode != 0
        assert result.stderr.strip().splitlines() == [f"minictr: {message}"], result.stderr
        assert "Traceback" not in result.stderr
    assert daemon.ok("ps", "-aq") == before


def test_a_daemon_restart_keeps_the_health_and_probes_resume(daemon, image, names):
    name = run(daemon, names, image, "--health-cmd", "echo alive", "--health-interval", "500ms")
    wait_until(lambda: len((health(daemon, name) or {}).get("Log") or []) >= 2, what="two probes")
    seen = health(daemon, name)["Log"][-1]
    daemon.stop()
    daemon.start()
    after = health(daemon, name)
    assert seen in after["Log"], (seen, after)
    # Docker's live restore: probed again from "starting", the log kept.
    assert after["Status"] in ("starting", "healthy")
    last = after["Log"][-1]["End"]
    wait_until(lambda: health(daemon, name)["Log"][-1]["End"] > last, what="a probe after the restart")
    assert wait_status(daemon, name, "healthy")["Log"][-1]["Output"] == "alive\n"


def test_a_killed_daemon_still_shows_the_last_status_and_probes_again(daemon, image, names):
    from .test_live_restore import kill_daemon

    name = run(daemon, names, image, "--health-cmd", "echo alive", "--health-interval", "300ms")
    wait_status(daemon, name, "healthy")
    kill_daemon(daemon)  # SIGKILL: only what was written at the status changes is left
    daemon.start()
    after = health(daemon, name)
    assert after is not None and after["Status"] in ("starting", "healthy") and after["Log"], after
    last = after["Log"][-1]["End"]
    wait_until(lambda: health(daemon, name)["Log"][-1]["End"] > last, what="a probe after the restart")
    assert wait_status(daemon, name, "healthy")["FailingStreak"] == 0
