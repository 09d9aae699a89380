"""push: layers, config and manifest to a real registry on loopback, as `docker push` does."""

import json
import subprocess
import uuid

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


# --- a first push to a new repository of a token registry that holds the layers in another -------------


def _held_image(daemon, auth_registry, layers, tmp_path):
    """An image whose layers the token registry holds in a repository `held/…` of its own, pulled from there
    after a login (so that the store knows where they came from). Returns (held repository, local ref)."""
    from tests.integration.registry import docker_archive

    held = f"held/{uuid.uuid4().hex[:10]}"
    push_archive(auth_registry, docker_archive(tmp_path / "held.tar", layers), f"{held}:1")
    home = tmp_path / "setup"
    daemon.ok("login", "-u", auth_registry.username, "--password-stdin", auth_registry.host,
              input=auth_registry.password + "\n", env=_env(home))
    daemon.ok("pull", auth_registry.ref(f"{held}:1"), env=_env(home))
    return held, auth_registry.ref(f"{held}:1")


def _login_and_push(client, daemon, auth_registry, target, home):
    """Log in and push as the client does; the push's status lines ("<id>: Mounted from …") and its error."""
    env = _env(home)
    if client == "docker-py":
        import docker

        api = docker.APIClient(base_url="unix://" + str(daemon.socket), timeout=120)
        try:
            api.login(auth_registry.username, auth_registry.password, registry=auth_registry.host,
                      dockercfg_path=str(home / "no-config.json"))
            repository, tag = target.rsplit(":", 1)
            events = list(api.push(repository, tag=tag, stream=True, decode=True))
        finally:
            api.close()
        lines = [f"{e.get('id')}: {e['status']}" for e in events if "status" in e]
        return lines, "; ".join(e["error"] for e in events if "error" in e)
    def run(*args, input=None):
        if client == "minictr":
            return daemon.cli(*args, input=input, env=env, timeout=120)
        return subprocess.run(["docker", "-H", daemon.host, *args], input=input, capture_output=True, text=True,
                              env=env, timeout=120)

    login = run("login", "-u", auth_registry.username, "--password-stdin", auth_registry.host,
                input=auth_registry.password + "\n")
    assert login.returncode == 0, login.stderr
    push = run("push", target)
    return push.stdout.splitlines(), push.stderr.strip() if push.returncode else ""


def _pushed_layers_are_there(auth_registry, repository):
    body, _, _ = registry_manifest(auth_registry, repository, "1")
    for layer in json.loads(body)["layers"]:
        status, _, _ = registry_request(auth_registry, "HEAD", f"/v2/{repository}/blobs/{layer['digest']}")
        assert status == 200, layer


def _token_queries_since(auth_registry, start):
    return [r["query"] for r in auth_registry.token_requests[start:] if r["method"] == "GET"]


@pytest.mark.parametrize("client", ["minictr", "docker", "docker-py"])
def test_first_push_after_login_mounts_the_layers_from_the_repository_holding_them(
        client, daemon, auth_registry, busybox_layer, tmp_path):
    from tests.integration.registry import layer_tar

    marker = layer_tar({"held-marker": f"{uuid.uuid4()}\n"})
    held, source = _held_image(daemon, auth_registry, [busybox_layer, marker], tmp_path)
    fresh = f"fresh/{client}-{uuid.uuid4().hex[:8]}"
    target = auth_registry.ref(f"{fresh}:1")
    daemon.ok("tag", source, target)
    start = len(auth_registry.token_requests)
    try:
        lines, error = _login_and_push(client, daemon, auth_registry, target, tmp_path / client)
        assert not error, error
        assert any(line.endswith(f": Mounted from {held}") for line in lines), lines
        assert not any(line.endswith(": Pushed") for line in lines), lines
        # Each scope its own parameter, and the account, as Docker asks a token for a mount.
        queries = _token_queries_since(auth_registry, start)
        assert any(set(q.get("scope", [])) >= {f"repository:{fresh}:pull,push", f"repository:{held}:pull"}
                   for q in queries), queries
        assert all(q.get("account") == [auth_registry.username] for q in queries), queries
        _pushed_layers_are_there(auth_registry, fresh)
    finally:
        daemon.cli("rmi", target, source)


@pytest.mark.parametrize("client", ["minictr", "docker"])
def test_a_mount_the_token_server_refuses_falls_back_to_an_upload(client, daemon, auth_registry, tmp_path):
    from tests.integration.registry import layer_tar

    # One layer of its own: the only repository that holds it is `held`, where this user has no rights.
    held, source = _held_image(daemon, auth_registry, [layer_tar({"sealed": f"{uuid.uuid4()}\n"})], tmp_path)
    fresh = f"fresh/sealed-{client}-{uuid.uuid4().hex[:8]}"
    target = auth_registry.ref(f"{fresh}:1")
    daemon.ok("tag", source, target)
    auth_registry.token_server.denied.add(held)
    start = len(auth_registry.token_requests)
    try:
        lines, error = _login_and_push(client, daemon, auth_registry, target, tmp_path / client)
        assert not error, error
        assert any(line.endswith(": Pushed") for line in lines), lines
        assert not any("Mounted from" in line for line in lines), lines
        assert any(f"repository:{held}:pull" in q.get("scope", []) for q in _token_queries_since(auth_registry, start))
        _pushed_layers_are_there(auth_registry, fresh)
    finally:
        auth_registry.token_server.denied.discard(held)
        daemon.cli("rmi", target, source)
