"""containers/health.py's state machine (moby's handleProbeResult and the probe intervals), and
what `ps` shows of it: no kernel, no daemon."""

from types import SimpleNamespace

from minictr.containers import config as container_config
from minictr.containers.filters import ContainerFilter
from minictr.containers.health import ProbeResult, next_interval, record, starting
from minictr.containers.state import State

S = 1_000_000_000
T0 = 1_800_000_000 * S  # the container's start


def probe(at, code, output=""):
    return ProbeResult(T0 + at, T0 + at + S // 100, code, output)


def run(config, codes, every=S):
    health = starting(None)
    for i, code in enumerate(codes):
        health = record(health, probe((i + 1) * every, code), config, T0)
    return health


def test_a_success_makes_it_healthy_and_resets_the_streak():
    health = run({"Retries": 3}, [1, 1, 0])
    assert (health["Status"], health["FailingStreak"]) == ("healthy", 0)


def test_retries_failures_in_a_row_make_it_unhealthy():
    assert [run({"Retries": 3}, [1] * n)["Status"] for n in (1, 2, 3)] == ["starting", "starting", "unhealthy"]
    health = run({"Retries": 2}, [0, 1, 1, 1])
    assert (health["Status"], health["FailingStreak"]) == ("unhealthy", 3)
    assert run({}, [1, 1, 1])["Status"] == "unhealthy"  # Docker's default: 3


def test_failures_within_the_start_period_do_not_count_until_a_success():
    config = {"StartPeriod": 10 * S, "Retries": 1}
    assert run(config, [1] * 9) == {**run(config, [1] * 9), "Status": "starting", "FailingStreak": 0}
    assert run(config, [1] * 11)["Status"] == "unhealthy"  # the 10th probe starts at the period's end
    # A success ends the start period: a failure right after counts.
    assert run(config, [0, 1])["Status"] == "unhealthy"


def test_the_log_keeps_the_last_five_entries_in_dockers_shape():
    health = starting(None)
    for i in range(7):
        health = record(health, probe(i * S, i, f"out {i}"), {}, T0)
    assert [e["Output"] for e in health["Log"]] == [f"out {i}" for i in range(2, 7)]
    entry = health["Log"][-1]
    assert set(entry) == {"Start", "End", "ExitCode", "Output"} and entry["ExitCode"] == 6
    assert (entry["Start"], entry["End"]) == ("2027-01-15T08:00:06Z", "2027-01-15T08:00:06.01Z")  # RFC3339Nano
    # A restart: starting again, no streak, the log kept.
    again = starting(health)
    assert (again["Status"], again["FailingStreak"], again["Log"]) == ("starting", 0, health["Log"])


def test_the_start_interval_applies_while_starting_within_the_start_period():
    config = {"Interval": 30 * S, "StartPeriod": 60 * S, "StartInterval": 2 * S}
    assert next_interval(config, "starting", T0, T0 + 10 * S) == 2 * S
    assert next_interval(config, "healthy", T0, T0 + 10 * S) == 30 * S
    assert next_interval(config, "starting", T0, T0 + 61 * S) == 30 * S
    assert next_interval({}, "starting", T0, T0) == 30 * S  # no start period: the interval (default 30s)


def _container(name, health, state=State.RUNNING):
    return SimpleNamespace(id=name * 8, name=name, state=state, started_at="2026-12-08T02:00:00.000000000Z",
                           finished_at="0001-01-01T00:00:00Z", exit_code=0, health=health, config={"Labels": {}},
                           host_config={}, image_id="sha256:x")


def test_ps_shows_the_health_after_up():
    assert container_config.status_text(_container("a", starting(None))).endswith(" (health: starting)")
    assert container_config.status_text(_container("b", {**starting(None), "Status": "healthy"})).endswith(
        " (healthy)")
    assert container_config.status_text(_container("c", None)).startswith("Up ")
    assert "(" not in container_config.status_text(_container("c", None))


def test_the_health_filter_matches_the_status_or_none():
    containers = [_container("a", starting(None)), _container("b", {**starting(None), "Status": "unhealthy"}),
                  _container("c", None)]

    def names(value):
        chosen = ContainerFilter({"health": [value]}).select(containers, container_config.state_string)
        return [c.name for c in chosen]

    assert names("starting") == ["a"]
    assert names("unhealthy") == ["b"]
    assert names("none") == ["c"]
    assert names("healthy") == []
