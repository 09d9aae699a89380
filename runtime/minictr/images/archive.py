"""Reading images from tars: `docker import` (a rootfs tar) and `docker load` (a `docker save`
archive, legacy or OCI-layout form, or a pure OCI image layout).

Everything here only stages: layers are extracted into temporary directories
and configs kept in memory, as `PendingImage`s that the store commits in one
transaction (or discards).
"""

import hashlib
import json
import os
import platform
import posixpath
import re
import shlex
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from minictr.errors import InvalidArgument
from minictr.spec import health
from minictr.spec import reference as references
from minictr.spec.times import rfc3339
from minictr.images.layers import (
    DEFAULT_MAX_SIZE, StagedLayer, detect_compression, extract_layer, open_decompressed,
)

# A layer's bytes as they came are kept as a blob (save gives them back), when their
# compression is one a manifest can name.
_LAYER_MEDIA_TYPES = {
    None: "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
MAX_JSON_BLOB = 16 << 20  # manifests, indexes and configs are small; refuse to buffer more
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"
_SHA256_HEX = re.compile(r"[a-f0-9]{64}")


@dataclass
class PendingImage:
    """An image read from a tar, not yet in the store."""

    config_bytes: bytes  # exactly what is hashed into the image id
    layers: list  # per diff id, bottom first: a StagedLayer, or None when the store has it already
    references: list = field(default_factory=list)  # Reference objects to tag it with
    blobs: list = field(default_factory=list)  # [(diff_id, digest, media_type, size)] kept layer bytes
    parent: str = ""  # the image a commit made it from

    @property
    def id(self) -> str:
        return "sha256:" + hashlib.sha256(self.config_bytes).hexdigest()

    def discard(self) -> None:
        for layer in self.layers:
            if layer is not None and not layer.installed:
                layer.discard()


# --- docker import ---------------------------------------------------------------


def read_import(stream, changes: list[str], message: str, layers_dir: Path, *, rootless: bool,
                max_size: int = DEFAULT_MAX_SIZE, blobs=None) -> PendingImage:
    """Stage a plain rootfs tar (maybe compressed) as a one-layer image, as `docker import`."""
    container_config = config_from_changes(changes)  # before reading: a bad change costs nothing
    layer, blob, _ = extract_keeping_blob(stream, layers_dir, blobs, rootless=rootless, max_size=max_size,
                                          what="the input")
    created = rfc3339_now()
    document = {
        "architecture": host_architecture(),
        "comment": message,
        "config": container_config,
        "created": created,
        "history": [{"created": created, "comment": message or "Imported from -"}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
    }
    config_bytes = json.dumps(document, separators=(",", ":")).encode()
    return PendingImage(config_bytes, [layer], blobs=[blob] if blob else [])


def extract_keeping_blob(stream, layers_dir: Path, blobs, *, rootless: bool, max_size: int, what: str):
    """Extract a layer and keep its bytes, exactly as they came, in `blobs` (a BlobStore; None: not
    kept). Returns (StagedLayer, (diff_id, digest, media_type, size) or None, whether this
    call created the blob)."""
    if blobs is None:
        return extract_layer(stream, layers_dir, rootless=rootless, max_size=max_size, what=what), None, False
    with blobs.writer(max_size=max_size, what=what) as writer:
        layer = extract_layer(stream, layers_dir, rootless=rootless, max_size=max_size, what=what, keep=writer)
    with blobs.open(writer.digest) as kept:
        media_type = _LAYER_MEDIA_TYPES.get(detect_compression(kept.read(6)), "")
    if not media_type:  # bzip2 or xz: no manifest names those; save writes the plain tar instead
        if writer.created:
            blobs.remove(writer.digest)
        return layer, None, False
    return layer, (layer.diff_id, writer.digest, media_type, writer.size), writer.created


def config_from_changes(changes: list[str]) -> dict:
    """The image's container config from Dockerfile-like lines (`docker import --change`).

    Without changes there is no Cmd, as with `docker import`."""
    config: dict = {}
    for change in changes:
        instruction, _, argument = change.strip().partition(" ")
        apply = _CHANGE_INSTRUCTIONS.get(instruction.upper())
        if apply is None:
            raise InvalidArgument(f"{instruction or change!r} is not a valid change command")
        argument = argument.strip()
        if not argument:
            raise InvalidArgument(f"{instruction.upper()} requires an argument")
        apply(config, argument)
    return config


def _command(argument: str) -> list[str]:
    """JSON-array form as is; shell form (or an unparseable array, as Docker) through /bin/sh -c."""
    if argument.startswith("["):
        try:
            words = json.loads(argument)
        except ValueError:
            words = None
        if isinstance(words, list) and all(isinstance(w, str) for w in words):
            return words
    return ["/bin/sh", "-c", argument]


def _key_values(argument: str, instruction: str) -> list[tuple[str, str]]:
    """`K=V K2="a b"`, or the legacy `K V…` form (one pair, the rest of the line is V)."""
    first = argument.split(None, 1)[0]
    if "=" not in first:
        parts = argument.split(None, 1)
        if len(parts) < 2:
            raise InvalidArgument(f"{instruction} {argument}: expected KEY=VALUE or KEY VALUE")
        return [(parts[0], parts[1].strip())]
    pairs = []
    for word in shlex.split(argument):
        key, equals, value = word.partition("=")
        if not equals or not key:
            raise InvalidArgument(f"{instruction} {argument}: `{word}` is not KEY=VALUE")
        pairs.append((key, value))
    return pairs


def _set_env(config: dict, argument: str) -> None:
    env = config.setdefault("Env", [])
    for key, value in _key_values(argument, "ENV"):
        env[:] = [item for item in env if item.partition("=")[0] != key]
        env.append(f"{key}={value}")


def _set_labels(config: dict, argument: str) -> None:
    config.setdefault("Labels", {}).update(_key_values(argument, "LABEL"))


def _set_exposed_ports(config: dict, argument: str) -> None:
    ports = config.setdefault("ExposedPorts", {})
    for word in argument.split():
        port, _, protocol = word.partition("/")
        protocol = (protocol or "tcp").lower()
        low, _, high = port.partition("-")
        if protocol not in ("tcp", "udp", "sctp") or not _valid_port(low) or (high and not _valid_port(high)):
            raise InvalidArgument(f"EXPOSE: invalid port `{word}`")
        ports[f"{port}/{protocol}"] = {}


def _valid_port(text: str) -> bool:
    return text.isdigit() and 0 < int(text) < 65536


def _set_volumes(config: dict, argument: str) -> None:
    paths = _command(argument) if argument.startswith("[") else argument.split()
    if paths[:2] == ["/bin/sh", "-c"]:
        raise InvalidArgument(f"VOLUME {argument}: not a JSON array of paths")
    volumes = config.setdefault("Volumes", {})
    for path in paths:
        volumes[path] = {}


def _set_single(key: str, instruction: str):
    def apply(config: dict, argument: str) -> None:
        if instruction in ("USER", "STOPSIGNAL") and len(argument.split()) != 1:
            raise InvalidArgument(f"{instruction} takes exactly one argument")
        config[key] = argument

    return apply


_CHANGE_INSTRUCTIONS = {
    "CMD": lambda config, argument: config.__setitem__("Cmd", _command(argument)),
    "ENTRYPOINT": lambda config, argument: config.__setitem__("Entrypoint", _command(argument)),
    "ENV": _set_env,
    "LABEL": _set_labels,
    "EXPOSE": _set_exposed_ports,
    "VOLUME": _set_volumes,
    "WORKDIR": _set_single("WorkingDir", "WORKDIR"),
    "USER": _set_single("User", "USER"),
    "STOPSIGNAL": _set_single("StopSignal", "STOPSIGNAL"),
    "HEALTHCHECK": lambda config, argument: config.__setitem__("Healthcheck", health.parse_instruction(argument)),
}


# --- docker load -----------------------------------------------------------------


def read_load(stream, tmp_dir: Path, layers_dir: Path, *, rootless: bool, has_layer,
              max_size: int = DEFAULT_MAX_SIZE, blobs=None) -> list[PendingImage]:
    """Stage every image of a `docker save` archive or OCI image layout.

    Every blob is checked against its digest; `has_layer(diff_id)` says which
    layers the store already holds (those are not extracted again).
    """
    with _seekable(stream, tmp_dir, max_size) as spooled:
        try:
            archive = tarfile.open(fileobj=spooled, mode="r:")
        except tarfile.ReadError:
            raise InvalidArgument(_not_a_tar_to_load(spooled)) from None
        with archive:
            reader = _ArchiveReader(archive, layers_dir, rootless, has_layer, max_size, blobs)
            try:
                if reader.has("manifest.json"):
                    return reader.load_docker_save()
                if reader.has("index.json"):
                    return reader.load_oci_layout()
            except BaseException:
                reader.discard()
                raise
            raise InvalidArgument(
                "the archive has neither manifest.json nor index.json: "
                "it is not a docker save archive or an OCI image layout"
            )


def _not_a_tar_to_load(spooled) -> str:
    """Docker 20.10's words for a `load` of what is not a tar: its re-executed untar's exit, and
    what Go's archive/tar says of the first 512-byte block (short: unexpected EOF). An empty
    input is no tar either here (Docker fails later, on a missing file of its temporary dir)."""
    size = spooled.seek(0, os.SEEK_END)
    if size == 0:
        return "the input is not a tar archive: it is empty"
    reason = "unexpected EOF" if size < 512 else "archive/tar: invalid tar header"
    return f"Error processing tar file(exit status 1): {reason}"


class _seekable:
    """The uncompressed archive as a seekable file: the stream itself when it already is
    one, else a copy in an unnamed temporary file under the data root (gone on close,
    and even on a crash)."""

    def __init__(self, stream, tmp_dir: Path, max_size: int):
        self._stream, self._tmp_dir, self._max = stream, tmp_dir, max_size
        self._spool = None

    def __enter__(self):
        if _is_seekable(self._stream):
            start = self._stream.tell()
            head = self._stream.read(6)
            self._stream.seek(start)
            if detect_compression(head) is None:
                return self._stream
        self._spool = tempfile.TemporaryFile(dir=self._tmp_dir)
        source = open_decompressed(self._stream)
        copied = 0
        while chunk := source.read(1 << 20):
            copied += len(chunk)
            if copied > self._max:
                raise InvalidArgument(f"the archive is larger than the limit of {self._max} bytes")
            self._spool.write(chunk)
        self._spool.seek(0)
        return self._spool

    def __exit__(self, *exc):
        if self._spool is not None:
            self._spool.close()


def _is_seekable(stream) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


class _ArchiveReader:
    def __init__(self, archive, layers_dir, rootless, has_layer, max_size, blobs=None):
        self.archive = archive
        self.blobs = blobs
        self.kept: dict[str, tuple] = {}  # diff id -> its blob record
        self.layers_dir = layers_dir
        self.rootless = rootless
        self.has_layer = has_layer
        self.max_size = max_size
        self.members = {}
        for member in archive.getmembers():
            self.members.setdefault(posixpath.normpath(member.name.lstrip("/")), member)
        self.staged: dict[str, StagedLayer] = {}  # a layer shared by two images is extracted once
        self.created_blobs: set = set()

    def has(self, name: str) -> bool:
        return name in self.members

    def discard(self) -> None:
        for layer in self.staged.values():
            if not layer.installed:
                layer.discard()
        for _, digest, _, _ in self.kept.values():  # nothing of this archive was recorded yet
            if digest in self.created_blobs:
                self.blobs.remove(digest)

    # --- the two formats ---

    def load_docker_save(self) -> list[PendingImage]:
        manifest = self._json(self._read("manifest.json"), "manifest.json")
        if not isinstance(manifest, list):
            raise InvalidArgument("manifest.json is not a list of images")
        images = []
        for entry in manifest:
            config_path = entry.get("Config", "")
            config_bytes = self._read(config_path)
            self._check_named_digest(config_path, "sha256:" + hashlib.sha256(config_bytes).hexdigest())
            layers = self._stage_layers(config_bytes, config_path,
                                        [(path, _digest_in_path(path)) for path in entry.get("Layers") or []])
            tags = [references.parse(tag) for tag in entry.get("RepoTags") or []]
            images.append(PendingImage(config_bytes, layers, tags, self._blobs_of(config_bytes)))
        return images

    def load_oci_layout(self) -> list[PendingImage]:
        index = self._json(self._read("index.json"), "index.json")
        images = []
        for descriptor in index.get("manifests") or []:
            manifest_descriptor = self._select_platform(descriptor)
            manifest = self._json(self._read_blob(manifest_descriptor), manifest_descriptor["digest"])
            config_descriptor = manifest.get("config") or {}
            config_bytes = self._read_blob(config_descriptor)
            layer_sources = [(self._blob_path(d), d.get("digest")) for d in manifest.get("layers") or []]
            layers = self._stage_layers(config_bytes, config_descriptor.get("digest"), layer_sources)
            images.append(PendingImage(config_bytes, layers, _oci_references(descriptor),
                                       self._blobs_of(config_bytes)))
        return images

    # --- pieces ---

    def _stage_layers(self, config_bytes: bytes, config_name: str, sources) -> list:
        config = self._json(config_bytes, config_name)
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(sources):
            raise InvalidArgument(
                f"{config_name} lists {len(diff_ids)} layers but the manifest has {len(sources)}"
            )
        layers = []
        for (path, digest), diff_id in zip(sources, diff_ids):
            layers.append(self._stage_layer(path, digest, diff_id))
        return layers

    def _blobs_of(self, config_bytes) -> list:
        diff_ids = (self._json(config_bytes, "the config").get("rootfs") or {}).get("diff_ids") or []
        return [self.kept[d] for d in dict.fromkeys(diff_ids) if d in self.kept]

    def _stage_layer(self, path: str, digest: str | None, diff_id: str):
        if diff_id in self.staged:
            return self.staged[diff_id]
        if self.has_layer(diff_id):
            return None
        stream = self.archive.extractfile(self._member(path))
        layer, blob, created = extract_keeping_blob(stream, self.layers_dir, self.blobs, rootless=self.rootless,
                                                    max_size=self.max_size, what=path)
        self.staged[layer.diff_id] = layer
        if blob is not None:
            self.kept[layer.diff_id] = blob
        if created:
            self.created_blobs.add(blob[1])
        if digest is not None and layer.digest != digest:
            raise InvalidArgument(f"{path}: digest mismatch: expected {digest}, got {layer.digest}")
        if layer.diff_id != diff_id:
            raise InvalidArgument(f"{path}: diff id mismatch: the config says {diff_id}, got {layer.diff_id}")
        return layer

    def _select_platform(self, descriptor: dict) -> dict:
        """A manifest descriptor; for an index, the one for this machine's platform."""
        if descriptor.get("mediaType") not in (OCI_INDEX, DOCKER_MANIFEST_LIST):
            return descriptor
        index = self._json(self._read_blob(descriptor), descriptor["digest"])
        candidates = [d for d in index.get("manifests") or []
                      if (d.get("platform") or {}).get("os", "linux") == "linux"
                      and (d.get("platform") or {}).get("architecture", host_architecture()) == host_architecture()]
        if not candidates:
            raise InvalidArgument(f"{descriptor['digest']}: no image for linux/{host_architecture()}")
        return self._select_platform(candidates[0])

    def _read_blob(self, descriptor: dict) -> bytes:
        data = self._read(self._blob_path(descriptor))
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != descriptor["digest"]:
            raise InvalidArgument(f"blob {descriptor['digest']}: digest mismatch: got {actual}")
        return data

    def _blob_path(self, descriptor: dict) -> str:
        digest = descriptor.get("digest") or ""
        algorithm, _, hex_part = digest.partition(":")
        if algorithm != "sha256" or not _SHA256_HEX.fullmatch(hex_part):
            raise InvalidArgument(f"unsupported or invalid blob digest `{digest}`")
        return f"blobs/sha256/{hex_part}"

    def _check_named_digest(self, path: str, actual: str) -> None:
        expected = _digest_in_path(path)
        if expected is not None and expected != actual:
            raise InvalidArgument(f"{path}: digest mismatch: got {actual}")

    def _member(self, path: str):
        member = self.members.get(posixpath.normpath(path.lstrip("/"))) if path else None
        if member is None:
            raise InvalidArgument(f"the archive has no `{path}`")
        return member

    def _read(self, path: str) -> bytes:
        member = self._member(path)
        stream = self.archive.extractfile(member)
        if stream is None:
            raise InvalidArgument(f"`{path}` in the archive is not a file")
        data = stream.read(MAX_JSON_BLOB + 1)
        if len(data) > MAX_JSON_BLOB:
            raise InvalidArgument(f"`{path}` in the archive is too large")
        return data

    @staticmethod
    def _json(data: bytes, name: str):
        try:
            return json.loads(data)
        except ValueError as error:
            raise InvalidArgument(f"{name} is not valid JSON: {error}") from None


def _digest_in_path(path: str) -> str | None:
    """`blobs/sha256/<hex>` and the legacy `<hex>.json` name their content's digest."""
    name = posixpath.basename(path).removesuffix(".json")
    parent = posixpath.basename(posixpath.dirname(path))
    if _SHA256_HEX.fullmatch(name) and (parent == "sha256" or path.endswith(".json")):
        return "sha256:" + name
    return None


def _oci_references(descriptor: dict) -> list:
    """A name for an image of an OCI layout: containerd's full-name annotation, else
    `org.opencontainers.image.ref.name` when it is a whole reference. A bare tag
    (`latest`) names no repository, so that image loads untagged."""
    annotations = descriptor.get("annotations") or {}
    name = annotations.get(CONTAINERD_NAME_ANNOTATION)
    if name is None:
        name = annotations.get(REF_NAME_ANNOTATION, "")
        if not any(c in name for c in "/:@"):
            return []
    return [references.parse(name)]


# --- small shared facts ------------------------------------------------------------


_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
                  "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_architecture() -> str:
    machine = platform.machine()
    return _ARCHITECTURES.get(machine, machine)


def rfc3339_now() -> str:
    """Now as Go's RFC3339Nano in UTC: `2024-05-01T12:00:00.123456789Z`."""
    return rfc3339(trimmed=True)
