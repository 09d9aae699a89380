"""`docker push`: an image's layer blobs, its config, then its manifest, to a registry.

Each layer goes as the blob the store keeps for it: the compressed blob it was
pulled as (so its digest is the one the registry already knows), else its plain
tar gzip-compressed once (deterministically, mtime 0) and kept beside it, as
Docker compresses layers it built or loaded. Before uploading a blob the
registry is asked whether the repository has it (HEAD); when the image came
from another repository of the same registry, a cross-repository mount
(`POST …/uploads/?mount=&from=`, with a token that may also pull FROM) saves
the upload; a mount the registry refuses (401, 403, anything but 201) falls
back to a plain upload, as Docker does. Blobs up to
`chunk_size` go in one PUT (monolithic upload), bigger ones in PATCH chunks
followed by the closing PUT.

The manifest is Docker's v2 schema 2 when every layer has a Docker media
type, OCI's when any has an OCI one (zstd layers exist only there).
"""

import gzip
import hashlib
import json
import tempfile

from minictr.errors import InvalidArgument, NotFound
from minictr.images.registry import RegistryClient, RegistryError, RegistrySettings, Unauthorized, _check_status
from minictr.spec import reference as references

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
_COMPRESSED = ("gzip", "zstd")


class Pusher:
    def __init__(self, store, credentials=None, settings: RegistrySettings = RegistrySettings(), progress=None):
        from minictr.images.pull import _Progress

        self.store = store
        self.credentials = credentials
        self.settings = settings
        self.progress = _Progress(progress)
        self.chunk_size = settings.push_chunk_size

    def push_all_tags(self, name: str) -> dict:
        """`docker push --all-tags` (the API's push without a tag): each local tag of the repository
        `name`, in order; returns push's dict for the last."""
        ref = references.parse(name, default_tag=False)
        prefix = ref.name + ":"
        stored = self.store.db.query("SELECT reference FROM image_references")
        tags = sorted(row["reference"][len(prefix):] for row in stored if row["reference"].startswith(prefix))
        if not tags:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
        result = None
        for index, tag in enumerate(tags):
            result = self.push(f"{ref.name}:{tag}", announce=index == 0)
        return result

    def push(self, text: str, announce: bool = True) -> dict:
        """Push the local image `text` names; returns {tag, digest, size} of its manifest."""
        ref = references.parse(text)
        if ref.digest is not None:
            raise InvalidArgument(f"cannot push a digest reference: {text}")
        try:
            image_id, matched = self.store._find(ref.full())
        except NotFound:
            matched = None
        if matched is None:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
        if announce:
            self.progress.status(f"The push refers to repository [{ref.name}]")
        config_bytes = self.store._config_path(image_id).read_bytes()
        diff_ids = json.loads(config_bytes)["rootfs"]["diff_ids"]
        layers = [self._layer_blob(diff_id) for diff_id in diff_ids]
        with RegistryClient(ref.domain, self.credentials, self.settings) as client:
            for diff_id, _ in zip(diff_ids, layers):
                self.progress.status("Preparing", _short(diff_id))
            layers = [self._push_layer(client, ref.path, _short(diff_id), diff_id, layer,
                                       self._mount_sources(diff_id, ref))
                      for diff_id, layer in zip(diff_ids, layers)]
            config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
            if client.head_blob(ref.path, config_digest, actions=("pull", "push")) is None:
                self._upload(client, ref.path, config_digest, len(config_bytes), lambda: _BytesReader(config_bytes), None)
            manifest = self._manifest(config_digest, len(config_bytes), layers)
            media_type = json.loads(manifest)["mediaType"]
            digest = client.put_manifest(ref.path, ref.tag, manifest, media_type)
        self._record_digest(image_id, ref, digest)
        self.progress.status(f"{ref.tag}: digest: {digest} size: {len(manifest)}")
        self.progress._emit({"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": digest, "Size": len(manifest)}})
        return {"tag": ref.tag, "digest": digest, "size": len(manifest)}

    # --- layers ---

    def _layer_blob(self, diff_id: str) -> dict:
        """{digest, media_type, size} of the blob to push for a layer (compressing it if need be)."""
        blobs = self.store.layer_blobs(diff_id)
        compressed = [b for b in blobs if any(kind in b["media_type"] for kind in _COMPRESSED)]
        if compressed:
            return compressed[0]
        plain = next((b for b in blobs if b["digest"] == diff_id), None)
        if plain is None:
            raise RegistryError(f"layer {diff_id} has no stored tar (it was stored before minictr kept layer "
                                "tars): remove the image and load or pull it again")
        return self._compress(diff_id)

    def _compress(self, diff_id: str) -> dict:
        blobs = self.store.blobs
        with blobs.open(diff_id) as source, tempfile.TemporaryFile(dir=self.store.tmp_dir) as spool:
            # mtime 0 and no name: the same layer always compresses to the same digest
            with gzip.GzipFile(fileobj=spool, mode="wb", mtime=0, filename="") as packed:
                while chunk := source.read(1 << 20):
                    packed.write(chunk)
            spool.seek(0)
            with blobs.writer(what=f"the compressed layer {diff_id}") as writer:
                while chunk := spool.read(1 << 20):
                    writer.write(chunk)
        blob = {"digest": writer.digest, "media_type": DOCKER_LAYER_GZIP, "size": writer.size}
        with self.store._lock:
            if self.store.has_layer(diff_id):
                with self.store.db.transaction() as cur:
                    cur.execute("INSERT OR IGNORE INTO layer_blobs (diff_id, digest, media_type, size) "
                                "VALUES (?, ?, ?, ?)", (diff_id, blob["digest"], blob["media_type"], blob["size"]))
        return blob

    def _mount_sources(self, diff_id: str, ref) -> list[str]:
        """Repositories of the same registry that an image with this layer was pulled from or
        pushed to: where a cross-repository mount may find the blob."""
        rows = self.store.db.query(
            "SELECT DISTINCT d.repository FROM image_digests d JOIN image_layers il ON il.image_id = d.image_id "
            "WHERE il.diff_id = ? ORDER BY d.repository", (diff_id,))
        prefix = ref.domain + "/"
        return [row["repository"][len(prefix):] for row in rows
                if row["repository"].startswith(prefix) and row["repository"] != ref.name]

    def _push_layer(self, client, repository: str, short: str, diff_id: str, blob: dict, mount_from: list) -> dict:
        """Make the registry hold layer `diff_id`; returns the blob descriptor the manifest names. A digest
        the layer was pulled as is tried first (the registry may have it, or mount it from the repository it
        came from), then the local blob, which is uploaded if nothing else worked."""
        known = [b for b in self.store.known_layer_blobs(diff_id)
                 if b["digest"] != blob["digest"] and any(kind in b["media_type"] for kind in _COMPRESSED)]
        for candidate in known + [blob]:
            if client.head_blob(repository, candidate["digest"], actions=("pull", "push")) is not None:
                self.progress.status("Layer already exists", short)
                return candidate
        for candidate in known + [blob]:
            for source in mount_from:
                try:
                    response = client.request("POST", repository, f"/v2/{repository}/blobs/uploads/",
                                              actions=("pull", "push"), also=(f"repository:{source}:pull",),
                                              params={"mount": candidate["digest"], "from": source})
                except Unauthorized:
                    continue  # the credentials do not reach `source`: the blob is uploaded instead
                if response.status_code == 201:
                    self.progress.status(f"Mounted from {source}", short)
                    return candidate
                if response.status_code == 202 and candidate is blob:
                    # No mount: the registry opened an upload instead; send the local blob into it.
                    self._send(client, repository, blob["digest"], blob["size"],
                               lambda: self.store.blobs.open(blob["digest"]), short,
                               client.absolute(response.headers["location"]))
                    self.progress.status("Pushed", short)
                    return blob
        self._upload(client, repository, blob["digest"], blob["size"], lambda: self.store.blobs.open(blob["digest"]),
                     short)
        self.progress.status("Pushed", short)
        return blob

    def _upload(self, client, repository: str, digest: str, size: int, open_source, short) -> None:
        response = client.request("POST", repository, f"/v2/{repository}/blobs/uploads/", actions=("pull", "push"))
        _check_status(response, f"POST blob upload to {repository}", expected=(202,))
        self._send(client, repository, digest, size, open_source, short, client.absolute(response.headers["location"]))

    def _send(self, client, repository: str, digest: str, size: int, open_source, short, location: str) -> None:
        """The blob's bytes to an open upload: one PUT, or PATCH chunks and a closing PUT."""
        with open_source() as source:
            if size <= self.chunk_size:
                data = source.read()
                self._bar(short, size, size)
                response = client.request("PUT", repository, "", actions=("pull", "push"),
                                          url=_with_digest(location, digest), content=data,
                                          headers={"Content-Type": "application/octet-stream"})
                _check_status(response, f"PUT blob {digest}", expected=(201,))
                return
            offset = 0
            while chunk := source.read(self.chunk_size):
                response = client.request(
                    "PATCH", repository, "", actions=("pull", "push"), url=location, content=chunk,
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
                _check_status(response, f"PATCH blob {digest}", expected=(202,))
                location = client.absolute(response.headers["location"])
                offset += len(chunk)
                self._bar(short, offset, size)
        response = client.request("PUT", repository, "", actions=("pull", "push"),
                                  url=_with_digest(location, digest), content=b"")
        _check_status(response, f"PUT blob {digest}", expected=(201,))

    def _bar(self, short, current: int, total: int) -> None:
        if short is not None:
            self.progress.bar("Pushing", short, current, total, final=current >= total)

    # --- manifest ---

    @staticmethod
    def _manifest(config_digest: str, config_size: int, layers: list) -> bytes:
        oci = any(layer["media_type"].startswith("application/vnd.oci.") for layer in layers)
        if oci:
            layer_types = [_oci_type(layer["media_type"]) for layer in layers]
        else:
            layer_types = [layer["media_type"] for layer in layers]
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
            "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "size": config_size,
                       "digest": config_digest},
            "layers": [{"mediaType": media_type, "size": layer["size"], "digest": layer["digest"]}
                       for media_type, layer in zip(layer_types, layers)],
        }
        return json.dumps(manifest, indent=3).encode()

    def _record_digest(self, image_id: str, ref, digest: str) -> None:
        """RepoDigests gains `name@digest`, as after a docker push."""
        with self.store._lock:
            if self.store.db.query_one("SELECT 1 FROM images WHERE id = ?", (image_id,)) is None:
                return
            with self.store.db.transaction() as cur:
                cur.execute("INSERT OR REPLACE INTO image_digests (image_id, repository, digest) VALUES (?, ?, ?)",
                            (image_id, ref.name, digest))


def _oci_type(media_type: str) -> str:
    return {DOCKER_LAYER_GZIP: OCI_LAYER_GZIP, DOCKER_LAYER_TAR: "application/vnd.oci.image.layer.v1.tar"}.get(
        media_type, media_type)


def _with_digest(location: str, digest: str) -> str:
    # The upload's Location carries its own state in the query (`_state=…`): keep it.
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


class _BytesReader:
    def __init__(self, data: bytes):
        self._data = data

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            data, self._data = self._data, b""
        else:
            data, self._data = self._data[:size], self._data[size:]
        return data
