"""The real docker CLI, which nobody here wrote, drives minictr's socket."""

import shutil
import subprocess

import pytest

from tests.integration.dockercli import PATH as DOCKER_PATH


def docker(daemon, *args, input=None):
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on the PATH")
    return subprocess.run(["docker", "-H", daemon.host, *args], capture_output=True, text=True,
                          timeout=60, input=input, env={"PATH": DOCKER_PATH, "HOME": str(daemon.top)})


def test_docker_run_rm_echo(daemon, image):
    result = docker(daemon, "run", "--rm", image, "echo", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\n"


def test_docker_run_passes_the_exit_code_and_stderr(daemon, image):
    result = docker(daemon, "run", "--rm", image, "sh", "-c", "echo oops >&2; exit 3")
    assert result.returncode == 3
    assert result.stderr == "oops\n"


def test_docker_run_interactive_stdin(daemon, image):
    result = docker(daemon, "run", "--rm", "-i", image, "cat", input="piped\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "piped\n"


def test_docker_ps_images_and_rm(daemon, image):
    assert docker(daemon, "run", "--name", "by-docker", image, "true").returncode == 0
    assert "by-docker" in docker(daemon, "ps", "-a").stdout
    assert image in docker(daemon, "images").stdout
    assert docker(daemon, "rm", "by-docker").returncode == 0
    assert "by-docker" not in docker(daemon, "ps", "-a").stdout


def test_docker_version_negotiates(daemon):
    result = docker(daemon, "version", "--format", "{{.Server.APIVersion}}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.43"
