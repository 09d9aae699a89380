"""The monitor rotates the json-file log itself (log_max_size, log_max_file; docs/internals.md)."""

import json
from pathlib import Path

LINES = 300
SCRIPT = f"for i in $(seq 1 {LINES}); do echo line-$i; done"


def log_lines(path: Path) -> list[str]:
    return [json.loads(line)["log"] for line in path.read_text().splitlines()]


def rotated(c, max_size, max_file, script=SCRIPT):
    return c.run(["sh", "-c", script],
                 extra=(("log_max_size", str(max_size)), ("log_max_file", str(max_file))))


def test_rotation_keeps_max_file_files_each_within_max_size(containers):
    c = rotated(containers, 1000, 3)
    assert c.exit_code == 0
    log = c.log_path
    assert sorted(p.name for p in log.parent.glob("ctr-json.log*")) == \
        ["ctr-json.log", "ctr-json.log.1", "ctr-json.log.2"]
    for path in (log, Path(f"{log}.1"), Path(f"{log}.2")):
        assert 0 < path.stat().st_size <= 1000
    # Oldest first, the kept files hold an unbroken run of lines ending with the last one:
    # rotation drops whole old files, never lines in between.
    kept = log_lines(Path(f"{log}.2")) + log_lines(Path(f"{log}.1")) + log_lines(log)
    first = int(kept[0].strip().split("-")[1])
    assert first > 1
    assert kept == [f"line-{i}\n" for i in range(first, LINES + 1)]


def test_every_line_is_kept_while_under_max_file(containers):
    c = rotated(containers, 1000, 100)
    log = c.log_path
    files = sorted(log.parent.glob("ctr-json.log.*"), key=lambda p: -int(p.suffix[1:])) + [log]
    assert len(files) > 5
    assert [line for f in files for line in log_lines(f)] == [f"line-{i}\n" for i in range(1, LINES + 1)]


def test_max_file_1_truncates_in_place(containers):
    c = rotated(containers, 1000, 1)
    log = c.log_path
    assert [p.name for p in log.parent.glob("ctr-json.log*")] == ["ctr-json.log"]
    assert 0 < log.stat().st_size <= 1000
    kept = log_lines(log)
    first = int(kept[0].strip().split("-")[1])
    assert kept == [f"line-{i}\n" for i in range(first, LINES + 1)]


def test_without_max_size_nothing_rotates(containers):
    c = containers.run(["sh", "-c", SCRIPT], extra=(("log_max_file", "3"),))
    assert [p.name for p in c.log_path.parent.glob("ctr-json.log*")] == ["ctr-json.log"]
    assert log_lines(c.log_path) == [f"line-{i}\n" for i in range(1, LINES + 1)]


def test_a_line_longer_than_max_size_gets_a_file_of_its_own(containers):
    c = rotated(containers, 200, 3, script="echo short; head -c 500 /dev/zero | tr '\\0' x; echo; echo after")
    log = c.log_path
    assert log_lines(Path(f"{log}.2")) == ["short\n"]
    assert log_lines(Path(f"{log}.1")) == ["x" * 500 + "\n"]
    assert log_lines(log) == ["after\n"]


def test_an_existing_log_counts_toward_max_size(containers):
    # A restarted container appends to its log: what is there already counts.
    old = '{"log":"old\\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}\n' * 4  # 264 bytes

    def prepare(upper):
        (upper.parent / "run" / "ctr-json.log").write_text(old)

    c = containers.run(["echo", "new"], prepare_upper=prepare,
                       extra=(("log_max_size", "300"), ("log_max_file", "2")))
    assert Path(f"{c.log_path}.1").read_text() == old
    assert log_lines(c.log_path) == ["new\n"]


def test_log_max_file_0_is_refused_naming_the_key(containers):
    c = containers.create(["true"], extra=(("log_max_file", "0"),))
    assert c.created.startswith("error 22 ") and "log_max_file" in c.created
