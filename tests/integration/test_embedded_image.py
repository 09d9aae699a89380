"""busybox-local, the embedded default image: every daemon (root's, each user's) imports it from the
shared archive scripts/install builds, the first time a run, create or pull asks for it. Root and
rootless: each daemon here starts on an empty data root."""

import json
import shutil
import subprocess

import pytest

from tests.integration.conftest import Daemon


@pytest.fixture
def fresh_daemon(tmp_path_factory, monkeypatch):
    """Start a daemon on an empty data root with MINICTR_EMBEDDED_IMAGE set as the test says."""
    started = []

    def start(archive):
        monkeypatch.setenv("MINICTR_EMBEDDED_IMAGE", str(archive))
        top = tmp_path_factory.mktemp("embedded")
        top.chmod(0o755)
        daemon = Daemon(top)
        started.append(daemon)
        daemon.start()
        return daemon

    yield start
    for daemon in started:
        daemon.teardown()
        shutil.rmtree(daemon.top, ignore_errors=True)


def test_an_empty_store_runs_busybox_local_from_the_shared_archive(fresh_daemon, busybox_tar):
    daemon = fresh_daemon(busybox_tar)
    assert daemon.ok("images", "-q") == ""
    # The conftest lets daemons reach loopback registries only: had the daemon (or the CLI, after a
    # 404) gone to docker.io for busybox-local, the run would fail. No "Unable to find image" either.
    result = daemon.cli("run", "--rm", "busybox-local", "echo", "hi")
    assert (result.returncode, result.stdout, result.stderr) == (0, "hi\n", "")
    assert daemon.ok("inspect", "--type", "image", "-f", "{{json .RepoTags}}", "busybox-local") == '["busybox-local:latest"]\n'
    assert json.loads(daemon.ok("inspect", "--type", "image", "-f", "{{json .Config.Cmd}}", "busybox-local")) == ["sh"]
    assert "Status: Image is up to date for busybox-local:latest" in daemon.ok("pull", "busybox-local")


def test_a_pull_of_busybox_local_imports_it_and_other_names_are_left_alone(fresh_daemon, busybox_tar):
    daemon = fresh_daemon(busybox_tar)
    missing = daemon.cli("image", "inspect", "busybox-local")  # only run, create and pull import it
    assert missing.returncode == 1 and "No such image: busybox-local" in missing.stderr
    other = daemon.cli("create", "--pull", "never", "busybox-other")
    assert other.returncode == 125 and "No such image: busybox-other" in other.stderr
    assert daemon.ok("images", "-q") == ""
    pulled = daemon.ok("pull", "busybox-local")
    assert "Status: Downloaded newer image for busybox-local:latest" in pulled
    assert daemon.ok("run", "--rm", "busybox-local", "sh", "-c", "echo $0") == "sh\n"


def test_the_docker_cli_runs_busybox_local_on_an_empty_store(fresh_daemon, busybox_tar):
    daemon = fresh_daemon(busybox_tar)
    docker = shutil.which("docker")
    assert docker, "no docker CLI on the PATH"
    result = subprocess.run([docker, "-H", daemon.host, "run", "--rm", "busybox-local", "echo", "hi"],
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr


def test_a_missing_archive_is_one_clear_line_and_leaves_nothing(fresh_daemon, tmp_path):
    archive = tmp_path / "no-such-busybox-local.tar"
    daemon = fresh_daemon(archive)
    result = daemon.cli("run", "--rm", "busybox-local", "true")
    assert result.returncode == 125 and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"the embedded default image's archive {archive} is missing" in result.stderr
    assert "Traceback" not in result.stderr and "Unable to find image" not in result.stderr
    assert daemon.ok("ps", "-a", "-q") == "" and daemon.ok("images", "-q") == ""
