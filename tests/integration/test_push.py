"""push: layers, config and manifest to a real registry on loopback, as `docker push` does."""

import json

import pytest

from tests.integration.dockercli import PATH as DOCKER_PATH
from tests.integration.registry import (  # noqa: F401 - fixtures
    auth_registry, busybox_layer, push_archive, registry, registry_manifest, registry_request,
)


def _image(daemon, ref):
    return json.loads(daemon.ok("image", "inspect", ref))[0]


def _one_line_error(result):
    lines = result.stderr.strip().splitlines()
    return result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def pulled(daemon, registry, busybox_layer, tmp_path_factory):
    """busybox and a layer of its own pulled from the registry (so that the store keeps the blob that
    layer was pulled as, and knows where it came from)."""
    from tests.integration.registry import docker_archive, layer_tar

    archive = docker_archive(tmp_path_factory.mktemp("push-src") / "src.tar",
                             [busybox_layer, layer_tar({"push-src-marker": "from the registry\n"})])
    push_archive(registry, archive, "push-src/busybox:1")
    ref = registry.ref("push-src/busybox:1")
    daemon.ok("pull", ref)
    yield ref
    daemon.cli("rmi", "-f", ref)


def test_push_of_a_committed_image_then_pull_on_a_clean_root_gives_the_same_digests(daemon, registry, pulled,
                                                                                   clean_daemon):
    # A 20 MB layer of random bytes: more than one upload chunk (PATCH … PUT).
    daemon.ok("run", "--name", "push-commit", pulled, "sh", "-c",
              "head -c 20000000 /dev/urandom > /random && echo pushed > /hello && rm /bin/ls")
    target = registry.ref("pushed/committed:v1")
    daemon.ok("commit", "--change", 'CMD ["cat", "/hello"]', "push-commit", target)
    daemon.ok("rm", "push-commit")
    out = daemon.ok("push", target)
    lines = out.splitlines()
    assert lines[0] == f"The push refers to repository [{target.rsplit(':', 1)[0]}]"
    assert any(line.endswith(": Pushed") for line in lines)
    assert any(line.endswith(": Mounted from push-src/busybox") for line in lines), out
    body, media_type, digest = registry_manifest(registry, "pushed/committed", "v1")
    assert media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert lines[-1].startswith(f"v1: digest: {digest} size: {len(body)}")
    local = _image(daemon, target)
    assert f"{target.rsplit(':', 1)[0]}@{digest}" in local["RepoDigests"]
    manifest = json.loads(body)
    assert manifest["config"]["digest"] == local["Id"]

    clean_daemon.ok("pull", target)
    remote = _image(clean_daemon, target)
    assert remote["Id"] == local["Id"] and remote["RootFS"]["Layers"] == local["RootFS"]["Layers"]
    assert f"{target.rsplit(':', 1)[0]}@{digest}" in remote["RepoDigests"]
    assert clean_daemon.ok("run", "--rm", target) == "pushed\n"
    assert clean_daemon.cli("run", "--rm", target, "test", "-e", "/bin/ls").returncode == 1

    again = daemon.ok("push", target)
    assert sum(line.endswith(": Layer already exists") for line in again.splitlines()) == 3
    assert again.splitlines()[-1].startswith(f"v1: digest: {digest}")
    daemon.ok("rmi", target)


def test_push_quiet_and_errors(daemon, registry, pulled):
    target = registry.ref("pushed/quiet:latest")
    daemon.ok("tag", pulled, target)
    try:
        assert daemon.ok("push", "-q", target) == f"{target}\n"
    finally:
        daemon.ok("rmi", target)
    missing = daemon.cli("push", registry.ref("pushed/never:1"))
    assert _one_line_error(missing) and "An image does not exist locally with the tag" in missing.stderr
    status, _, _ = registry_request(registry, "GET", "/v2/pushed/never/manifests/1")
    assert status == 404


def test_push_to_a_token_auth_registry_with_credentials(daemon, auth_registry, pulled, tmp_path):
    target = auth_registry.ref("private/pushed:1")
    daemon.ok("tag", pulled, target)
    try:
        refused = daemon.cli("push", target, env=_env(tmp_path / "anonymous"))
        assert _one_line_error(refused) and "unauthorized" in refused.stderr.lower()
        home = tmp_path / "with-login"
        daemon.ok("login", "-u", auth_registry.username, "--password-stdin", auth_registry.host,
                  input=auth_registry.password + "\n", env=_env(home))
        out = daemon.ok("push", target, env=_env(home))
        assert out.splitlines()[-1].startswith("1: digest: sha256:")
        # With the Accept of both manifest types: the store may know the layers as OCI blobs (another
        # test pulled them so), and then the manifest pushed is OCI, which a bare GET is refused (404).
        registry_manifest(auth_registry, "private/pushed", "1")
    finally:
        daemon.ok("rmi", target)


def _env(home):
    import os
    import sys

    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": DOCKER_PATH, "HOME": str(home), "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", ""), "DOCKER_CONFIG": str(home / ".docker")}


def test_docker_cli_pushes_through_our_socket(daemon, registry, pulled):
    from tests.integration.test_docker_cli import docker

    target = registry.ref("pushed/by-docker:2")
    daemon.ok("tag", pulled, target)
    try:
        result = docker(daemon, "push", target)
        assert result.returncode == 0, result.stderr
        _, _, digest = registry_manifest(registry, "pushed/by-docker", "2")
        assert f"2: digest: {digest}" in result.stdout
    finally:
        daemon.ok("rmi", target)
