"""The CLI's fast path parses the hot commands exactly as click does, or leaves them to click."""

import pytest

from minictr.cli import fast
from minictr.cli.commands import cli
from minictr.cli.fast_spec import SPEC

# Each argv: what the fast path returns must be what click passes to the command, to the letter.
SAME_AS_CLICK = [
    ["run", "img"],
    ["run", "--rm", "img", "echo", "hi"],
    ["run", "-d", "--name", "web", "-e", "A=1", "-e", "B", "--env=C=3", "-l", "x=y", "img", "sleep", "9"],
    ["run", "-it", "img", "sh"],
    ["run", "-dit", "--restart", "on-failure:3", "--init", "img"],
    ["run", "-eA=1", "-w", "/tmp", "-u", "1000:1000", "-h", "host", "img", "sh", "-c", "exit 3"],
    ["run", "--stop-timeout", "7", "--stop-signal", "USR1", "--log-opt", "max-size=1m", "img"],
    ["run", "--sig-proxy=false", "-i=false", "--rm=true", "img", "--rm=false", "-it"],
    ["run", "--no-sig-proxy", "--entrypoint", "", "img"],
    ["run", "-e=K=V", "--cidfile", "/tmp/cid", "--network", "none", "img", "--", "x"],
    ["run", "img", "--", "-x"],
    ["run", "--", "img", "-x"],
    ["create", "--name", "c1", "img", "true"],
    ["start", "c1", "c2"],
    ["start", "-a", "-i", "c1"],
    ["start", "c1", "-a"],
    ["stop", "-t", "3", "c1", "c2"],
    ["stop", "c1", "--time=0", "-s", "KILL"],
    ["restart", "-t0", "c1"],
    ["kill", "-s", "HUP", "c1"],
    ["kill", "c1"],
    ["rm", "-f", "a", "b", "c"],
    ["rm", "--force", "a"],
    ["exec", "c1", "true"],
    ["exec", "-it", "-e", "X=1", "-w", "/", "-u", "0", "c1", "sh", "-c", "echo $X"],
    ["exec", "-d", "c1", "sleep", "1", "-d"],
    ["exec", "--env-file", "/e", "c1", "--", "ls"],
    ["ps"],
    ["ps", "-a", "-q", "--no-trunc"],
    ["ps", "-n", "3", "-s", "--filter", "status=exited", "-f", "label=a=b", "--format", "{{.ID}}\t{{.Names}}"],
    ["ps", "-aq", "--last=2"],
    ["wait", "c1", "c2"],
]

# Forms the fast path leaves to click (which then explains, helps or refuses).
LEFT_TO_CLICK = [
    [], ["--help"], ["--version"], ["ps", "-n", "x"], ["images"], ["wait"], ["run"], ["run", "--help"], ["run", "--bogus", "img"],
    ["run", "--stop-timeout", "x", "img"], ["rm"], ["rm", "--force=false", "a"], ["stop", "-t"],
    ["exec", "c1"], ["-x", "run", "img"], ["--host"], ["run", "-z", "img"],
]


def _click_params(argv):
    command = cli.get_command(None, argv[0])
    return command.make_context(argv[0], list(argv[1:])).params


@pytest.mark.parametrize("argv", SAME_AS_CLICK, ids=" ".join)
def test_the_fast_path_parses_as_click_does(argv):
    parsed = fast.parse(argv)
    assert parsed is not None, "left to click, though plain"
    command, host, kwargs = parsed
    assert command == argv[0] and host is None
    assert kwargs == _click_params(argv)


@pytest.mark.parametrize("argv", LEFT_TO_CLICK, ids=" ".join)
def test_anything_else_is_left_to_click(argv):
    assert fast.parse(argv) is None


def test_the_global_host_option_and_its_environment_variable(monkeypatch):
    monkeypatch.delenv("MINICTR_HOST", raising=False)
    assert fast.parse(["-H", "unix:///s", "rm", "a"])[1] == "unix:///s"
    assert fast.parse(["--host=unix:///t", "rm", "a"])[1] == "unix:///t"
    monkeypatch.setenv("MINICTR_HOST", "unix:///env")
    assert fast.parse(["rm", "a"])[1] == "unix:///env"


def test_the_spec_is_the_click_commands_own():
    # Regenerate with `python -m minictr.cli.fast --write-spec` after changing a hot command.
    assert fast.generate_spec() == SPEC


def test_the_fast_path_does_not_import_click():
    import subprocess
    import sys

    code = ("import sys\nfrom minictr.cli import fast\nfast.parse(['run', '-d', 'img'])\n"
            "import minictr.cli.actions\nprint('click' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
