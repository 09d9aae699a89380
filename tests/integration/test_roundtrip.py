"""Round trips of images (issue #3): save -> load, through Podman, push -> pull on a clean data root, and a
multi-layer image with whiteouts pulled from a registry — what a user moving images around would check."""

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import ROOTLESS, Daemon
from tests.integration.registry import (  # noqa: F401 (fixtures)
    WHITEOUT_ABSENT, WHITEOUT_PRESENT, archive_image_id, auth_registry, busybox_archive, busybox_layer,
    platform_index, push_archive, registry, registry_digest, registry_manifest, whiteout_archive,
)


def image_inspect(d, ref):
    return json.loads(d.ok("image", "inspect", ref))[0]


def unique(name):
    return f"rt/{name}-{uuid.uuid4().hex[:8]}"


def _own_daemon(what):
    # Short: the rootless daemon's runtime dir holds sockets (108-byte paths).
    top = Path(tempfile.mkdtemp(prefix=f"rt-{what}-", dir="/tmp"))
    os.chmod(top, 0o755)
    d = Daemon(top)
    d.start()
    return d


def _remove_daemon(d):
    try:
        d.teardown()  # its containers, networks and (as root) bridge links too
    finally:
        subprocess.run(["rm", "-rf", str(d.top)], check=False)


@pytest.fixture
def clean_daemon():
    """A second daemon on an empty data root, stopped and removed afterwards (its containers too)."""
    d = _own_daemon("clean")
    yield d
    _remove_daemon(d)


@pytest.fixture
def source_daemon(busybox_archive):
    """A daemon of its own with busybox-local loaded from a `docker save` archive (not imported: the shared
    daemon's busybox-local was imported by the session fixture)."""
    d = _own_daemon("source")
    try:
        d.ok("load", "-i", str(busybox_archive))
    except BaseException:
        _remove_daemon(d)
        raise
    yield d
    _remove_daemon(d)


def archive_members(path):
    with tarfile.open(path) as tar:
        return {member.name: (tar.extractfile(member).read() if member.isfile() else None) for member in tar}


def show_whiteouts(d, ref):
    """Run the image and report, per path, what the container sees."""
    script = "; ".join(
        [f'if [ -e {p} ]; then echo "present {p}"; else echo "absent {p}"; fi'
         for p, _ in WHITEOUT_PRESENT] +
        [f'if [ -e {p} ]; then echo "present {p}"; else echo "absent {p}"; fi' for p in WHITEOUT_ABSENT] +
        ['echo "opq: $(ls -A /opq | tr "\\n" " ")"', 'echo "keep: $(cat /data/keep)"', 'echo "new: $(cat /opq/new)"'])
    return d.ok("run", "--rm", "--network", "none", ref, "sh", "-c", script)


def assert_whiteouts_applied(output):
    lines = output.splitlines()
    for path, _ in WHITEOUT_PRESENT:
        assert f"present {path}" in lines, output
    for path in WHITEOUT_ABSENT:
        assert f"absent {path}" in lines, output
    assert "opq: new " in lines, output  # the opaque dir keeps only what its own layer added
    assert "keep: kept" in lines and "new: new in layer 3" in lines, output


# --- the fixtures themselves: a real registry, real token auth ---------------------------------


def test_the_registry_serves_what_skopeo_pushed_with_its_digest(registry, busybox_archive):
    name = unique("fixture")
    digest = push_archive(registry, busybox_archive, f"{name}:1")
    body, media_type, served = registry_manifest(registry, name, "1")
    assert served == digest == "sha256:" + hashlib.sha256(body).hexdigest()
    manifest = json.loads(body)
    assert manifest["config"]["digest"] == archive_image_id(busybox_archive)
    assert len(manifest["layers"]) == 1 and media_type == manifest["mediaType"]


def test_the_token_registry_needs_credentials_except_for_public_pulls(auth_registry, busybox_archive):
    from tests.integration.registry import registry_request

    private, public = unique("private"), "public/" + unique("open").split("/", 1)[1]
    push_archive(auth_registry, busybox_archive, f"{private}:1")
    push_archive(auth_registry, busybox_archive, f"{public}:1")
    assert registry_request(auth_registry, "GET", "/v2/")[0] == 200
    status, headers, _ = registry_request(auth_registry, "GET", f"/v2/{private}/manifests/1", credentials=False)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert registry_request(auth_registry, "GET", f"/v2/{public}/manifests/1", credentials=False)[0] == 200
    assert registry_request(auth_registry, "GET", f"/v2/{private}/manifests/1")[0] == 200
    assert auth_registry.token_requests[-1]["account"] == auth_registry.username
    # A wrong password gets no token at all.
    import base64
    import urllib.error
    import urllib.request
    realm = auth_registry.token_server.realm
    request = urllib.request.Request(realm + "?service=x&scope=repository:" + private + ":pull",
                                     headers={"Authorization": "Basic " + base64.b64encode(b"tester:wrong").decode()})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401


def test_the_platform_index_offers_two_platforms_with_different_contents(registry, platform_index):
    from tests.integration.registry import registry_blob

    name = unique("multiarch")
    digest = push_archive(registry, platform_index, f"{name}:1", all=True)
    body, media_type, served = registry_manifest(registry, name, "1")
    assert served == digest and media_type == "application/vnd.oci.image.index.v1+json"
    platforms = {}
    for entry in json.loads(body)["manifests"]:
        manifest = json.loads(registry_manifest(registry, name, entry["digest"])[0])
        top_layer = gzip_tar_files(registry_blob(registry, name, manifest["layers"][-1]["digest"]))
        platforms[(entry["platform"]["architecture"], entry["platform"].get("variant"))] = top_layer["platform"]
    assert platforms == {("amd64", None): b"amd64\n", ("arm64", "v8"): b"arm64\n"}


def gzip_tar_files(blob):
    import gzip
    import io
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


# --- save -> load -------------------------------------------------------------------------


def test_save_then_load_on_a_clean_data_root_gives_the_same_image_id(daemon, image, clean_daemon, tmp_path):
    original = image_inspect(daemon, image)
    out = tmp_path / "saved.tar"
    daemon.ok("save", "-o", str(out), image)

    members = archive_members(out)
    manifest = json.loads(members["manifest.json"])
    assert manifest[0]["RepoTags"] == [f"{image}:latest"]
    config = members[manifest[0]["Config"]]
    assert "sha256:" + hashlib.sha256(config).hexdigest() == original["Id"]
    # Each layer tar holds the exact bytes of its diff id, so any engine computes the same image id.
    layers = ["sha256:" + hashlib.sha256(members[name]).hexdigest() for name in manifest[0]["Layers"]]
    assert layers == original["RootFS"]["Layers"] == json.loads(config)["rootfs"]["diff_ids"]
    assert "index.json" in members and "oci-layout" in members  # OCI tools read it too, as Docker 25+ writes

    loaded = clean_daemon.ok("load", "-i", str(out))
    assert f"Loaded image: {image}:latest" in loaded
    assert image_inspect(clean_daemon, image)["Id"] == original["Id"]
    assert clean_daemon.ok("run", "--rm", "--network", "none", image, "cat", "/etc/passwd").startswith("root:x:0:0")


def test_save_to_stdout_and_load_from_stdin(source_daemon, clean_daemon):
    image = "busybox-local"
    saved = subprocess.run([*daemon_command(source_daemon), "save", image], capture_output=True, timeout=60)
    assert saved.returncode == 0, saved.stderr.decode()
    loaded = subprocess.run([*daemon_command(clean_daemon), "load"], input=saved.stdout, capture_output=True,
                            timeout=60)
    assert loaded.returncode == 0, loaded.stderr.decode()
    assert image_inspect(clean_daemon, image)["Id"] == image_inspect(source_daemon, image)["Id"]


def daemon_command(d):
    import sys
    return [sys.executable, "-m", "minictr", "-H", d.host]


def test_a_multi_layer_image_with_whiteouts_survives_save_and_load(source_daemon, whiteout_archive, clean_daemon,
                                                                    tmp_path):
    # Its base layer is busybox-local's: already in the source store, shared.
    source_daemon.ok("load", "-i", str(whiteout_archive))
    assert image_inspect(source_daemon, "whiteout-test")["Id"] == archive_image_id(whiteout_archive)
    out = tmp_path / "whiteout-saved.tar"
    source_daemon.ok("save", "-o", str(out), "whiteout-test")
    clean_daemon.ok("load", "-i", str(out))
    assert image_inspect(clean_daemon, "whiteout-test")["Id"] == archive_image_id(whiteout_archive)
    assert len(image_inspect(clean_daemon, "whiteout-test")["RootFS"]["Layers"]) == 3
    assert_whiteouts_applied(show_whiteouts(clean_daemon, "whiteout-test"))


# --- with Podman, as root: rootless Podman would share the test user's pause process and storage with whatever
# else that user runs, and leave its pause process behind. A skip counts as a failure in CI
# (MINICTR_REQUIRE_ALL=1), so the test is not defined at all when rootless, as in test_limits.py.


def root_only(test):
    return None if ROOTLESS else test


@pytest.fixture
def podman(tmp_path):
    """podman with a private store (vfs: no mounts to clean up), removed afterwards."""
    if not shutil.which("podman"):
        pytest.fail("podman is not installed (apt-get install podman)")
    top = Path(tempfile.mkdtemp(prefix="rt-podman-", dir="/tmp"))  # podman refuses a runroot over 50 characters

    def run(*args, check=True):
        result = subprocess.run(["podman", "--root", str(top / "root"), "--runroot", str(top / "run"),
                                 "--storage-driver", "vfs", *args], capture_output=True, text=True, timeout=120)
        assert not check or result.returncode == 0, f"podman {' '.join(args)}: {result.stderr}"
        return result.stdout

    yield run
    run("rmi", "-a", "-f", check=False)
    shutil.rmtree(top, ignore_errors=True)


@root_only
def test_podman_loads_what_minictr_saves_and_minictr_loads_what_podman_saves(source_daemon, podman, clean_daemon,
                                                                             tmp_path):
    image = "busybox-local"
    image_id = image_inspect(source_daemon, image)["Id"]
    ours = tmp_path / "ours.tar"
    source_daemon.ok("save", "-o", str(ours), image)
    # Podman names it as it reads the archive (Docker 25+'s form gives docker.io/library/NAME, as Docker's does).
    loaded = podman("load", "-i", str(ours)).strip().splitlines()[-1]
    assert loaded.startswith("Loaded image: ") and loaded.endswith(f"/{image}:latest"), loaded
    podman_name = loaded.split(": ", 1)[1]
    assert podman("image", "inspect", "--format", "{{.Id}}", podman_name).strip() == image_id.split(":")[1]

    for fmt in ("docker-archive", "oci-archive"):
        theirs = tmp_path / f"podman-{fmt}.tar"
        podman("save", "--format", fmt, "-o", str(theirs), podman_name)
        clean_daemon.ok("load", "-i", str(theirs))
        loaded = [i for i in json.loads(clean_daemon.ok("image", "inspect", image_id))]
        assert loaded and loaded[0]["Id"] == image_id, fmt
        assert clean_daemon.ok("run", "--rm", "--network", "none", image_id, "echo", "from-podman") == "from-podman\n"
        clean_daemon.ok("rmi", "-f", image_id)


# --- push -> pull -------------------------------------------------------------------------


def test_push_then_pull_on_a_clean_data_root_gives_the_same_digests(source_daemon, registry, clean_daemon):
    daemon, image = source_daemon, "busybox-local"
    ref = registry.ref(unique("busybox") + ":1")
    name, tag = ref.split("/", 1)[1].rsplit(":", 1)
    daemon.ok("tag", image, ref)
    pushed = daemon.ok("push", ref, timeout=120)
    # docker push ends with "TAG: digest: sha256:… size: N"
    digest = next(word for line in pushed.splitlines() if "digest:" in line
                  for word in line.split() if word.startswith("sha256:"))
    assert registry_digest(registry, name, tag) == digest
    manifest = json.loads(registry_manifest(registry, name, tag)[0])
    original = image_inspect(daemon, image)
    assert manifest["config"]["digest"] == original["Id"]

    pulled = clean_daemon.ok("pull", ref, timeout=120)
    assert f"Digest: {digest}" in pulled
    copy = image_inspect(clean_daemon, ref)
    assert copy["Id"] == original["Id"]
    assert copy["RootFS"]["Layers"] == original["RootFS"]["Layers"]
    assert f"{ref.rsplit(':', 1)[0]}@{digest}" in copy["RepoDigests"]
    assert clean_daemon.ok("run", "--rm", "--network", "none", ref, "echo", "pulled") == "pulled\n"
    # Pushing the pulled image back gives the same manifest digest: the blobs kept are the ones pulled.
    again = clean_daemon.ok("push", ref, timeout=120)
    assert digest in again and "already exists" in again.lower()


def test_push_and_pull_through_token_auth_after_login(source_daemon, auth_registry, clean_daemon, tmp_path):
    daemon, image = source_daemon, "busybox-local"
    env = dict(os.environ, HOME=str(tmp_path), DOCKER_CONFIG=str(tmp_path / ".docker"))
    ref = auth_registry.ref(unique("busybox") + ":auth")
    name, tag = ref.split("/", 1)[1].rsplit(":", 1)
    daemon.ok("tag", image, ref)
    refused = daemon.cli("push", ref, env=env, timeout=120)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    daemon.ok("login", "-u", auth_registry.username, "--password-stdin", auth_registry.host,
              input=auth_registry.password + "\n", env=env)
    assert json.loads((tmp_path / ".docker" / "config.json").read_text())["auths"][auth_registry.host]["auth"]
    pushed = daemon.ok("push", ref, env=env, timeout=120)
    digest = registry_digest(auth_registry, name, tag)
    assert digest in pushed

    anonymous = clean_daemon.cli("pull", ref, env=dict(os.environ, HOME=str(tmp_path / "nobody"),
                                                       DOCKER_CONFIG=str(tmp_path / "nobody")), timeout=120)
    assert anonymous.returncode != 0 and "Traceback" not in anonymous.stderr
    assert clean_daemon.cli("image", "inspect", ref).returncode != 0
    assert f"Digest: {digest}" in clean_daemon.ok("pull", ref, env=env, timeout=120)
    assert image_inspect(clean_daemon, ref)["Id"] == image_inspect(daemon, image)["Id"]


def test_a_multi_layer_image_with_whiteouts_pulled_from_a_registry_shows_deleted_files_as_deleted(
        registry, whiteout_archive, clean_daemon):
    name = unique("whiteout")
    digest = push_archive(registry, whiteout_archive, f"{name}:1")
    ref = registry.ref(f"{name}:1")
    assert f"Digest: {digest}" in clean_daemon.ok("pull", ref, timeout=120)
    assert image_inspect(clean_daemon, ref)["Id"] == archive_image_id(whiteout_archive)
    assert_whiteouts_applied(show_whiteouts(clean_daemon, ref))


def test_a_pulled_multi_layer_image_pushed_to_another_repository_keeps_its_digest(registry, whiteout_archive,
                                                                                   source_daemon, clean_daemon):
    name = unique("whiteout-src")
    digest = push_archive(registry, whiteout_archive, f"{name}:1")
    ref = registry.ref(f"{name}:1")
    source_daemon.ok("pull", ref, timeout=120)
    copy_name = unique("whiteout-copy")
    copy = registry.ref(f"{copy_name}:2")
    source_daemon.ok("tag", ref, copy)
    pushed = source_daemon.ok("push", copy, timeout=120)
    # The layers are the blobs pulled, mounted from the repository they came from (as docker says it).
    assert pushed.count(f"Mounted from {name}") == 3, pushed
    # Docker writes the manifest anew on a push (its own JSON layout, not skopeo's), so the manifest digest
    # may change; what it names may not: the same config and the same layer blobs.
    def named(repository, tag):
        manifest = json.loads(registry_manifest(registry, repository, tag)[0])
        return manifest["config"]["digest"], [layer["digest"] for layer in manifest["layers"]]

    assert named(copy_name, "2") == named(name, "1")
    clean_daemon.ok("pull", copy, timeout=120)
    assert image_inspect(clean_daemon, copy)["Id"] == archive_image_id(whiteout_archive)
    assert_whiteouts_applied(show_whiteouts(clean_daemon, copy))
