"""The content-addressed blob store and the store's layer_blobs / image_digests tables."""

import gzip
import hashlib
import json
import os
import stat

import pytest

from minictr.db import Database
from minictr.errors import InvalidArgument
from minictr.images import archive
from minictr.images.blobs import BlobStore, DigestMismatch
from minictr.images.layers import extract_layer, remove_tree
from minictr.images.store import SCHEMA, ImageStore
from minictr.spec import reference as references

from tests.unit.test_images_store import ROOTFS, not_used


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def blobs(tmp_path):
    return BlobStore(tmp_path)


def test_a_written_blob_is_stored_under_its_digest_private_to_the_owner(blobs, tmp_path):
    with blobs.writer(digest_of(b"hello")) as writer:
        writer.write(b"hel")
        writer.write(b"lo")
    assert writer.digest == digest_of(b"hello") and writer.size == 5 and writer.created
    path = tmp_path / "image" / "blobs" / "sha256" / digest_of(b"hello")[7:]
    assert blobs.path(writer.digest) == path and path.read_bytes() == b"hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert blobs.has(writer.digest) and blobs.open(writer.digest).read() == b"hello"
    blobs.remove(writer.digest)
    assert not blobs.has(writer.digest)


def test_a_blob_that_does_not_match_its_digest_leaves_nothing(blobs):
    with pytest.raises(DigestMismatch, match="does not match its digest"):
        with blobs.writer(digest_of(b"expected")) as writer:
            writer.write(b"something else")
    assert os.listdir(blobs.dir) == []


def test_a_blob_over_its_size_bound_fails_and_leaves_nothing(blobs):
    with pytest.raises(InvalidArgument, match="larger than the limit of 4 bytes"):
        with blobs.writer(max_size=4, what="the manifest") as writer:
            writer.write(b"12345")
    assert os.listdir(blobs.dir) == []


def test_an_error_while_writing_removes_the_partial_file(blobs):
    with pytest.raises(RuntimeError):
        with blobs.writer() as writer:
            writer.write(b"partial")
            raise RuntimeError("connection reset")
    assert os.listdir(blobs.dir) == []


def test_writing_a_blob_that_is_present_keeps_one_copy(blobs):
    for _ in range(2):
        with blobs.writer() as writer:
            writer.write(b"same")
    assert not writer.created and os.listdir(blobs.dir) == [writer.digest[7:]]


@pytest.mark.parametrize("digest", [
    "sha256:../../etc/passwd", "sha256:" + "A" * 64, "sha512:" + "a" * 64, "sha256:" + "a" * 63,
    "a" * 64, "", "sha256:" + "a" * 64 + "/x", None,
])
def test_a_digest_that_is_not_sha256_and_64_lowercase_hex_is_refused_before_any_path(blobs, digest):
    with pytest.raises(InvalidArgument, match="invalid digest"):
        blobs.path(digest)
    if digest is not None:  # writer(None): the digest is whatever the bytes hash to
        with pytest.raises(InvalidArgument, match="invalid digest"):
            blobs.writer(digest)


@pytest.fixture
def store(tmp_path):
    db = Database(tmp_path / "minictr.db", [SCHEMA])
    yield ImageStore(db, tmp_path, rootless=False)
    db.close()
    remove_tree(tmp_path)


def pending_with_blob(store, tag="example.com/ns/app:1"):
    """A one-layer image as a pull stages it: its compressed blob kept, its manifest digest recorded."""
    compressed = gzip.compress(ROOTFS, mtime=0)
    with store.blobs.writer(digest_of(compressed)) as writer:
        writer.write(compressed)
    with store.blobs.open(writer.digest) as source:
        layer = extract_layer(source, store.layers_dir, rootless=False)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}}).encode()
    pending = archive.PendingImage(config, [layer], [references.parse(tag)])
    pending.blobs = [(layer.diff_id, writer.digest, "application/vnd.oci.image.layer.v1.tar+gzip", len(compressed))]
    manifest_digest = digest_of(b"the manifest")
    pending.digests = [("example.com/ns/app", manifest_digest)]
    return pending, layer.diff_id, writer.digest, manifest_digest


def test_a_pulled_image_records_its_blob_and_repo_digest_and_rmi_removes_both(store):
    pending, diff_id, blob, manifest_digest = pending_with_blob(store)
    image_id = store._commit(pending)
    assert store.layer_blobs(diff_id) == [
        {"digest": blob, "media_type": "application/vnd.oci.image.layer.v1.tar+gzip", "size": store.blobs.size(blob)}]
    inspected = store.inspect("example.com/ns/app:1")
    assert inspected["RepoDigests"] == [f"example.com/ns/app@{manifest_digest}"]
    assert store.resolve(f"example.com/ns/app@{manifest_digest}").id == image_id
    assert store.list_images()[0]["RepoDigests"] == [f"example.com/ns/app@{manifest_digest}"]
    # Removing the only tag drops the repository's digest reference too, then the image, layer and blob.
    removed = store.remove("example.com/ns/app:1", force=False, in_use=not_used)
    assert {"Deleted": image_id} in removed and {"Deleted": diff_id} in removed
    assert not store.blobs.has(blob) and store.layer_blobs(diff_id) == []
    assert store.list_images() == []


def test_blobs_no_layer_records_are_removed_at_start(store, tmp_path):
    pending, diff_id, blob, _ = pending_with_blob(store)
    store._commit(pending)
    with store.blobs.writer() as writer:
        writer.write(b"a blob of a pull that crashed")
    (store.blobs.dir / ".tmp-interrupted").write_bytes(b"x")
    ImageStore(store.db, tmp_path, rootless=False)
    assert sorted(os.listdir(store.blobs.dir)) == [blob[7:]]


def test_forget_unrecorded_blobs_keeps_those_a_layer_records(store):
    pending, _, blob, _ = pending_with_blob(store)
    store._commit(pending)
    with store.blobs.writer() as writer:
        writer.write(b"downloaded by a pull that failed")
    store.forget_unrecorded_blobs([blob, writer.digest])
    assert store.blobs.has(blob) and not store.blobs.has(writer.digest)
