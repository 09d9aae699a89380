"""Content-addressed blobs: `<data_root>/image/blobs/sha256/<hex>`.

A blob is kept under the sha256 of its bytes and nothing else: a layer as it
came from a registry (compressed), or a layer's plain tar (load, import,
commit). Which blob holds which layer is the store's `layer_blobs` table.

Digests arrive from registries and archives, so they are hostile: one that is
not `sha256:` + 64 lowercase hex is refused before it becomes part of a path.
Bytes are hashed while they are written to a temporary file in the same
directory, and only a file whose hash matches is renamed to its name, so a
blob under its name is always whole and correct.
"""

import hashlib
import os
import re
import uuid
from pathlib import Path

from minictr.errors import InvalidArgument

TEMP_PREFIX = ".tmp-"
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")


def check_digest(digest) -> str:
    """`digest` itself when it is `sha256:` + 64 lowercase hex; InvalidArgument otherwise."""
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        shown = digest if isinstance(digest, str) and len(digest) <= 100 else repr(digest)[:100]
        raise InvalidArgument(f"invalid digest `{shown}`: a digest is sha256: and 64 lowercase hex digits")
    return digest


class DigestMismatch(InvalidArgument):
    """The bytes did not hash to the digest they were announced with."""


class BlobStore:
    def __init__(self, data_root: Path):
        self.dir = Path(data_root).absolute() / "image" / "blobs" / "sha256"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for parent in (self.dir, self.dir.parent):
            os.chmod(parent, 0o700)

    def path(self, digest: str) -> Path:
        return self.dir / check_digest(digest).removeprefix("sha256:")

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def open(self, digest: str):
        """The blob's bytes, for reading (FileNotFoundError when it is not here)."""
        return open(self.path(digest), "rb")

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def remove(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def writer(self, expected_digest: str | None = None, max_size: int | None = None,
               what: str = "the blob") -> "BlobWriter":
        """`with store.writer("sha256:…", max_size=N) as w: w.write(chunk)…`.

        On a clean exit the digest is checked (DigestMismatch, partial deleted)
        and the file renamed into place; `w.digest` and `w.size` are then set.
        More than `max_size` bytes fail the write at once (InvalidArgument)."""
        if expected_digest is not None:
            check_digest(expected_digest)
        return BlobWriter(self, expected_digest, max_size, what)

    def remove_leftovers(self, keep=None) -> None:
        """At start: temporary files of writes a crash interrupted, and, when `keep`
        (a set of digests) is given, every blob not in it."""
        for entry in self.dir.iterdir():
            if entry.name.startswith(TEMP_PREFIX):
                entry.unlink(missing_ok=True)
            elif keep is not None and f"sha256:{entry.name}" not in keep:
                entry.unlink(missing_ok=True)


class BlobWriter:
    def __init__(self, store: BlobStore, expected: str | None, max_size: int | None, what: str):
        self._store = store
        self._expected = expected
        self._max_size = max_size
        self._what = what
        self._hash = hashlib.sha256()
        self._file = None
        self._temp = None
        self.size = 0
        self.digest = None
        self.created = False  # the blob was not there before this write

    def __enter__(self):
        self._temp = self._store.dir / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        self._file = open(os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), "wb")
        return self

    def write(self, data) -> None:
        self.size += len(data)
        if self._max_size is not None and self.size > self._max_size:
            raise InvalidArgument(f"{self._what} is larger than the limit of {self._max_size} bytes")
        self._hash.update(data)
        self._file.write(data)

    def __exit__(self, exc_type, exc, tb):
        try:
            self._file.close()
            if exc_type is not None:
                return False
            digest = "sha256:" + self._hash.hexdigest()
            if self._expected is not None and digest != self._expected:
                raise DigestMismatch(f"{self._what} does not match its digest: expected {self._expected}, got {digest}")
            final = self._store.dir / digest.removeprefix("sha256:")
            if final.is_file():
                self._temp.unlink()  # the same bytes are here already
            else:
                os.rename(self._temp, final)
                self.created = True
            self._temp = None
            self.digest = digest
            return False
        finally:
            if self._temp is not None:
                self._temp.unlink(missing_ok=True)
