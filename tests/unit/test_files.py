"""Pieces of cp and top that need no kernel: path forms, Go file modes, ps parsing, cp arguments."""

import stat

import pytest

from minictr.cli.files import _split_cp_arg
from minictr.containers.files import _absolute, go_file_mode, parse_ps
from minictr.errors import MinictrError


@pytest.mark.parametrize("path, expected", [
    ("etc/passwd", "/etc/passwd"), ("/etc/", "/etc/"), ("/etc/.", "/etc/."), ("etc/./", "/etc/"),
    ("/../../etc", "/etc"), ("//etc//x", "/etc/x"), (".", "/."), ("/", "/"),
])
def test_paths_keep_what_asserts_a_directory(path, expected):
    assert _absolute(path) == expected


def test_go_file_modes_as_the_docker_cli_reads_them():
    assert go_file_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert go_file_mode(stat.S_IFREG | stat.S_ISUID | 0o755) == (1 << 23) | 0o755
    assert go_file_mode(stat.S_IFREG | 0o644) == 0o644


PS = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init splash
root         200       1  0 10:01 ?        00:00:00 sleep 1000
root         300       1  0 10:01 ?        00:00:00 sh -c echo  two  spaces
"""


def test_ps_rows_of_the_container_keep_their_command_whole():
    result = parse_ps(PS, {200, 300})
    assert result["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert [row[1] for row in result["Processes"]] == ["200", "300"]
    assert result["Processes"][1][-1] == "sh -c echo two spaces"


def test_ps_without_a_pid_column_is_an_error():
    with pytest.raises(MinictrError, match="Couldn't find PID field"):
        parse_ps("USER COMMAND\nroot init\n", {1})


@pytest.mark.parametrize("arg, expected", [
    ("c1:/etc/passwd", ("c1", "/etc/passwd")), ("/tmp/a:b", (None, "/tmp/a:b")),
    ("./c1:x", (None, "./c1:x")), ("file", (None, "file")), ("-", (None, "-")), (":x", (None, ":x")),
])
def test_cp_arguments_name_a_container_or_a_local_path(arg, expected):
    assert _split_cp_arg(arg) == expected
