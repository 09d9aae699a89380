"""Pull from a real registry on loopback: what `minictr pull`, `docker pull` through our socket,
and `run` of a missing image show a user, and what a failed pull leaves behind (nothing)."""

import json
import os
import shutil
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.registry import (  # noqa: F401 (fixtures)
    auth_registry, busybox_archive, busybox_layer, docker_archive, layer_tar, platform_index, push_archive,
    registry, registry_blob_path, registry_manifest, whiteout_archive,
)


def inspect(d, ref):
    return json.loads(d.ok("image", "inspect", ref))[0]


def unique(name):
    return f"pull/{name}-{uuid.uuid4().hex[:8]}"


def store_listing(d):
    """What a pull may add: blobs, layer dirs, configs, and the images the daemon lists."""
    image_dir = d.data_root / "image"
    names = {sub: sorted(os.listdir(image_dir / sub)) for sub in ("blobs/sha256", "layers", "configs")}
    return names, d.ok("images", "-q", "--no-trunc")


@pytest.fixture(scope="module")
def unique_layer_image(tmp_path_factory, busybox_layer):
    """Pushes a two-layer image whose top layer no other test has; returns (archive, marker text)."""

    def make(marker):
        out = tmp_path_factory.mktemp("unique") / "image.tar"
        return docker_archive(out, [busybox_layer, layer_tar({"marker": marker + "\n"})])

    return make


def test_pull_stores_the_image_with_its_digest_and_it_runs(daemon, registry, busybox_archive):
    ref = registry.ref(unique("busybox") + ":1")
    digest = push_archive(registry, busybox_archive, ref.split("/", 1)[1])
    out = daemon.ok("pull", ref)
    lines = out.splitlines()
    assert lines[0] == f"1: Pulling from {ref.split('/', 1)[1].rsplit(':', 1)[0]}"
    assert f"Digest: {digest}" in lines
    assert f"Status: Downloaded newer image for {ref}" in lines
    assert lines[-1] == ref
    repo = ref.rsplit(":", 1)[0]
    assert inspect(daemon, ref)["RepoDigests"] == [f"{repo}@{digest}"]
    assert daemon.ok("run", "--rm", ref, "echo", "pulled") == "pulled\n"
    # By digest: the same image, found by its RepoDigest.
    assert "Image is up to date" in daemon.ok("pull", f"{repo}@{digest}")
    daemon.ok("rmi", ref)


def test_a_second_pull_is_up_to_date_and_downloads_nothing(daemon, registry, busybox_archive):
    ref = registry.ref(unique("again") + ":1")
    push_archive(registry, busybox_archive, ref.split("/", 1)[1])
    daemon.ok("pull", ref)
    out = daemon.ok("pull", ref)
    assert "Already exists" in out and "Pull complete" not in out and "Downloading" not in out
    assert f"Status: Image is up to date for {ref}" in out
    daemon.ok("rmi", ref)


def test_layers_already_in_the_store_are_not_downloaded_again(daemon, registry, busybox_archive, whiteout_archive):
    base = registry.ref(unique("base") + ":1")
    layered = registry.ref(unique("layered") + ":1")
    push_archive(registry, busybox_archive, base.split("/", 1)[1])
    push_archive(registry, whiteout_archive, layered.split("/", 1)[1])
    daemon.ok("pull", base)
    manifest = json.loads(registry_manifest(registry, layered.split("/", 1)[1].rsplit(":", 1)[0], "1")[0])
    shared = manifest["layers"][0]["digest"][7:19]
    out = daemon.ok("pull", layered)
    assert f"{shared}: Already exists" in out.splitlines()
    assert out.count(": Pull complete") == 2
    daemon.ok("rmi", base, layered)


def test_the_progress_stream_has_dockers_shape(daemon, registry, unique_layer_image):
    name = unique("progress")
    push_archive(registry, unique_layer_image(name), f"{name}:1")
    query = {"fromImage": registry.ref(name), "tag": "1"}
    messages = list(daemon.client().stream("POST", "/images/create", query).json_lines())
    assert messages[0] == {"status": f"Pulling from {name}", "progressDetail": {}, "id": "1"}
    statuses = [m["status"] for m in messages]
    for expected in ("Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete", "Extracting",
                     "Pull complete"):
        assert expected in statuses, statuses
    downloading = next(m for m in messages if m["status"] == "Downloading")
    assert set(downloading["progressDetail"]) == {"current", "total"} and downloading["progress"].startswith("[")
    assert len(downloading["id"]) == 12
    assert messages[-2]["status"].startswith("Digest: sha256:")
    assert messages[-1] == {"status": f"Status: Downloaded newer image for {registry.ref(name)}:1"}
    daemon.ok("rmi", registry.ref(name) + ":1")


def test_a_corrupted_blob_fails_the_pull_and_leaves_the_store_as_it_was(daemon, registry, unique_layer_image):
    name = unique("corrupt")
    push_archive(registry, unique_layer_image(name), f"{name}:1")
    manifest = json.loads(registry_manifest(registry, name, "1")[0])
    blob = registry_blob_path(registry, manifest["layers"][-1]["digest"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    before = store_listing(daemon)
    result = daemon.cli("pull", registry.ref(name) + ":1")
    assert result.returncode != 0
    assert "does not match its digest" in result.stderr and "Traceback" not in result.stderr
    assert store_listing(daemon) == before


def test_platform_is_chosen_from_an_index(daemon, registry, platform_index):
    name = unique("multi")
    ref = registry.ref(name) + ":1"
    push_archive(registry, platform_index, f"{name}:1", all=True)
    daemon.ok("pull", "--platform", "linux/arm64", ref)
    assert inspect(daemon, ref)["Architecture"] == "arm64"
    assert daemon.ok("run", "--rm", ref, "cat", "/platform") == "arm64\n"
    out = daemon.ok("pull", "--platform", "linux/amd64", ref)
    assert f"Status: Downloaded newer image for {ref}" in out
    assert daemon.ok("run", "--rm", ref, "cat", "/platform") == "amd64\n"
    result = daemon.cli("pull", "--platform", "linux/s390x", ref)
    assert result.returncode != 0
    assert "no matching manifest for linux/s390x" in result.stderr and "linux/arm64/v8" in result.stderr
    daemon.ok("rmi", ref)


def test_docker_pull_through_our_socket(daemon, registry, busybox_archive):
    if shutil.which("docker") is None:
        pytest.fail("no docker CLI on the PATH")
    name = unique("docker")
    digest = push_archive(registry, busybox_archive, f"{name}:1")
    ref = registry.ref(name) + ":1"
    result = subprocess.run(["docker", "-H", daemon.host, "pull", ref], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"Digest: {digest}" in result.stdout and f"Downloaded newer image for {ref}" in result.stdout
    assert result.stdout.splitlines()[-1] == ref
    daemon.ok("rmi", ref)


def test_run_pulls_a_missing_image_and_pull_never_refuses(daemon, registry, busybox_archive):
    name = unique("auto")
    push_archive(registry, busybox_archive, f"{name}:1")
    ref = registry.ref(name) + ":1"
    refused = daemon.cli("run", "--rm", "--pull", "never", ref, "true")
    assert refused.returncode != 0 and f"No such image: {ref}" in refused.stderr
    result = daemon.cli("run", "--rm", ref, "echo", "ran")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ran\n"
    assert f"Unable to find image '{ref}' locally" in result.stderr
    assert f"Status: Downloaded newer image for {ref}" in result.stderr
    bad = daemon.cli("run", "--rm", "--pull", "sometimes", ref, "true")
    assert bad.returncode != 0 and "invalid pull option" in bad.stderr
    daemon.ok("rmi", ref)


def test_a_missing_tag_is_not_found(daemon, registry):
    result = daemon.cli("pull", registry.ref(unique("absent")) + ":1")
    assert result.returncode != 0
    assert "not found" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("reference, reason", [
    ("library/BusyBox", "must be lowercase"),
    ("busybox@sha256:1234", "invalid digest"),
    ("a:b:c", "invalid"),
    ("name!", "invalid reference format"),
    ("busybox:" + "t" * 129, "invalid tag"),
])
def test_a_bad_reference_is_refused_with_the_reason(daemon, reference, reason):
    result = daemon.cli("pull", reference)
    assert result.returncode != 0
    assert reason in result.stderr and "Traceback" not in result.stderr


def test_token_auth_anonymous_public_pull_then_login_for_a_private_one(daemon, auth_registry, busybox_archive,
                                                                       tmp_path):
    public, private = "public/" + unique("open")[5:], unique("closed")
    push_archive(auth_registry, busybox_archive, f"{public}:1")
    push_archive(auth_registry, busybox_archive, f"{private}:1")
    env = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "docker"))
    public_ref, private_ref = auth_registry.ref(public) + ":1", auth_registry.ref(private) + ":1"
    daemon.ok("pull", public_ref, env=env)

    denied = daemon.cli("pull", private_ref, env=env)
    assert denied.returncode != 0 and "pull access denied" in denied.stderr

    wrong = daemon.cli("login", "-u", auth_registry.username, "--password-stdin", auth_registry.host,
                       input="wrong\n", env=env)
    assert wrong.returncode != 0 and "unauthorized" in wrong.stderr
    assert not (tmp_path / "docker" / "config.json").exists()

    login = daemon.cli("login", "-u", auth_registry.username, "--password-stdin", auth_registry.host,
                       input=auth_registry.password + "\n", env=env)
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == "Login Succeeded"
    config = json.loads((tmp_path / "docker" / "config.json").read_text())
    assert config["auths"][auth_registry.host]["auth"] == "dGVzdGVyOnNlY3JldA=="  # tester:secret
    assert oct((tmp_path / "docker" / "config.json").stat().st_mode & 0o777) == "0o600"

    requests_before = len(auth_registry.token_requests)
    daemon.ok("pull", private_ref, env=env)
    tokens = auth_registry.token_requests[requests_before:]
    assert any(t["account"] == auth_registry.username for t in tokens)
    # One token for the repository's pull scope, reused by the manifest, config and layer requests.
    assert len(tokens) <= 2, tokens

    assert daemon.ok("logout", auth_registry.host, env=env).strip() == f"Removing login credentials for {auth_registry.host}"
    assert auth_registry.host not in json.loads((tmp_path / "docker" / "config.json").read_text())["auths"]
    daemon.ok("rmi", public_ref, private_ref)


class _RedirectingRegistry(BaseHTTPRequestHandler):
    """Answers /v2/ and redirects every manifest to plain HTTP on a non-loopback address."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/v2/":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        self.send_response(307)
        self.send_header("Location", "http://192.0.2.1:5000/blobs/elsewhere")  # TEST-NET-1: never contacted
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_plain_http_to_a_non_loopback_host_is_refused_before_connecting(daemon):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RedirectingRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = daemon.cli("pull", f"127.0.0.1:{server.server_port}/x:1", timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode != 0
    assert "refusing plain HTTP to 192.0.2.1:5000" in result.stderr and "--insecure-registry" in result.stderr


def test_run_of_an_image_no_registry_has_says_so_after_docker_s_line(daemon):
    # The suite's daemons may reach loopback registries only (conftest): nothing goes to Docker Hub.
    result = daemon.cli("run", "--rm", "no-such-image-anywhere", "true")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Unable to find image 'no-such-image-anywhere:latest' locally"
    assert len(lines) == 2 and "registry-1.docker.io" in lines[1] and "loopback registries only" in lines[1]
    assert daemon.ok("ps", "-a", "-q") == ""


def test_docker_login_and_pull_through_our_socket(daemon, auth_registry, busybox_archive, tmp_path):
    if shutil.which("docker") is None:
        pytest.fail("no docker CLI on the PATH")
    name = unique("docker-auth")
    push_archive(auth_registry, busybox_archive, f"{name}:1")
    env = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "docker"))

    def docker(*args, input=None):
        return subprocess.run(["docker", "-H", daemon.host, *args], input=input, capture_output=True, text=True,
                              env=env, timeout=120)

    wrong = docker("login", "-u", auth_registry.username, "--password-stdin", auth_registry.host, input="wrong\n")
    assert wrong.returncode != 0 and "unauthorized" in wrong.stderr.lower()
    login = docker("login", "-u", auth_registry.username, "--password-stdin", auth_registry.host,
                   input=auth_registry.password + "\n")
    assert login.returncode == 0 and "Login Succeeded" in login.stdout, login.stderr
    ref = auth_registry.ref(name) + ":1"
    pulled = docker("pull", ref)  # the docker CLI sends the stored credentials as X-Registry-Auth
    assert pulled.returncode == 0 and f"Downloaded newer image for {ref}" in pulled.stdout, pulled.stderr
    daemon.ok("rmi", ref)
