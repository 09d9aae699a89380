"""spec/health.py: the --health-* flags, the daemon's check, the merge with the image's
Healthcheck and the HEALTHCHECK instruction, in Docker's words."""

import pytest

from minictr.errors import InvalidArgument
from minictr.spec import health

S = 1_000_000_000


@pytest.mark.parametrize("text,ns", [("30s", 30 * S), ("1m30s", 90 * S), ("1.5s", S * 3 // 2), ("500ms", S // 2),
                                     ("0", 0), ("1h", 3600 * S), ("2us", 2000), (".5s", S // 2), ("-2s", -2 * S),
                                     ("1s500ms", S * 3 // 2)])
def test_go_durations_parse_to_nanoseconds(text, ns):
    assert health.parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "5", "s", "1x", "ten seconds", "1s 2s"])
def test_a_bad_duration_is_one_line_naming_it(text):
    with pytest.raises(InvalidArgument, match=f'time: invalid duration "{text}"'):
        health.parse_duration(text)


@pytest.mark.parametrize("ns,text", [(0, "0s"), (30 * S, "30s"), (S * 3 // 2, "1.5s"), (S // 2, "500ms"),
                                     (90 * S, "1m30s"), (3600 * S, "1h0m0s"), (1000, "1µs"), (1, "1ns")])
def test_durations_print_as_go_prints_them(ns, text):
    assert health.format_duration(ns) == text


def _options(**given):
    options = {"health_cmd": None, "health_interval": None, "health_timeout": None, "health_retries": None,
               "health_start_period": None, "health_start_interval": None, "no_healthcheck": False}
    options.update(given)
    return options


def test_flags_make_the_docker_clis_healthcheck():
    assert health.from_options(_options()) is None
    assert health.from_options(_options(health_cmd="curl -f localhost", health_interval="2s", health_retries=5,
                                        health_start_period="1m")) == {
        "Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 2 * S, "Timeout": 0, "StartPeriod": 60 * S,
        "StartInterval": 0, "Retries": 5}
    # Only a timing flag: the image's command is kept (Test null, as the docker CLI sends it).
    assert health.from_options(_options(health_timeout="3s"))["Test"] is None
    assert health.from_options(_options(no_healthcheck=True)) == {"Test": ["NONE"]}


@pytest.mark.parametrize("given,message", [
    ({"no_healthcheck": True, "health_cmd": "true"}, "--no-healthcheck conflicts with --health-* options"),
    ({"health_interval": "-1s"}, "--health-interval cannot be negative"),
    ({"health_start_interval": "-5ms"}, "--health-start-interval cannot be negative"),
    ({"health_retries": -1}, "--health-retries cannot be negative"),
    ({"health_timeout": "soon"}, 'time: invalid duration "soon"'),
])
def test_bad_flags_are_refused_as_the_docker_cli_does(given, message):
    with pytest.raises(InvalidArgument, match=f"^{message}$".replace("*", r"\*")):
        health.from_options(_options(**given))


@pytest.mark.parametrize("field,value,message", [
    ("Interval", 500_000, "Interval in Healthcheck cannot be less than 1ms"),
    ("Timeout", 1, "Timeout in Healthcheck cannot be less than 1ms"),
    ("StartPeriod", -S, "StartPeriod in Healthcheck cannot be less than 1ms"),
    ("StartInterval", 999_999, "StartInterval in Healthcheck cannot be less than 1ms"),
    ("Retries", -1, "Retries in Healthcheck cannot be negative"),
])
def test_the_daemon_refuses_what_docker_refuses(field, value, message):
    with pytest.raises(InvalidArgument, match=f"^{message}$"):
        health.check({"Test": ["CMD", "true"], field: value})


def test_the_daemon_accepts_zero_and_the_minimum():
    health.check(None)
    health.check({"Test": [], "Interval": 0, "Timeout": 1_000_000, "Retries": 0})
    health.check({"Test": ["NONE"]})
    with pytest.raises(InvalidArgument, match="unknown healthcheck type 'HTTP'"):
        health.check({"Test": ["HTTP", "/"]})


def test_the_container_overrides_the_image_field_by_field():
    image = {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 10 * S, "Retries": 2}
    assert health.merge(None, image) == image
    # Zero fields are left out, as Docker's JSON (omitempty) shows them.
    assert health.merge({"Test": None, "Interval": 1 * S, "Timeout": 0, "Retries": 0}, image) == {
        "Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 1 * S, "Retries": 2}
    assert health.merge({"Test": ["NONE"]}, image)["Test"] == ["NONE"]
    assert health.merge({"Test": ["CMD", "true"]}, None) == {"Test": ["CMD", "true"]}
    assert health.merge(None, None) is None


def test_probe_commands_and_defaults():
    assert health.probe_command({"Test": ["CMD-SHELL", "exit 1"]}) == ["/bin/sh", "-c", "exit 1"]
    assert health.probe_command({"Test": ["CMD", "/bin/true", "x"]}) == ["/bin/true", "x"]
    assert health.probe_command({"Test": ["CMD-SHELL", "x"]}, ["/bin/bash", "-ec"]) == ["/bin/bash", "-ec", "x"]
    assert health.probe_command({"Test": ["NONE"]}) is None
    assert health.probe_command({"Test": []}) is None
    assert health.settings({"Test": ["CMD", "true"]}) == (30 * S, 30 * S, 0, 5 * S, 3)
    assert health.settings({"Interval": S, "Timeout": 2 * S, "StartPeriod": 3 * S, "StartInterval": 4 * S,
                            "Retries": 7}) == (S, 2 * S, 3 * S, 4 * S, 7)


def test_the_healthcheck_instruction():
    assert health.parse_instruction("--interval=5s --retries=2 CMD wget -q localhost || exit 1") == {
        "Test": ["CMD-SHELL", "wget -q localhost || exit 1"], "Interval": 5 * S, "Retries": 2}
    assert health.parse_instruction('CMD ["/bin/true"]')["Test"] == ["CMD", "/bin/true"]
    assert health.parse_instruction("none") == {"Test": ["NONE"]}


@pytest.mark.parametrize("argument,message", [
    ("NONE now", "HEALTHCHECK NONE takes no arguments"),
    ("RUN true", r'Unknown type "RUN" in HEALTHCHECK \(try CMD\)'),
    ("CMD", "Missing command after HEALTHCHECK CMD"),
    ("--retries=0 CMD true", r"--retries must be at least 1 \(not 0\)"),
    ("--interval=1us CMD true", 'Interval "interval" cannot be less than 1ms'),
    ("--every=1s CMD true", "HEALTHCHECK: unknown flag: --every=1s"),
])
def test_a_bad_healthcheck_instruction_is_one_line(argument, message):
    with pytest.raises(InvalidArgument, match=message):
        health.parse_instruction(argument)
