"""`docker save`: images as one tar, in the form Docker 25+ writes.

The archive is at once a `docker save` archive (manifest.json, repositories)
and an OCI image layout (oci-layout, index.json, blobs/sha256/…), so Docker,
Podman, skopeo and our own `load` all read it:

    blobs/sha256/<hex>   each layer's plain tar (its digest is its diff id), each config,
                         each image's OCI manifest
    index.json           one manifest descriptor per name (io.containerd.image.name and
                         org.opencontainers.image.ref.name annotations), or per unnamed image
    manifest.json        [{"Config", "RepoTags", "Layers"}]: paths into blobs/
    oci-layout, repositories

A layer's bytes are those of the blob the store kept for it: the plain tar
itself, or a compressed blob decompressed (and checked against the diff id on
the way, into a spool file: a tar header needs the size first).
"""

import hashlib
import io
import json
import tarfile
import tempfile
from dataclasses import dataclass, field

from minictr.errors import MinictrError
from minictr.spec import reference as references
from minictr.images.layers import open_decompressed

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_CHUNK = 1 << 20


@dataclass
class SavedImage:
    id: str
    references: list = field(default_factory=list)  # Reference objects asked for by name


def resolve_names(store, names: list[str]) -> list[SavedImage]:
    """The images to save, in the order first named; a reference names itself in the archive,
    an id (or prefix) saves the image without a name. NotFound for the first unknown name."""
    images: dict[str, SavedImage] = {}
    for name in names:
        image_id, matched = store._find(name)
        saved = images.setdefault(image_id, SavedImage(image_id))
        if matched is not None and "@" not in matched:
            ref = references.parse(matched)
            if ref not in saved.references:
                saved.references.append(ref)
    for image_id in images:
        # Checked before the first byte goes out: a missing tar could only cut the stream.
        for diff_id in store.resolve(image_id).document["rootfs"]["diff_ids"]:
            if not store.layer_blobs(diff_id):
                raise MinictrError(
                    f"layer {diff_id} has no stored tar (it was stored before minictr kept layer tars): "
                    "remove the image and load or pull it again")
    return list(images.values())


def write_archive(store, images: list[SavedImage], out) -> None:
    """Write the archive of `images` to the binary stream `out`."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _directory(tar, "blobs/")
        _directory(tar, "blobs/sha256/")
        written: set[str] = set()
        manifest_entries, descriptors, repositories = [], [], {}
        for image in images:
            config_bytes = store._config_path(image.id).read_bytes()
            document = json.loads(config_bytes)
            diff_ids = document["rootfs"]["diff_ids"]
            layer_sizes = [_add_layer(store, tar, diff_id, written) for diff_id in diff_ids]
            _add_blob(tar, image.id, config_bytes, written)
            manifest = _oci_manifest(image.id, len(config_bytes), diff_ids, layer_sizes)
            manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
            _add_blob(tar, manifest_digest, manifest, written)
            descriptor = {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest)}
            for ref in image.references:
                descriptors.append({**descriptor, "annotations": {
                    "io.containerd.image.name": ref.full(), "org.opencontainers.image.ref.name": ref.tag}})
                if diff_ids:
                    repositories.setdefault(ref.familiar_name, {})[ref.tag] = diff_ids[-1].removeprefix("sha256:")
            if not image.references:
                descriptors.append(descriptor)
            manifest_entries.append({
                "Config": _blob_name(image.id),
                "RepoTags": [ref.familiar() for ref in image.references] or None,
                "Layers": [_blob_name(diff_id) for diff_id in diff_ids],
            })
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        _file(tar, "index.json", _json(index))
        _file(tar, "manifest.json", _json(manifest_entries))
        _file(tar, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        if repositories:
            _file(tar, "repositories", _json(repositories))


def _oci_manifest(config_digest: str, config_size: int, diff_ids: list, sizes: list) -> bytes:
    return _json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": OCI_LAYER, "digest": diff_id, "size": size}
                   for diff_id, size in zip(diff_ids, sizes)],
    })


def _add_layer(store, tar, diff_id: str, written: set) -> int:
    """Adds the layer's plain tar as blobs/sha256/<diff id hex> (once); returns its size."""
    blobs = store.layer_blobs(diff_id)
    plain = next((b for b in blobs if b["digest"] == diff_id), None)
    if plain is not None:
        size = store.blobs.size(diff_id)
        if diff_id not in written:
            with store.blobs.open(diff_id) as source:
                _add_stream(tar, _blob_name(diff_id), source, size)
            written.add(diff_id)
        return size
    if not blobs:
        raise MinictrError(
            f"layer {diff_id} has no stored tar (it was stored before minictr kept layer tars): "
            "remove the image and load or pull it again")
    with tempfile.TemporaryFile(dir=store.tmp_dir) as spool:
        digest = hashlib.sha256()
        with store.blobs.open(blobs[0]["digest"]) as compressed:
            plain_stream = open_decompressed(compressed)
            while chunk := plain_stream.read(_CHUNK):
                digest.update(chunk)
                spool.write(chunk)
        if "sha256:" + digest.hexdigest() != diff_id:
            raise MinictrError(f"blob {blobs[0]['digest']} does not decompress to layer {diff_id}: "
                               "the store is damaged; remove the image and pull it again")
        size = spool.tell()
        if diff_id not in written:
            spool.seek(0)
            _add_stream(tar, _blob_name(diff_id), spool, size)
            written.add(diff_id)
        return size


def _add_blob(tar, digest: str, data: bytes, written: set) -> None:
    if digest not in written:
        _file(tar, _blob_name(digest), data)
        written.add(digest)


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _directory(tar, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def _file(tar, name: str, data: bytes) -> None:
    _add_stream(tar, name, io.BytesIO(data), len(data))


def _add_stream(tar, name: str, source, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    tar.addfile(info, source)
