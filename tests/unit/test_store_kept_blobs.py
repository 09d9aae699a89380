"""load and import keep each layer's bytes as they came, as a blob recorded for the layer, so that
save can give the same bytes back; a failed load keeps none."""

import gzip
import hashlib
import io

import pytest

from minictr.db import Database
from minictr.errors import InvalidArgument
from minictr.images.layers import remove_tree
from minictr.images.store import SCHEMA, ImageStore

from tests.unit.test_layers_hostile import GOOD, docker_save, entry, tar_bytes


@pytest.fixture
def store(tmp_path):
    db = Database(tmp_path / "minictr.db", [SCHEMA])
    yield ImageStore(db, tmp_path / "root", rootless=False)
    db.close()
    remove_tree(tmp_path)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_load_keeps_each_layer_tar_as_its_blob(store):
    second = tar_bytes(entry("etc", "dir"), entry("etc/motd", data=b"hi\n"))
    store.load(io.BytesIO(docker_save([GOOD, second])))
    for layer in (GOOD, second):
        blobs = store.layer_blobs(digest(layer))
        assert [(b["digest"], b["media_type"], b["size"]) for b in blobs] == [
            (digest(layer), "application/vnd.oci.image.layer.v1.tar", len(layer))]
        with store.blobs.open(blobs[0]["digest"]) as kept:
            assert kept.read() == layer


def test_import_of_a_gzip_tar_keeps_the_compressed_bytes(store):
    compressed = gzip.compress(GOOD)
    store.import_tar(io.BytesIO(compressed), "imported:1", [], "")
    blobs = store.layer_blobs(digest(GOOD))
    assert [(b["digest"], b["media_type"]) for b in blobs] == [
        (digest(compressed), "application/vnd.oci.image.layer.v1.tar+gzip")]


def test_a_failed_load_keeps_no_blob(store):
    hostile = tar_bytes(entry("up", "symlink", target=".."), entry("up/x", data=b"x"))
    with pytest.raises(InvalidArgument):
        store.load(io.BytesIO(docker_save([GOOD, hostile])))
    assert list(store.blobs.dir.iterdir()) == []


def test_removing_the_image_removes_its_blobs(store):
    store.load(io.BytesIO(docker_save([GOOD])))
    store.remove("hostile:1", force=False, in_use=lambda image_id: False)
    assert list(store.blobs.dir.iterdir()) == []
