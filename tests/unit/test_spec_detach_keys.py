"""Docker's detach keys: their syntax and the matcher the daemon runs over a tty's input."""

import pytest

from minictr.errors import InvalidArgument
from minictr.spec.detach_keys import Matcher, parse


def test_default_and_custom_sequences_parse_as_docker_reads_them():
    assert parse("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse("ctrl-x,x") == b"\x18x"
    assert parse("ctrl-@,ctrl-_,CTRL-A") == b"\x00\x1f\x01"


@pytest.mark.parametrize("bad", ["ctrl-", "ctrl-1", "", "xy", "ctrl-p,,ctrl-q"])
def test_unknown_keys_are_invalid_argument(bad):
    with pytest.raises(InvalidArgument, match="Invalid detach keys"):
        parse(bad)


def test_the_sequence_is_found_across_reads_and_never_passed_on():
    m = Matcher(b"\x10\x11")
    assert m.feed(b"ls\x10") == (b"ls", False)
    assert m.feed(b"\x11after") == (b"", True)


def test_a_broken_sequence_passes_its_bytes_on_in_order():
    m = Matcher(b"\x10\x11")
    assert m.feed(b"\x10a") == (b"\x10a", False)
    assert m.feed(b"\x10\x10\x11") == (b"\x10", True)


def test_no_keys_pass_everything():
    assert Matcher(b"").feed(b"\x10\x11") == (b"\x10\x11", False)
