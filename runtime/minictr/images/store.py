"""The image store: image configs and layers on disk, their metadata in SQLite.

On disk (under the data root): `image/configs/<id-hex>.json` holds the exact
bytes of an image's config (its sha256 is the image id) and
`image/layers/<diffid-hex>/` one extracted layer, shared by every image that
has it. Files are written before the transaction that records them and
removed again if it fails; a layer no image uses any more is deleted after the
transaction that forgot it. Installing layers and deleting them are serialised
by one lock, so an import never adopts a layer that a removal is deleting.
"""

import json
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from minictr.errors import Conflict, InvalidArgument, MinictrError, NotFound
from minictr.images import archive
from minictr.images.blobs import BlobStore
from minictr.spec import reference as references
from minictr.images.layers import DEFAULT_MAX_SIZE, TEMP_PREFIX, ensure_link, link_name, remove_tree

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    last_tag_time TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS layers (
    diff_id TEXT PRIMARY KEY,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    diff_id TEXT NOT NULL REFERENCES layers(diff_id),
    PRIMARY KEY (image_id, position)
);
CREATE INDEX IF NOT EXISTS image_layers_by_layer ON image_layers(diff_id);
CREATE TABLE IF NOT EXISTS image_references (
    reference TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS image_references_by_image ON image_references(image_id);
CREATE TABLE IF NOT EXISTS layer_blobs (
    diff_id TEXT NOT NULL REFERENCES layers(diff_id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (diff_id, digest)
);
CREATE INDEX IF NOT EXISTS layer_blobs_by_digest ON layer_blobs(digest);
CREATE TABLE IF NOT EXISTS image_digests (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX IF NOT EXISTS image_digests_by_image ON image_digests(image_id);
CREATE TABLE IF NOT EXISTS image_parents (
    image_id TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    parent TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS image_parents_by_parent ON image_parents(parent)
"""

GRAPH_DRIVER = "overlay2"
ZERO_TIME = "0001-01-01T00:00:00Z"
_HEX_PREFIX = re.compile(r"(?:sha256:)?([a-f0-9]{1,64})")

# The keys of an image's container config as `docker image inspect` shows them.
_CONFIG_DEFAULTS = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}


@dataclass
class Image:
    id: str  # sha256:<hex>
    config: dict  # the container config (Env, Cmd, Entrypoint, WorkingDir, User, …), all keys present
    layer_dirs: list  # Paths, top-most first (overlay lowerdir order)
    references: list  # familiar forms: `busybox-local:latest`
    document: dict  # the whole image config
    layer_links: list = field(default_factory=list)  # short names under link_dir, top-most first
    link_dir: Path | None = None  # image/l: the overlay's lowerdirs are relative to it


class ImageStore:
    def __init__(self, db, root: Path, rootless: bool, max_layer_size: int = DEFAULT_MAX_SIZE):
        self.db = db
        self.root = Path(root).absolute()  # layer dirs become overlay lowerdirs: absolute paths
        self.rootless = rootless
        self.max_layer_size = max_layer_size
        self.layers_dir = self.root / "image" / "layers"
        self.configs_dir = self.root / "image" / "configs"
        self.tmp_dir = self.root / "image" / "tmp"
        self.links_dir = self.root / "image" / "l"
        for directory in (self.layers_dir, self.configs_dir, self.tmp_dir, self.links_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Layers keep their setuid files: no other host user may reach them (Docker's 0700).
        os.chmod(self.root / "image", 0o700)
        self.blobs = BlobStore(self.root)
        self._lock = threading.Lock()
        self._remove_leftovers()

    # --- adding images ---

    def import_tar(self, stream, reference: str | None, changes: list[str], message: str) -> str:
        """`docker import`: a rootfs tar (maybe compressed) becomes a one-layer image.

        Returns the image id; tags it with `reference` when given."""
        tags = [references.parse(reference)] if reference else []
        pending = archive.read_import(stream, changes, message, self.layers_dir,
                                      rootless=self.rootless, max_size=self.max_layer_size, blobs=self.blobs)
        pending.references = tags
        try:
            return self._commit(pending)
        except BaseException:
            pending.discard()
            self.forget_unrecorded_blobs([blob[1] for blob in pending.blobs])
            raise

    def load(self, stream) -> list[str]:
        """`docker load`: every image of a `docker save` archive or OCI layout.

        Returns the references it tagged (`busybox-local:latest`), or the ids of
        images that came without a name."""
        pending = archive.read_load(stream, self.tmp_dir, self.layers_dir, rootless=self.rootless,
                                    has_layer=self._has_layer, max_size=self.max_layer_size, blobs=self.blobs)
        loaded = []
        try:
            for image in pending:
                image_id = self._commit(image)
                loaded += [ref.familiar() for ref in image.references] or [image_id]
        except BaseException:
            self.forget_unrecorded_blobs([blob[1] for image in pending for blob in image.blobs])
            raise
        finally:
            for image in pending:
                image.discard()
        return loaded

    def add_pulled(self, pending) -> str:
        """Record a pulled image (PendingImage with .blobs and .digests) in one transaction; its id."""
        return self._commit(pending)

    def tag(self, name: str, reference: str) -> None:
        """`docker tag`: point `reference` at the image `name` resolves to."""
        target = references.parse(reference)
        if target.digest is not None:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {reference}")
        with self._lock:
            image_id, _ = self._find(name)
            with self.db.transaction() as cur:
                self._tag(cur, image_id, target)

    # --- reading ---

    def resolve(self, name: str) -> Image:
        """The image `name` (a reference, `sha256:<id>` or an id prefix) designates."""
        image_id, _ = self._find(name)
        return self._image(image_id)

    def list_images(self) -> list[dict]:
        """`GET /images/json`: newest first."""
        rows = self.db.query("SELECT id FROM images ORDER BY created DESC, id")
        return [self._summary(row["id"]) for row in rows]

    def inspect(self, name: str) -> dict:
        """`GET /images/{name}/json`."""
        image_id, _ = self._find(name)
        image = self._image(image_id)
        document = image.document
        tags, digests = self._repo_tags_and_digests(image_id)
        size = self._size(image_id)
        return {
            "Id": image_id,
            "RepoTags": tags,
            "RepoDigests": digests,
            "Parent": self.parent(image_id),
            "Comment": document.get("comment", ""),
            "Created": document.get("created", ZERO_TIME),
            # The container a commit (or Docker's classic build) made the image from, and that
            # container's config: an image without them (pulled, imported) has Docker's empty config,
            # never a missing key (Compose 1.29 reads ContainerConfig when it recreates a service).
            "Container": document.get("container", ""),
            "ContainerConfig": {**_CONFIG_DEFAULTS, **(document.get("container_config") or {})},
            "DockerVersion": document.get("docker_version", ""),
            "Author": document.get("author", ""),
            "Config": image.config,
            "Architecture": document.get("architecture", ""),
            **({"Variant": document["variant"]} if document.get("variant") else {}),
            "Os": document.get("os", "linux"),
            "Size": size,
            "VirtualSize": size,
            "GraphDriver": {"Name": GRAPH_DRIVER, "Data": _graph_driver_data(image.layer_dirs)},
            "RootFS": {"Type": "layers", "Layers": document["rootfs"]["diff_ids"]},
            "Metadata": {"LastTagTime": self._last_tag_time(image_id)},
        }

    # --- removing ---

    def remove(self, name: str, force: bool, in_use: Callable[[str], bool]) -> list[dict]:
        """`docker rmi`: untag `name`, and delete the image once no reference is left.

        An image a container uses (`in_use(image_id)`) is refused unless forced;
        forced, its references go but the image and its layers stay, since the
        container still runs on them. An image with child images (commit's) is only
        untagged, and refused by id, even forced, as Docker. Layers no image uses any more
        are deleted, and so are the parents a deleted image leaves with no reference, child
        or container (Docker's rmi prunes them).
        `in_use` is called with the store's lock held: it must not call back into the store."""
        with self._lock:
            image_id, matched = self._find(name)
            parent = self.parent(image_id)
            result = self._remove(image_id, matched, name, force, in_use)
            if {"Deleted": image_id} in result:
                result += self._prune_parents(parent, in_use)
            return result

    def _remove(self, image_id: str, matched: str | None, name: str, force: bool, in_use) -> list[dict]:
        refs = self._references(image_id)
        short = image_id.removeprefix("sha256:")[:12]
        has_children = bool(self._children(image_id))
        if matched is not None:
            doomed = [matched] + _orphaned_digest_references(matched, refs)
            if len(refs) > len(doomed):
                return self._untag(image_id, doomed)
            user = in_use(image_id)
            if user:
                if not force:
                    # Docker names the container (its short id) when in_use gives it.
                    who = f"container {user[:12]}" if isinstance(user, str) else "a container"
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{name}" (must force) '
                        f"- {who} is using its referenced image {short}"
                    )
                return self._untag(image_id, refs)
            if has_children:
                return self._untag(image_id, refs)  # Docker keeps it, untagged, for its children
            return self._delete(image_id, refs)
        if has_children:
            raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - image has dependent child images")
        if in_use(image_id) and not force:
            raise Conflict(f"conflict: unable to delete {short} (must be forced) - image is being used by a container")
        repositories = {references.parse(ref, default_tag=False).name for ref in refs}
        if len(repositories) > 1 and not force:
            raise Conflict(
                f"conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
            )
        if in_use(image_id):
            return self._untag(image_id, refs)
        return self._delete(image_id, refs)

    def _prune_parents(self, image_id: str, in_use) -> list[dict]:
        result = []
        while (image_id and self.db.query("SELECT 1 FROM images WHERE id = ?", (image_id,))
               and not self._references(image_id) and not self._children(image_id) and not in_use(image_id)):
            parent = self.parent(image_id)
            result += self._delete(image_id, [])
            image_id = parent
        return result

    def parent(self, image_id: str) -> str:
        """The image a commit made `image_id` from (Docker's Parent), or ''."""
        rows = self.db.query("SELECT parent FROM image_parents WHERE image_id = ?", (image_id,))
        return rows[0]["parent"] if rows else ""

    def _children(self, image_id: str) -> list[str]:
        return [row["image_id"] for row in self.db.query("SELECT image_id FROM image_parents WHERE parent = ?",
                                                          (image_id,))]

    # --- commit and delete: one transaction each ---

    def _commit(self, pending) -> str:
        image_id = pending.id
        document = _parse_config(pending.config_bytes)
        diff_ids = document["rootfs"]["diff_ids"]
        with self._lock:
            created = []
            try:
                for layer in pending.layers:
                    if layer is not None:
                        path, new = layer.install(self.layers_dir)
                        created += [path] if new else []
                blobs = getattr(pending, "blobs", None) or []
                for _, digest, _, _ in blobs:
                    if not self.blobs.has(digest):
                        raise MinictrError(f"blob {digest} was removed while it was being stored: try again")
                config_path = self._config_path(image_id)
                if not config_path.exists():
                    _write_atomically(config_path, pending.config_bytes)
                    created.append(config_path)
                with self.db.transaction() as cur:
                    self._record(cur, image_id, document, diff_ids, pending.layers)
                    if getattr(pending, "parent", ""):
                        cur.execute("INSERT OR IGNORE INTO image_parents (image_id, parent) VALUES (?, ?)",
                                    (image_id, pending.parent))
                    for ref in pending.references:
                        self._tag(cur, image_id, ref)
                    # remote_blobs: digests a registry holds a layer as, whose bytes were not fetched (the layer
                    # was already here); push names them to skip or mount the upload.
                    cur.executemany(
                        "INSERT OR IGNORE INTO layer_blobs (diff_id, digest, media_type, size) VALUES (?, ?, ?, ?)",
                        blobs + (getattr(pending, "remote_blobs", None) or []))
                    cur.executemany(
                        "INSERT OR REPLACE INTO image_digests (image_id, repository, digest) VALUES (?, ?, ?)",
                        [(image_id, repository, digest) for repository, digest in getattr(pending, "digests", None) or []])
            except BaseException:
                for path in created:
                    remove_tree(path)
                raise
        return image_id

    def _record(self, cur, image_id: str, document: dict, diff_ids: list, layers: list) -> None:
        for diff_id, layer in zip(diff_ids, layers):
            if layer is not None:
                cur.execute("INSERT OR IGNORE INTO layers (diff_id, size) VALUES (?, ?)", (diff_id, layer.size))
            elif cur.execute("SELECT 1 FROM layers WHERE diff_id = ?", (diff_id,)).fetchone() is None:
                raise MinictrError(f"layer {diff_id} was removed while loading: try again")
        if cur.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is not None:
            return  # the same image again: only its references change
        cur.execute("INSERT INTO images (id, created) VALUES (?, ?)",
                    (image_id, _unix_time(document.get("created"))))
        cur.executemany("INSERT INTO image_layers (image_id, position, diff_id) VALUES (?, ?, ?)",
                        [(image_id, position, diff_id) for position, diff_id in enumerate(diff_ids)])

    def _tag(self, cur, image_id: str, ref) -> None:
        # A tag that pointed elsewhere moves; the old image stays, untagged, as in Docker.
        cur.execute("INSERT OR REPLACE INTO image_references (reference, image_id) VALUES (?, ?)",
                    (ref.full(), image_id))
        cur.execute("UPDATE images SET last_tag_time = ? WHERE id = ?", (archive.rfc3339_now(), image_id))

    def _untag(self, image_id: str, refs: list[str]) -> list[dict]:
        with self.db.transaction() as cur:
            cur.executemany("DELETE FROM image_references WHERE reference = ?", [(r,) for r in refs])
            cur.executemany("DELETE FROM image_digests WHERE image_id = ? AND repository || '@' || digest = ?",
                            [(image_id, r) for r in refs])
        return [{"Untagged": _familiar(ref)} for ref in refs]

    def _delete(self, image_id: str, refs: list[str]) -> list[dict]:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM image_references WHERE image_id = ?", (image_id,))
            cur.execute("DELETE FROM images WHERE id = ?", (image_id,))
            unused = [row[0] for row in cur.execute(
                "SELECT diff_id FROM layers WHERE diff_id NOT IN (SELECT diff_id FROM image_layers)")]
            unused_blobs = {row[0] for diff_id in unused for row in cur.execute(
                "SELECT digest FROM layer_blobs WHERE diff_id = ?", (diff_id,))}
            cur.executemany("DELETE FROM layers WHERE diff_id = ?", [(d,) for d in unused])  # cascades to layer_blobs
            unused_blobs -= {row[0] for row in cur.execute("SELECT digest FROM layer_blobs")}
        # Files go only once the rows are gone: a crash in between leaves
        # unreferenced files, which the next start removes.
        self._config_path(image_id).unlink(missing_ok=True)
        for diff_id in unused:
            remove_tree(self._layer_path(diff_id))
            (self.links_dir / link_name(diff_id)).unlink(missing_ok=True)
        for digest in unused_blobs:
            self.blobs.remove(digest)
        return ([{"Untagged": _familiar(ref)} for ref in refs]
                + [{"Deleted": image_id}] + [{"Deleted": diff_id} for diff_id in unused])

    # --- lookups ---

    def _find(self, name: str) -> tuple[str, str | None]:
        """(image id, the stored reference when `name` was one) — or NotFound."""
        if references.is_full_id(name):
            if self.db.query_one("SELECT 1 FROM images WHERE id = ?", (name,)) is None:
                raise NotFound(f"No such image: {name}")
            return name, None
        try:
            ref = references.parse(name)
        except InvalidArgument:
            if not _HEX_PREFIX.fullmatch(name):
                raise
            ref = None
        if ref is not None:
            key = f"{ref.name}@{ref.digest}" if ref.digest else ref.full()
            row = self.db.query_one("SELECT image_id FROM image_references WHERE reference = ?", (key,))
            if row is None and ref.digest:
                row = self.db.query_one("SELECT image_id FROM image_digests WHERE repository = ? AND digest = ?",
                                        (ref.name, ref.digest))
            if row is not None:
                return row["image_id"], key
        image_id = self._find_by_prefix(name)
        if image_id is None:
            raise NotFound(f"No such image: {ref.familiar() if ref is not None else name}")
        return image_id, None

    def _find_by_prefix(self, name: str) -> str | None:
        match = _HEX_PREFIX.fullmatch(name)
        if match is None:
            return None
        rows = self.db.query("SELECT id FROM images WHERE substr(id, 8, ?) = ?",
                             (len(match.group(1)), match.group(1)))
        if len(rows) > 1:
            raise InvalidArgument(f"image id prefix `{name}` is ambiguous: it matches {len(rows)} images")
        return rows[0]["id"] if rows else None

    def _image(self, image_id: str) -> Image:
        document = _parse_config(self._config_path(image_id).read_bytes())
        rows = self.db.query("SELECT diff_id FROM image_layers WHERE image_id = ? ORDER BY position DESC",
                             (image_id,))
        return Image(
            id=image_id,
            config={**_CONFIG_DEFAULTS, **(document.get("config") or {})},
            layer_dirs=[self._layer_path(row["diff_id"]) for row in rows],
            references=[_familiar(ref) for ref in self._references(image_id)],
            document=document,
            layer_links=[ensure_link(self.links_dir, row["diff_id"]) for row in rows],
            link_dir=self.links_dir,
        )

    def _summary(self, image_id: str) -> dict:
        document = _parse_config(self._config_path(image_id).read_bytes())
        tags, digests = self._repo_tags_and_digests(image_id)
        size = self._size(image_id)
        return {
            "Id": image_id,
            "ParentId": self.parent(image_id),
            "RepoTags": tags,
            "RepoDigests": digests,
            "Created": _unix_time(document.get("created")),
            "Size": size,
            "SharedSize": -1,
            "VirtualSize": size,
            "Labels": (document.get("config") or {}).get("Labels") or {},
            "Containers": -1,
        }

    def _references(self, image_id: str) -> list[str]:
        """Tags and digest references (`docker.io/library/alpine@sha256:…`), full forms."""
        rows = self.db.query(
            "SELECT reference FROM image_references WHERE image_id = ? "
            "UNION SELECT repository || '@' || digest FROM image_digests WHERE image_id = ? ORDER BY 1",
            (image_id, image_id))
        return [row[0] for row in rows]

    def _repo_tags_and_digests(self, image_id: str) -> tuple[list, list]:
        refs = self._references(image_id)
        return (sorted(_familiar(r) for r in refs if "@" not in r),
                sorted(_familiar(r) for r in refs if "@" in r))

    def _size(self, image_id: str) -> int:
        row = self.db.query_one(
            "SELECT COALESCE(SUM(l.size), 0) AS size FROM image_layers il JOIN layers l USING (diff_id) "
            "WHERE il.image_id = ?", (image_id,))
        return row["size"]

    def _last_tag_time(self, image_id: str) -> str:
        row = self.db.query_one("SELECT last_tag_time FROM images WHERE id = ?", (image_id,))
        return row["last_tag_time"] or ZERO_TIME

    def _has_layer(self, diff_id: str) -> bool:
        return self.db.query_one("SELECT 1 FROM layers WHERE diff_id = ?", (diff_id,)) is not None

    def _config_path(self, image_id: str) -> Path:
        return self.configs_dir / (image_id.removeprefix("sha256:") + ".json")

    def _layer_path(self, diff_id: str) -> Path:
        return self.layers_dir / diff_id.removeprefix("sha256:")

    def _remove_leftovers(self) -> None:
        """Files of an operation a crash interrupted: staging dirs, spools, and layers or
        configs whose transaction never committed (or whose removal did)."""
        known_layers = {row[0].removeprefix("sha256:") for row in self.db.query("SELECT diff_id FROM layers")}
        known_images = {row[0].removeprefix("sha256:") for row in self.db.query("SELECT id FROM images")}
        for entry in self.layers_dir.iterdir():
            if entry.name.startswith(TEMP_PREFIX) or entry.name not in known_layers:
                remove_tree(entry)
        for entry in self.configs_dir.iterdir():
            if entry.name.removesuffix(".json") not in known_images:
                entry.unlink()
        for entry in self.tmp_dir.iterdir():
            remove_tree(entry)
        for entry in self.links_dir.iterdir():
            if not entry.exists():  # a link whose layer is gone
                entry.unlink()
        self.blobs.remove_leftovers(keep={row[0] for row in self.db.query("SELECT digest FROM layer_blobs")})

    def forget_unrecorded_blobs(self, digests) -> None:
        """Remove those of `digests` no layer records: the blobs of a pull or load that failed."""
        with self._lock:
            recorded = {row[0] for row in self.db.query("SELECT digest FROM layer_blobs")}
            for digest in set(digests) - recorded:
                self.blobs.remove(digest)

    def layer_blobs(self, diff_id: str) -> list[dict]:
        """The blobs that hold layer `diff_id`: [{digest, media_type, size}], compressed ones first."""
        rows = self.db.query("SELECT digest, media_type, size FROM layer_blobs WHERE diff_id = ? "
                             "ORDER BY media_type LIKE '%tar' , digest", (diff_id,))
        return [dict(row) for row in rows if self.blobs.has(row["digest"])]

    def known_layer_blobs(self, diff_id: str) -> list[dict]:
        """Every blob digest known to hold layer `diff_id`, stored here or only in a registry it was
        pulled from: [{digest, media_type, size}]."""
        rows = self.db.query("SELECT digest, media_type, size FROM layer_blobs WHERE diff_id = ? ORDER BY digest",
                             (diff_id,))
        return [dict(row) for row in rows]

    def has_layer(self, diff_id: str) -> bool:
        return self._has_layer(diff_id)


def _orphaned_digest_references(untagged: str, refs: list[str]) -> list[str]:
    """The digest references that go with the tag `untagged`: those of its repository
    when no other tag of that repository is left (Docker's rule)."""
    if "@" in untagged:
        return []
    repository = references.parse(untagged).name
    same = [r for r in refs if r != untagged and references.parse(r, default_tag=False).name == repository]
    if any("@" not in r for r in same):
        return []
    return same


def _parse_config(config_bytes: bytes) -> dict:
    try:
        document = json.loads(config_bytes)
    except ValueError as error:
        raise InvalidArgument(f"the image config is not valid JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance((document.get("rootfs") or {}).get("diff_ids"), list):
        raise InvalidArgument("the image config has no rootfs.diff_ids")
    return document


def _familiar(stored: str) -> str:
    return references.parse(stored, default_tag=False).familiar()


def _graph_driver_data(layer_dirs: list) -> dict:
    data = {"UpperDir": str(layer_dirs[0])} if layer_dirs else {}
    if len(layer_dirs) > 1:
        data["LowerDir"] = ":".join(str(path) for path in layer_dirs[1:])
    return data


def _unix_time(rfc3339: str | None) -> int:
    """Seconds since the epoch of an RFC 3339 time with up to nanoseconds (Go's format)."""
    if not rfc3339:
        return 0
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)", rfc3339)
    if match is None:
        return 0
    zone = "+00:00" if match.group(2) == "Z" else match.group(2)
    return int(datetime.fromisoformat(match.group(1) + zone).timestamp())


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f"{TEMP_PREFIX}{path.name}")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.rename(temporary, path)
