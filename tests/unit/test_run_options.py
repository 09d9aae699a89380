"""The run/create options: Docker's `--flag=false` forms, env and label files."""

import pytest

from minictr.cli.bodies import create_body
from minictr.cli.containers import run
from minictr.cli.run_options import docker_bools
from minictr.errors import InvalidArgument


@pytest.mark.parametrize("args, expected", [
    (["--sig-proxy=false", "img"], ["--no-sig-proxy", "img"]),
    (["--sig-proxy=true", "img"], ["--sig-proxy", "img"]),
    (["-i=false", "-t=1", "img"], ["-t", "img"]),
    (["--init=true", "--rm=false", "img"], ["--init", "img"]),
    (["-e=A=b", "--env=C=d", "img"], ["-e", "A=b", "--env", "C=d", "img"]),
    # A value is never taken for a flag, and nothing after the image is touched.
    (["--name", "--rm=false", "img"], ["--name", "--rm=false", "img"]),
    (["img", "sh", "--rm=false", "-i=false"], ["img", "sh", "--rm=false", "-i=false"]),
    (["--", "-i=false"], ["--", "-i=false"]),
])
def test_docker_boolean_and_equals_forms_become_clicks(args, expected):
    assert docker_bools(run, args, interspersed=False) == expected


def _options(**overrides):
    options = {name: None for name in ("name", "workdir", "user", "hostname", "entrypoint", "stop_signal",
                                       "stop_timeout", "cidfile", "detach_keys")}
    options.update(detach=False, interactive=False, tty=False, env=(), env_file=(), label=(), label_file=(),
                   auto_remove=False, restart="no", init=False, log_driver="json-file", log_opt=(),
                   network="default", image="img", command=(), sig_proxy=True)
    options.update(overrides)
    return options


def test_env_file_then_flags_and_labels_from_files(tmp_path, monkeypatch):
    monkeypatch.setenv("FROM_HOST", "h")
    (tmp_path / "env").write_text("# a comment\n\nA=1\nFROM_HOST\nB=2\n")
    (tmp_path / "labels").write_text("x=1\nbare\n")
    body = create_body(_options(env_file=(str(tmp_path / "env"),), env=("B=3",),
                                label_file=(str(tmp_path / "labels"),), label=("y=2",)))
    assert body["Env"] == ["A=1", "FROM_HOST=h", "B=2", "B=3"]
    assert body["Labels"] == {"x": "1", "bare": "", "y": "2"}


def test_detached_runs_attach_nothing_and_restart_conflicts_with_rm():
    body = create_body(_options(detach=True, interactive=True))
    assert not body["AttachStdin"] and not body["AttachStdout"] and body["OpenStdin"]
    with pytest.raises(InvalidArgument, match="Conflicting options"):
        create_body(_options(auto_remove=True, restart="always"))
