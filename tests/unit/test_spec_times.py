"""spec/times.py: RFC 3339 stamps, the API's unix times, the docker CLI's --since/--until, durations."""

import time

import pytest

from minictr.errors import InvalidArgument
from minictr.spec.times import human_duration, parse_timestamp, parse_unix_ns, rfc3339, rfc3339_to_unix

T0 = 1_700_000_000 * 10**9  # 2023-11-14T22:13:20Z


def test_rfc3339_is_gos_fixed_nano_form_in_utc():
    assert rfc3339(T0 + 5_000) == "2023-11-14T22:13:20.000005000Z"
    assert rfc3339_to_unix(rfc3339(T0 + 5_000)) == T0 // 10**9


def test_rfc3339_trimmed_is_gos_nano_form():
    assert rfc3339(T0 + 500_000_000, trimmed=True) == "2023-11-14T22:13:20.5Z"
    assert rfc3339(T0, trimmed=True) == "2023-11-14T22:13:20Z"


def test_rfc3339_local_names_the_zone(monkeypatch):
    monkeypatch.setenv("TZ", "CET-1")
    time.tzset()
    try:
        assert rfc3339(T0, local=True) == "2023-11-14T23:13:20.000000000+01:00"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_api_times_are_seconds_and_nanoseconds():
    assert parse_unix_ns("1700000000", "since") == T0
    assert parse_unix_ns("1700000000.5", "since") == T0 + 500_000_000
    assert parse_unix_ns("", "since") is None
    with pytest.raises(InvalidArgument, match="invalid value for until"):
        parse_unix_ns("yesterday", "until")


def test_human_durations_are_dockers_words():
    assert [human_duration(s) for s in (0.5, 1, 59, 60, 3599, 3600, 86400 * 3)] == [
        "Less than a second", "1 second", "59 seconds", "About a minute", "59 minutes", "About an hour", "3 days"]


def test_cli_times_become_unix_timestamps_as_the_docker_cli_sends_them():
    now = 1_700_000_000.7
    assert parse_timestamp("10m", now) == "1699999400"
    assert parse_timestamp("1h30m", now) == str(1_700_000_000 - 5400)
    assert parse_timestamp("1700000000.5", now) == "1700000000.5"
    assert parse_timestamp("2023-11-14T22:13:20Z", now) == "1700000000.000000000"
    assert parse_timestamp("2023-11-14T22:13:20.25Z", now) == "1700000000.250000000"
    assert parse_timestamp("2023-11-14T23:13:20+01:00", now) == "1700000000.000000000"
    assert parse_timestamp("2023-11-14Z", now) == "1699920000.000000000"


def test_cli_local_times_use_the_local_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert parse_timestamp("2023-11-14T22:13:20", 0) == "1700000000.000000000"
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("bad", ["yesterday", "2023-13-45T", "10 minutes"])
def test_cli_bad_times_are_one_clear_error(bad):
    with pytest.raises(InvalidArgument, match="failed to parse value as time or duration"):
        parse_timestamp(bad, 0)


def test_until_filter_takes_one_value_as_the_docker_cli_sends_since_and_until():
    from minictr.spec.times import until_filter

    assert until_filter(None, 1_700_000_000) is None
    assert until_filter(["10m"], 1_700_000_000) == 1_699_999_400.0
    assert until_filter(["2023-11-14T22:13:20Z"], 0) == 1_700_000_000.0
    with pytest.raises(InvalidArgument, match="more than one until filter specified"):
        until_filter(["1h", "2h"], 0)
    with pytest.raises(InvalidArgument, match="failed to parse value as time or duration"):
        until_filter(["yesterday"], 0)
