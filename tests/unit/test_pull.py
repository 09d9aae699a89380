"""Pull against a fake registry (httpx.MockTransport) into a real store: retries, digests checked while
streaming, a failed pull leaving the store as it was, layers and blobs that are present skipped."""

import gzip
import hashlib
import json
import os

import httpx
import pytest

from minictr.db import Database
from minictr.errors import InvalidArgument
from minictr.images import pull as pull_module
from minictr.images.layers import remove_tree
from minictr.images.pull import Puller
from minictr.images.registry import OCI_INDEX, OCI_MANIFEST
from minictr.images.store import SCHEMA, ImageStore

from tests.unit.test_images_store import tar_of


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """Serves one image (and an index of it) for registry.example/ns/app:1."""

    def __init__(self, files: dict):
        plain = tar_of(files)
        self.layer = gzip.compress(plain, mtime=0)
        self.diff_id = digest(plain)
        self.config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                                  "rootfs": {"type": "layers", "diff_ids": [self.diff_id]}}).encode()
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(self.config),
                       "size": len(self.config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(self.layer),
                        "size": len(self.layer)}]}).encode()
        self.blobs = {digest(self.config): self.config, digest(self.layer): self.layer}
        self.failures = {}  # digest -> how many 503s before it is served
        self.served = []

    def __call__(self, request):
        path = request.url.path
        self.served.append(path)
        if path == "/v2/":
            return httpx.Response(200, json={})
        if path == "/v2/ns/app/manifests/1":
            return httpx.Response(200, content=self.manifest, headers={"Content-Type": OCI_MANIFEST})
        if path.startswith("/v2/ns/app/manifests/sha256:"):
            return httpx.Response(200, content=self.manifest, headers={"Content-Type": OCI_MANIFEST})
        name = path.rsplit("/", 1)[1]
        if name in self.blobs:
            if self.failures.get(name):
                self.failures[name] -= 1
                return httpx.Response(503)
            return httpx.Response(200, content=self.blobs[name])
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]})


@pytest.fixture
def store(tmp_path):
    db = Database(tmp_path / "minictr.db", [SCHEMA])
    yield ImageStore(db, tmp_path / "root", rootless=os.geteuid() != 0)
    db.close()
    remove_tree(tmp_path)


@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    monkeypatch.setattr(pull_module, "RETRY_PAUSE", 0)


def listing(store):
    image = store.root / "image"
    return {sub: sorted(os.listdir(image / sub)) for sub in ("blobs/sha256", "layers", "configs")}


def pull(store, fake, ref="registry.example/ns/app:1", **kwargs):
    messages = []
    result = Puller(store, progress=messages.append, transport=httpx.MockTransport(fake)).pull(
        ref, **kwargs)
    return result, messages


def test_a_pulled_image_is_stored_with_its_blob_and_digest(store):
    fake = Registry({"bin/": b"", "bin/sh": b"#!fake\n"})
    result, messages = pull(store, fake)
    assert result["id"] == digest(fake.config) and result["digest"] == digest(fake.manifest) and result["updated"]
    assert store.resolve("registry.example/ns/app:1").id == result["id"]
    assert store.inspect(result["id"])["RepoDigests"] == [f"registry.example/ns/app@{digest(fake.manifest)}"]
    assert store.layer_blobs(fake.diff_id)[0]["digest"] == digest(fake.layer)
    assert messages[-1] == {"status": "Status: Downloaded newer image for registry.example/ns/app:1"}


def test_a_transient_failure_is_retried(store):
    fake = Registry({"a": b"a\n"})
    fake.failures[digest(fake.layer)] = 2
    pull(store, fake)
    assert fake.served.count(f"/v2/ns/app/blobs/{digest(fake.layer)}") == 3


def test_a_failure_that_persists_fails_the_pull_and_leaves_nothing(store):
    fake = Registry({"a": b"a\n"})
    before = listing(store)
    fake.failures[digest(fake.layer)] = 99
    with pytest.raises(pull_module.RegistryError, match="503"):
        pull(store, fake)
    assert listing(store) == before


def test_a_layer_that_does_not_match_its_digest_fails_and_leaves_nothing(store):
    fake = Registry({"a": b"a\n" * 1000})
    layer = bytearray(fake.layer)
    layer[len(layer) // 2] ^= 0xFF
    fake.blobs[digest(fake.layer)] = bytes(layer)
    before = listing(store)
    with pytest.raises(InvalidArgument, match="does not match its digest"):
        pull(store, fake)
    assert listing(store) == before


def test_a_config_whose_diff_ids_lie_fails_and_leaves_nothing(store):
    fake = Registry({"a": b"a\n"})
    fake.diff_id = digest(b"something else")
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [fake.diff_id]}}).encode()
    manifest = json.loads(fake.manifest)
    manifest["config"].update(digest=digest(config), size=len(config))
    fake.manifest = json.dumps(manifest).encode()
    fake.blobs[digest(config)] = config
    before = listing(store)
    with pytest.raises(InvalidArgument, match="does not match the config's diff id"):
        pull(store, fake)
    assert listing(store) == before


def test_a_second_pull_skips_the_layer_and_says_up_to_date(store):
    fake = Registry({"a": b"a\n"})
    pull(store, fake)
    fake.served.clear()
    result, messages = pull(store, fake)
    assert not result["updated"]
    assert f"/v2/ns/app/blobs/{digest(fake.layer)}" not in fake.served
    assert {"status": "Already exists", "progressDetail": {}, "id": digest(fake.layer)[7:19]} in messages


def test_an_oversized_manifest_is_refused(store, monkeypatch):
    fake = Registry({"a": b"a\n"})
    monkeypatch.setattr("minictr.images.registry.MAX_MANIFEST_SIZE", 10)
    with pytest.raises(InvalidArgument, match="larger than the limit"):
        pull(store, fake)


def test_an_index_is_resolved_to_the_manifest_for_the_platform(store):
    fake = Registry({"a": b"a\n"})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest(fake.manifest), "size": len(fake.manifest),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    original = fake.__call__

    def serve(request):
        if request.url.path == "/v2/ns/app/manifests/1":
            return httpx.Response(200, content=index, headers={"Content-Type": OCI_INDEX})
        return original(request)

    result = Puller(store, transport=httpx.MockTransport(serve)).pull(
        "registry.example/ns/app:1", platform="linux/amd64")
    assert result["digest"] == digest(index)  # the RepoDigest is what was asked for: the index
    with pytest.raises(Exception, match="no matching manifest for linux/arm64/v8"):
        Puller(store, transport=httpx.MockTransport(serve)).pull(
            "registry.example/ns/app:1", platform="linux/arm64")
