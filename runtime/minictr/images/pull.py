"""`docker pull`: a manifest (or an index and the manifest for a platform), its config and
its layers from a registry into the image store.

Everything that arrives is checked against the digest it was named by while it
streams (manifests, the config, each layer blob), within size bounds; each
layer's uncompressed tar must hash to the config's diff id. Layers the store
has (by diff id) are not fetched, blobs it has are not downloaded again.
Layers download in parallel (three at a time, as Docker), each retried on
transient failures. Nothing is visible until one store transaction records
the image: a pull that fails removes what it staged and leaves the store as
it was.

Progress goes to a callback as the Engine API's JSON messages, the ones
`docker pull` renders.
"""

import json
import platform as host
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from minictr.errors import InvalidArgument, MinictrError, NotFound
from minictr.spec import reference as references
from minictr.images.archive import PendingImage, host_architecture
from minictr.images.blobs import DigestMismatch, check_digest
from minictr.images.layers import extract_layer
from minictr.images.registry import (
    INDEX_TYPES, MANIFEST_TYPES, Credentials, RegistryClient, RegistryError, RegistrySettings, TransientError,
    Unauthorized,
)

MAX_CONFIG_SIZE = 8 << 20
PARALLEL_DOWNLOADS = 3
ATTEMPTS = 3
RETRY_PAUSE = 0.5  # seconds, times the attempt's number
_SCHEMA1_TYPES = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
_PROGRESS_INTERVAL = 0.1  # seconds between two progress lines of one layer


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self):
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def host_platform() -> Platform:
    architecture = host_architecture()
    variant = ""
    if architecture == "arm64":
        variant = "v8"
    elif architecture == "arm":
        variant = "v" + (host.machine().removeprefix("armv")[:1] or "7")
    return Platform("linux", architecture, variant)


def parse_platform(text: str | None) -> Platform | None:
    """`os/arch[/variant]` (Docker's --platform); None or "" is the host's, chosen later."""
    if not text:
        return None
    parts = text.lower().split("/")
    if len(parts) not in (2, 3) or not all(parts) or not all(p.replace("_", "").replace("-", "").isalnum()
                                                              for p in parts):
        raise InvalidArgument(f"invalid platform `{text}`: expected os/arch[/variant], e.g. linux/arm64")
    os_name, architecture = parts[0], {"x86_64": "amd64", "aarch64": "arm64"}.get(parts[1], parts[1])
    variant = parts[2] if len(parts) == 3 else ""
    if architecture == "arm64" and variant in ("", "v8"):
        variant = "v8"
    return Platform(os_name, architecture, variant)


def select_manifest(index: dict, wanted: Platform, name: str) -> dict:
    """The descriptor of the manifest for `wanted` in an index or manifest list.

    An exact variant wins; a descriptor without a variant matches too (arm64's v8 is implied)."""
    offered = []
    best = None
    for descriptor in index.get("manifests") or []:
        if not isinstance(descriptor, dict) or descriptor.get("mediaType") not in MANIFEST_TYPES + (None,):
            continue
        p = descriptor.get("platform") or {}
        offered_platform = Platform(p.get("os", ""), p.get("architecture", ""), p.get("variant", "") or "")
        if offered_platform.os == "unknown":
            continue  # attestation manifests (buildx) are no image
        offered.append(str(offered_platform))
        if (offered_platform.os, offered_platform.architecture) != (wanted.os, wanted.architecture):
            continue
        variant = offered_platform.variant or ("v8" if offered_platform.architecture == "arm64" else "")
        if variant == wanted.variant:
            return descriptor
        if not offered_platform.variant and best is None:
            best = descriptor
    if best is not None:
        return best
    raise NotFound(f"no matching manifest for {wanted} in the manifest list entries of {name} "
                   f"(it offers {', '.join(offered) or 'none'})")


class _Progress:
    """Docker's JSON progress messages, and a rate limit for the noisy ones."""

    def __init__(self, emit):
        self._emit = emit or (lambda message: None)
        self._last = {}
        self._lock = threading.Lock()

    def status(self, text: str, id_: str | None = None) -> None:
        message = {"status": text}
        if id_ is not None:
            message = {"status": text, "progressDetail": {}, "id": id_}
        self._emit(message)

    def bar(self, status: str, id_: str, current: int, total: int, final: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not final and now - self._last.get((id_, status), 0) < _PROGRESS_INTERVAL:
                return
            self._last[(id_, status)] = now
        detail = {"current": current, "total": total} if total > 0 else {"current": current}
        self._emit({"status": status, "progressDetail": detail, "progress": progress_bar(current, total),
                    "id": id_})


def progress_bar(current: int, total: int, width: int = 50) -> str:
    """As Docker's jsonmessage renders it: `[=====>      ]  1.2MB/3.4MB`."""
    if total <= 0:
        return f"{human_size(current):>8}"
    filled = min(width, int(width * current / total))
    arrow = ">" if filled < width else "="
    box = "=" * filled + arrow + " " * (width - filled)
    return f"[{box[:width + 1]}] {human_size(current):>8}/{human_size(total)}"


def human_size(size: float) -> str:
    """Docker's units.HumanSize: decimal units, four significant digits (`1.234MB`)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    return f"{size:.4g}{units[index]}"


@dataclass
class _Layer:
    position: int
    diff_id: str
    digest: str
    media_type: str
    size: int
    short: str  # the progress id: 12 hex digits of the blob's digest
    staged: object = None
    blob_created: bool = False


class Puller:
    def __init__(self, store, credentials: Credentials | None = None, settings: RegistrySettings = RegistrySettings(),
                 progress=None, parallel: int = PARALLEL_DOWNLOADS, transport=None):
        self.transport = transport  # tests: an httpx transport standing in for the network
        self.store = store
        self.credentials = credentials
        self.settings = settings
        self.progress = _Progress(progress)
        self.parallel = parallel
        self._failed = threading.Event()  # one layer failed: the others stop downloading

    def pull(self, text: str, platform: str | None = None) -> dict:
        """Pull `text` (a reference; `latest` when it has no tag). Returns
        {"id", "digest", "reference" (familiar), "updated"}."""
        ref = references.parse(text)
        wanted = parse_platform(platform)
        with RegistryClient(ref.domain, self.credentials, self.settings, transport=self.transport) as client:
            try:
                return self._pull(client, ref, wanted)
            except Unauthorized as error:
                if client.credentials:
                    raise
                raise MinictrError(f"pull access denied for {ref.familiar_name}, repository does not exist "
                                   f"or may require 'minictr login': {error}") from None

    def pull_all_tags(self, text: str, platform: str | None = None) -> dict:
        """`docker pull --all-tags` (the API's fromImage without a tag): every tag the registry lists for
        the repository, and one Status line for them all, as Docker. Returns pull's dict for the last."""
        ref = references.parse(text, default_tag=False)
        wanted = parse_platform(platform)
        with RegistryClient(ref.domain, self.credentials, self.settings, transport=self.transport) as client:
            try:
                tags = client.list_tags(ref.path)
                if not tags:
                    raise NotFound(f"no tags found for {ref.familiar_name}")
                results = [self._pull(client, references.parse(f"{ref.name}:{tag}"), wanted, final_status=False)
                           for tag in tags]
            except Unauthorized as error:
                if client.credentials:
                    raise
                raise MinictrError(f"pull access denied for {ref.familiar_name}, repository does not exist "
                                   f"or may require 'minictr login': {error}") from None
        updated = any(result["updated"] for result in results)
        shown = ref.familiar_name
        self.progress.status(f"Status: {'Downloaded newer image' if updated else 'Image is up to date'} for {shown}")
        return dict(results[-1], reference=shown, updated=updated)

    def _pull(self, client, ref, wanted, final_status=True) -> dict:
        repository = ref.path
        try:
            data, media_type, top_digest = client.get_manifest(repository, ref.digest or ref.tag)
        except NotFound:  # named as the user wrote it, registry included (Docker's words)
            raise NotFound(f"manifest for {ref.familiar()} not found: manifest unknown: manifest unknown") from None
        self.progress.status(f"Pulling from {repository}", ref.digest or ref.tag)
        manifest, media_type = _json(data, "the manifest"), media_type
        if media_type in _SCHEMA1_TYPES or manifest.get("schemaVersion") == 1:
            raise InvalidArgument(f"{ref.familiar()}: Docker image manifest v1 (schema 1) is not supported")
        if media_type in INDEX_TYPES or "manifests" in manifest:
            descriptor = select_manifest(manifest, wanted or host_platform(), ref.familiar())
            data, media_type, _ = client.get_manifest(repository, check_digest(descriptor.get("digest")))
            manifest = _json(data, "the manifest")
        config_descriptor, layers = _parse_manifest(manifest)
        config_bytes = self._fetch_config(client, repository, config_descriptor)
        config = _json(config_bytes, "the image config")
        if wanted is not None:
            _check_config_platform(config, wanted, ref.familiar())
        diff_ids = (config.get("rootfs") or {}).get("diff_ids")
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
            raise InvalidArgument(f"{ref.familiar()}: the config's rootfs.diff_ids do not match the manifest's "
                                  f"{len(layers)} layers")
        image_id = config_descriptor["digest"]
        before = self._current(ref)
        pending_layers = [_Layer(i, check_digest(diff_id), check_digest(d["digest"]), d.get("mediaType") or "",
                                 d.get("size") or 0, d["digest"][7:19])
                          for i, (diff_id, d) in enumerate(zip(diff_ids, layers))]
        try:
            self._fetch_layers(client, repository, pending_layers)
            pending = PendingImage(config_bytes, _staged_per_position(pending_layers),
                                   [ref] if ref.tag is not None else [])
            described = [(layer.diff_id, layer.digest, layer.media_type, layer.size) for layer in pending_layers]
            pending.blobs = [d for d in described if self.store.blobs.has(d[1])]
            # The registry's digests of layers that were already here (their blobs not fetched): a push to the
            # same registry can then skip or mount them instead of uploading a recompressed copy.
            pending.remote_blobs = [d for d in described if d not in pending.blobs]
            pending.digests = [(ref.name, top_digest)]
            self.store.add_pulled(pending)
        except BaseException:
            for layer in pending_layers:
                if layer.staged is not None and not layer.staged.installed:
                    layer.staged.discard()
            self.store.forget_unrecorded_blobs([layer.digest for layer in pending_layers if layer.blob_created])
            raise
        shown = f"{ref.familiar_name}@{ref.digest}" if ref.digest else ref.familiar()
        self.progress.status(f"Digest: {top_digest}")
        updated = before != image_id
        if final_status:
            self.progress.status(f"Status: {'Downloaded newer image' if updated else 'Image is up to date'} for {shown}")
        return {"id": image_id, "digest": top_digest, "reference": shown, "updated": updated}

    def _current(self, ref):
        try:
            return self.store.resolve(ref.full() if ref.tag else f"{ref.name}@{ref.digest}").id
        except (NotFound, InvalidArgument):
            return None

    def _fetch_config(self, client, repository: str, descriptor: dict) -> bytes:
        digest = descriptor["digest"]
        size = descriptor.get("size")
        if isinstance(size, int) and size > MAX_CONFIG_SIZE:
            raise InvalidArgument(f"the image config {digest} is larger than the limit of {MAX_CONFIG_SIZE} bytes")
        import hashlib

        for attempt in _attempts():
            with attempt:
                with client.open_blob(repository, digest) as response:
                    data = bytearray()
                    for chunk in response.iter_bytes():
                        data += chunk
                        if len(data) > MAX_CONFIG_SIZE:
                            raise InvalidArgument(f"the image config {digest} is larger than the limit of "
                                                  f"{MAX_CONFIG_SIZE} bytes")
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise DigestMismatch(f"the image config does not match its digest: expected {digest}, got {actual}")
        return bytes(data)

    def _fetch_layers(self, client, repository: str, layers: list) -> None:
        seen = set()
        todo = []
        for layer in layers:
            if layer.diff_id in seen or self.store.has_layer(layer.diff_id):
                self.progress.status("Already exists", layer.short)
            else:
                self.progress.status("Pulling fs layer", layer.short)
                todo.append(layer)
            seen.add(layer.diff_id)
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="pull") as pool:
            futures = [pool.submit(self._fetch_layer, client, repository, layer) for layer in todo]
            errors = []
            for future in futures:
                try:
                    future.result()
                except BaseException as error:  # noqa: BLE001 - the first is raised once all stopped
                    errors.append(error)
            errors = [e for e in errors if not isinstance(e, _Aborted)] or errors
            if errors:
                raise errors[0]

    def _fetch_layer(self, client, repository: str, layer: _Layer) -> None:
        if self._failed.is_set():
            raise _Aborted()
        try:
            self._fetch_and_extract(client, repository, layer)
        except BaseException:
            self._failed.set()
            raise

    def _fetch_and_extract(self, client, repository: str, layer: _Layer) -> None:
        blobs = self.store.blobs
        if blobs.has(layer.digest):
            self.progress.status("Download complete", layer.short)
            with blobs.open(layer.digest) as source:
                layer.staged = self._extract(source, layer)
        else:
            for attempt in _attempts():
                with attempt:
                    self._download_and_extract(client, repository, layer)
        if layer.staged.diff_id != layer.diff_id:
            raise DigestMismatch(f"layer {layer.digest}: its content does not match the config's diff id "
                                 f"{layer.diff_id} (got {layer.staged.diff_id})")
        total = blobs.size(layer.digest)
        self.progress.bar("Extracting", layer.short, total, total, final=True)
        self.progress.status("Pull complete", layer.short)

    def _extract(self, source, layer: _Layer):
        return extract_layer(source, self.store.layers_dir, rootless=self.store.rootless,
                             max_size=self.store.max_layer_size, what=f"layer {layer.digest}")

    def _download_and_extract(self, client, repository: str, layer: _Layer) -> None:
        """The blob is written to the store and extracted as it arrives (one thread each), so a layer
        takes the longer of the two, not their sum. What was extracted counts only once the whole blob
        matched its digest; otherwise it is discarded with the partial blob."""
        pipe = _ChunkPipe()

        def download():
            try:
                self._download(client, repository, layer, pipe.put)
            except BaseException as error:  # noqa: BLE001 - handed to the extracting side
                pipe.fail(error)
            else:
                pipe.close()

        thread = threading.Thread(target=download, name="pull-download", daemon=True)
        thread.start()
        try:
            staged = self._extract(pipe, layer)
        except MinictrError:
            # A broken archive is most likely a blob that will not match its digest: let the
            # download finish (it is bounded by the manifest's size) and say so if it does not.
            pipe.drain()
            thread.join()
            raise pipe.error or sys.exc_info()[1] from None
        except BaseException:
            pipe.abort()
            thread.join()
            raise
        thread.join()
        if pipe.error is not None:
            staged.discard()
            raise pipe.error
        layer.staged = staged

    def _download(self, client, repository: str, layer: _Layer, sink) -> None:
        import httpx

        declared = layer.size if isinstance(layer.size, int) and layer.size > 0 else None
        with client.open_blob(repository, layer.digest) as response:
            total = declared or int(response.headers.get("content-length") or 0)
            with self.store.blobs.writer(layer.digest, max_size=declared or self.store.max_layer_size,
                                         what=f"layer {layer.digest}") as writer:
                try:
                    for chunk in response.iter_bytes(1 << 20):
                        if self._failed.is_set():
                            raise _Aborted()
                        writer.write(chunk)
                        sink(chunk)
                        self.progress.bar("Downloading", layer.short, writer.size, total)
                except httpx.HTTPError as error:
                    raise TransientError(f"layer {layer.digest}: the download broke off: {error}") from None
                self.progress.bar("Downloading", layer.short, writer.size, total, final=True)
                self.progress.status("Verifying Checksum", layer.short)
        if declared is not None and writer.size != declared:
            raise DigestMismatch(f"layer {layer.digest}: {writer.size} bytes, the manifest says {declared}")
        layer.blob_created = layer.blob_created or writer.created
        self.progress.status("Download complete", layer.short)


class _Attempt:
    def __init__(self, last: bool):
        self.last = last
        self.ok = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.ok = True
            return False
        if issubclass(exc_type, TransientError) and not self.last:
            return True  # swallowed: the next attempt runs
        return False


def _attempts():
    """`for attempt in _attempts(): with attempt: …`: up to ATTEMPTS tries of a block
    whose TransientError is retried (after a short pause), anything else raised at once."""
    for number in range(ATTEMPTS):
        attempt = _Attempt(number == ATTEMPTS - 1)
        yield attempt
        if attempt.ok:
            return
        time.sleep(RETRY_PAUSE * (number + 1))


class _Aborted(Exception):
    """The extracting side gave up: the download stops."""


class _ChunkPipe:
    """Chunks from the downloading thread to the extracting one, a few in flight at most."""

    def __init__(self, depth: int = 16):
        self._queue = queue.Queue(depth)
        self._current = b""
        self._offset = 0
        self._ended = False
        self._aborted = threading.Event()
        self.error = None

    # the downloading side
    def put(self, chunk: bytes) -> None:
        while not self._aborted.is_set():
            try:
                self._queue.put(chunk, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Aborted()

    def close(self) -> None:
        self.put(None)

    def fail(self, error: BaseException) -> None:
        self.error = error
        try:
            self.put(None)
        except _Aborted:
            pass

    # the extracting side
    def abort(self) -> None:
        self._aborted.set()

    def read(self, size: int = -1) -> bytes:
        """`size` bytes (all with -1), fewer only at the end, as a file's read."""
        parts, wanted = [], size
        while size < 0 or wanted > 0:
            if self._offset >= len(self._current):
                if self._ended:
                    break
                chunk = self._queue.get()
                if chunk is None:
                    self._ended = True
                    if self.error is not None:
                        raise self.error
                    break
                self._current, self._offset = chunk, 0
            available = len(self._current) - self._offset
            take = available if size < 0 else min(wanted, available)
            parts.append(self._current[self._offset:self._offset + take])
            self._offset += take
            wanted -= take
        return b"".join(parts)

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        """Read and drop the rest (the download's own error stays in .error)."""
        try:
            while self.read(1 << 20):
                pass
        except BaseException:  # noqa: BLE001 - it is self.error
            pass


def _staged_per_position(layers: list) -> list:
    """PendingImage.layers: the staged layer at the first position of each diff id, None elsewhere."""
    placed = set()
    result = []
    for layer in layers:
        if layer.staged is not None and layer.diff_id not in placed:
            result.append(layer.staged)
            placed.add(layer.diff_id)
        else:
            result.append(None)
    return result


def _parse_manifest(manifest: dict) -> tuple[dict, list]:
    config = manifest.get("config")
    layers = manifest.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list) or not all(isinstance(l, dict) for l in layers):
        raise InvalidArgument("the manifest has no config or layers")
    check_digest(config.get("digest"))
    for layer in layers:
        check_digest(layer.get("digest"))
        if "foreign" in (layer.get("mediaType") or ""):
            raise InvalidArgument(f"layer {layer['digest']} is a foreign (Windows) layer")
    return config, layers


def _check_config_platform(config: dict, wanted: Platform, name: str) -> None:
    offered = Platform(config.get("os", ""), config.get("architecture", ""), config.get("variant", "") or "")
    if (offered.os, offered.architecture) != (wanted.os, wanted.architecture):
        raise NotFound(f"image {name} is for {offered}, not the requested platform {wanted}")


def _json(data: bytes, what: str) -> dict:
    try:
        document = json.loads(data)
    except ValueError as error:
        raise InvalidArgument(f"{what} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvalidArgument(f"{what} is not a JSON object")
    return document


def pull(store, text: str, platform: str | None = None, credentials: Credentials | None = None,
         settings: RegistrySettings = RegistrySettings(), progress=None) -> dict:
    """Pull one image; see Puller.pull."""
    return Puller(store, credentials, settings, progress).pull(text, platform)


__all__ = ["pull", "Puller", "Platform", "parse_platform", "host_platform", "select_manifest", "RegistryError"]
