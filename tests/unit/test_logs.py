"""Reading json-file logs back (runtime/minictr/containers/logs.py) on crafted files."""

import asyncio
import json
import os

import pytest

from minictr.containers.logs import (LogReader, LogSettings, LogsQuery, _encode, log_settings, monitor_entries,
                                     parse_size, parse_time, rotated_paths)
from minictr.errors import InvalidArgument
from minictr.spec.times import rfc3339

T0 = 1_700_000_000 * 10**9  # 2023-11-14T22:13:20Z


def line(text, stream="stdout", ns=T0):
    seconds, frac = divmod(ns, 10**9)
    stamp = rfc3339(ns).replace(f".{frac:09d}", f".{frac:09d}".rstrip("0").rstrip("."))
    return json.dumps({"log": text, "stream": stream, "time": stamp}) + "\n"


def write_log(path, texts, start=T0, step=10**9):
    with open(path, "a") as f:
        for i, text in enumerate(texts):
            f.write(line(text, "stderr" if text.startswith("err") else "stdout", start + i * step))


def read_all(path, tail=-1):
    with LogReader(str(path), tail) as reader:
        entries = []
        while batch := reader.read(limit=100):  # small batches: every step of the loop is used
            entries += batch
        return entries


def texts(entries):
    return [e.data.decode() for e in entries]


def query(**kw):
    return LogsQuery(**kw)


# ---- times --------------------------------------------------------------------------------


def test_parse_time_reads_go_rfc3339nano_and_offsets():
    assert parse_time("2023-11-14T22:13:20Z") == T0
    assert parse_time("2023-11-14T22:13:20.5Z") == T0 + 500_000_000
    assert parse_time("2023-11-14T22:13:20.000000001Z") == T0 + 1
    assert parse_time("2023-11-14T23:13:20+01:00") == T0


def test_timestamps_are_rfc3339nano_fixed_as_docker_prints_them():
    assert rfc3339(T0 + 5_000) == "2023-11-14T22:13:20.000005000Z"


# ---- the reader ---------------------------------------------------------------------------


def test_reads_every_entry_with_stream_and_time(tmp_path):
    log = tmp_path / "c-json.log"
    write_log(log, ["a\n", "err b\n", "c"])
    entries = read_all(log)
    assert [(e.stream, e.data, e.time_ns) for e in entries] == [
        ("stdout", b"a\n", T0), ("stderr", b"err b\n", T0 + 10**9), ("stdout", b"c", T0 + 2 * 10**9)]


def test_a_missing_log_reads_as_empty(tmp_path):
    assert read_all(tmp_path / "none.log") == []


def test_a_line_still_being_written_waits_for_its_newline(tmp_path):
    log = tmp_path / "c-json.log"
    write_log(log, ["a\n"])
    whole = line("b\n", ns=T0 + 1)
    with open(log, "a") as f:
        f.write(whole[:10])
    with LogReader(str(log)) as reader:
        assert texts(reader.read()) == ["a\n"]
        with open(log, "a") as f:
            f.write(whole[10:])
        assert texts(reader.read()) == ["b\n"]


def test_non_ascii_and_escapes_come_back_as_bytes(tmp_path):
    log = tmp_path / "c-json.log"
    log.write_text('{"log":"\\u003cé\\u0000\\ufffd\\n","stream":"stdout","time":"2023-11-14T22:13:20Z"}\n')
    assert read_all(log)[0].data == "<é\0\ufffd\n".encode()


def test_rotated_set_is_read_oldest_first(tmp_path):
    log = tmp_path / "c-json.log"
    write_log(f"{log}.2", ["1\n", "2\n"])
    write_log(f"{log}.1", ["3\n"])
    write_log(log, ["4\n", "5\n"])
    assert texts(read_all(log)) == ["1\n", "2\n", "3\n", "4\n", "5\n"]


@pytest.mark.parametrize("n, expected", [(0, []), (1, ["5\n"]), (2, ["4\n", "5\n"]), (3, ["3\n", "4\n", "5\n"]),
                                         (4, ["2\n", "3\n", "4\n", "5\n"]), (99, ["1\n", "2\n", "3\n", "4\n", "5\n"])])
def test_tail_counts_lines_over_rotated_files(tmp_path, n, expected):
    log = tmp_path / "c-json.log"
    write_log(f"{log}.2", ["1\n", "2\n"])
    write_log(f"{log}.1", ["3\n"])
    write_log(log, ["4\n", "5\n"])
    assert texts(read_all(log, tail=n)) == expected


def test_tail_of_a_big_file_reads_back_across_blocks(tmp_path):
    log = tmp_path / "c-json.log"
    write_log(log, [f"{i}\n" for i in range(5000)])
    assert texts(read_all(log, tail=3)) == ["4997\n", "4998\n", "4999\n"]
    assert len(read_all(log, tail=4321)) == 4321


def test_tail_ignores_a_line_still_being_written(tmp_path):
    log = tmp_path / "c-json.log"
    write_log(log, ["a\n", "b\n"])
    with open(log, "a") as f:
        f.write(line("c\n")[:15])
    assert texts(read_all(log, tail=1)) == ["b\n"]


def test_a_follower_goes_on_across_a_rotation(tmp_path):
    log = tmp_path / "c-json.log"
    write_log(log, ["1\n"])
    with LogReader(str(log)) as reader:
        assert texts(reader.read()) == ["1\n"]
        write_log(log, ["2\n"])  # written before the rotation, not read yet
        os.rename(log, f"{log}.1")
        write_log(log, ["3\n"])
        assert texts(reader.read()) == ["2\n", "3\n"]


def test_a_follower_finds_its_way_through_two_rotations_between_reads(tmp_path):
    log = tmp_path / "c-json.log"
    write_log(log, ["1\n"])
    with LogReader(str(log)) as reader:
        assert texts(reader.read()) == ["1\n"]
        os.rename(log, f"{log}.1")
        write_log(log, ["2\n"])
        os.rename(f"{log}.1", f"{log}.2")
        os.rename(log, f"{log}.1")
        write_log(log, ["3\n"])
        assert texts(reader.read()) == ["2\n", "3\n"]


def test_a_follower_starts_again_after_truncation(tmp_path):
    log = tmp_path / "c-json.log"
    write_log(log, ["1\n", "2\n"])
    with LogReader(str(log)) as reader:
        assert texts(reader.read()) == ["1\n", "2\n"]
        os.truncate(log, 0)
        write_log(log, ["3\n"])
        assert texts(reader.read()) == ["3\n"]


# ---- filtering and framing ----------------------------------------------------------------


def entries_of(tmp_path):
    log = tmp_path / "c-json.log"
    log.unlink(missing_ok=True)
    write_log(log, ["out 1\n", "err 2\n", "out 3\n", "partial"])
    return read_all(log)


def frames(data):
    out = []
    while data:
        out.append((data[0], data[8:8 + int.from_bytes(data[4:8], "big")]))
        data = data[8 + len(out[-1][1]):]
    return out


def test_without_tty_entries_are_docker_frames_per_stream(tmp_path):
    data, _ = _encode(entries_of(tmp_path), query(), tty=False)
    assert frames(data) == [(1, b"out 1\n"), (2, b"err 2\n"), (1, b"out 3\n"), (1, b"partial")]


def test_with_tty_the_bytes_are_raw(tmp_path):
    data, _ = _encode(entries_of(tmp_path), query(), tty=True)
    assert data == b"out 1\nerr 2\nout 3\npartial"


def test_stdout_and_stderr_filter(tmp_path):
    data, _ = _encode(entries_of(tmp_path), query(stdout=False), tty=False)
    assert frames(data) == [(2, b"err 2\n")]
    data, _ = _encode(entries_of(tmp_path), query(stderr=False), tty=False)
    assert [f[0] for f in frames(data)] == [1, 1, 1]


def test_since_and_until_bound_by_entry_time(tmp_path):
    data, past = _encode(entries_of(tmp_path), query(since_ns=T0 + 10**9, until_ns=T0 + 2 * 10**9), tty=True)
    assert (data, past) == (b"err 2\nout 3\n", True)
    data, past = _encode(entries_of(tmp_path), query(since_ns=T0 + 1), tty=True)
    assert (data, past) == (b"err 2\nout 3\npartial", False)


def test_timestamps_and_details_prefix_each_line(tmp_path):
    data, _ = _encode(entries_of(tmp_path)[:2], query(timestamps=True, details=True), tty=True)
    assert data == (b"2023-11-14T22:13:20.000000000Z  out 1\n"
                    b"2023-11-14T22:13:21.000000000Z  err 2\n")


def test_follow_ends_when_the_container_stops_and_drains_the_rest(tmp_path):
    from minictr.containers.logs import _stream

    log = tmp_path / "c-json.log"
    write_log(log, ["1\n"])

    class Service:
        stopped = None

        async def wait(self, ref, condition):
            await self.stopped.wait()

    async def scenario():
        service = Service()
        service.stopped = asyncio.Event()
        chunks = []

        async def collect():
            async for chunk in _stream(service, "c", str(log), query(follow=True), tty=True, follow=True):
                chunks.append(chunk)

        task = asyncio.ensure_future(collect())
        await asyncio.sleep(0.2)
        write_log(log, ["2\n"])
        await asyncio.sleep(0.2)
        assert b"".join(chunks) == b"1\n2\n" and not task.done()
        write_log(log, ["3\n"])  # the container's last words, just before it ends
        service.stopped.set()
        await asyncio.wait_for(task, 5)
        return b"".join(chunks)

    assert asyncio.run(scenario()) == b"1\n2\n3\n"


# ---- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("text, size", [("10", 10), ("10b", 10), ("10k", 10_000), ("10K", 10_000), ("1.5m", 1_500_000),
                                        ("10MB", 10_000_000), ("2g", 2 * 10**9), ("20KiB", 20_000)])
def test_sizes_parse_as_docker_max_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "m", "10x", "10mbb", "-1m", "ten"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(InvalidArgument):
        parse_size(text)


def test_log_config_defaults_and_options():
    assert log_settings({}) == LogSettings("json-file", 0, 1)
    assert log_settings({"LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}}) == \
        LogSettings("json-file", 10_000_000, 3)
    assert log_settings({"LogConfig": {"Type": "none", "Config": {}}}).driver == "none"


@pytest.mark.parametrize("log_config, message", [
    ({"Type": "syslog"}, 'logging driver "syslog" is not supported'),
    ({"Type": "json-file", "Config": {"max-sizes": "1m"}}, "unknown log opt 'max-sizes' for json-file log driver"),
    ({"Type": "json-file", "Config": {"compress": "true"}}, "'compress' of the json-file log driver is not supported"),
    ({"Type": "json-file", "Config": {"max-file": "0"}}, "max-file cannot be less than 1"),
    ({"Type": "json-file", "Config": {"max-file": "x"}}, "max-file"),
    ({"Type": "json-file", "Config": {"max-size": "0"}}, "max-size must be a positive number"),
])
def test_log_config_refusals_say_what_is_wrong(log_config, message):
    with pytest.raises(InvalidArgument, match=message):
        log_settings({"LogConfig": log_config})


def test_monitor_entries_for_rotation_and_none():
    assert monitor_entries(LogSettings("json-file"), "/l") == [("log", "/l")]
    assert monitor_entries(LogSettings("json-file", 1000, 3), "/l") == [
        ("log", "/l"), ("log_max_size", 1000), ("log_max_file", 3)]
    assert monitor_entries(LogSettings("none"), "/l") == [("log", os.devnull)]


# ---- the CLI's --since/--until ------------------------------------------------------------


def test_rotated_paths_are_listed_across_a_gap_left_mid_rotation(tmp_path):
    # The monitor renames .2 -> .3 before .1 -> .2: for a moment there is no .2.
    log = tmp_path / "c-json.log"
    for name in ("c-json.log", "c-json.log.1", "c-json.log.3", "c-json.log.x", "c-json.log.10"):
        (tmp_path / name).write_text("")
    assert rotated_paths(str(log)) == [f"{log}.10", f"{log}.3", f"{log}.1", str(log)]
