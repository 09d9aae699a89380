"""Extract a layer tar into its own directory, treating every tar as hostile.

The guarantees, whatever the archive holds:

- nothing is written outside the layer directory: names are cleaned relative
  to the layer root as Docker does (a leading `/` is dropped, `/../x` is `x`),
  a name that climbs out with `..` is refused, and every write goes through a
  directory fd opened component by component with O_NOFOLLOW, so an entry
  below a symlink the archive planted is refused instead of written through it;
- hard links must name an earlier entry of this layer, reached without a symlink;
- device nodes are skipped when rootless (the kernel would refuse them anyway,
  and a rootless engine must not hand them out); the whole uncompressed stream
  is bounded, which also bounds decompression bombs;
- a failed extraction removes its partial directory.

While extracting, the uncompressed tar stream is hashed: its sha256 is the
layer's diff id, the name of its directory under image/layers/. OCI whiteouts
become overlayfs whiteouts and opaque directories.
"""

import base64
import bz2
import errno
import gzip
import hashlib
import logging
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

from minictr.errors import InvalidArgument
from minictr.hostinfo import filesystem_type
from minictr.images.overlay_upper import OPAQUE_MARKER, WHITEOUT_PREFIX

try:  # zstd layers need the zstandard module (Python 3.11 has no zstd of its own)
    import zstandard
except ImportError:  # pragma: no cover - depends on the installation
    zstandard = None

log = logging.getLogger("minictr.images")

DEFAULT_MAX_SIZE = 64 << 30  # 64 GiB of uncompressed tar: far beyond any real layer
TEMP_PREFIX = ".tmp-"
_COPY_CHUNK = 1 << 20

# What a truncated or garbled compressed stream raises (gzip's BadGzipFile is an
# OSError without errno; a real I/O error has one and passes through).
_CORRUPT_STREAM_ERRORS = (EOFError, OSError, lzma.LZMAError, zlib.error) + (
    (zstandard.ZstdError,) if zstandard is not None else ()
)

_MAGIC = [
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
]


@dataclass
class StagedLayer:
    """An extracted layer in a temporary directory, not yet visible under its diff id."""

    diff_id: str  # sha256:<hex> of the uncompressed tar
    digest: str  # sha256:<hex> of the bytes as read (compressed or not)
    size: int  # bytes of file contents, what `docker images` counts
    path: Path
    installed: bool = False

    def install(self, layers_dir: Path) -> tuple[Path, bool]:
        """Move into `layers_dir/<diffid-hex>`; returns (path, created).

        Layers are shared: when that directory already exists this copy is
        discarded. Callers serialise installs against removals of layers.
        """
        final = Path(layers_dir) / self.diff_id.removeprefix("sha256:")
        if self.installed:
            return final, False
        created = not final.exists()
        if created:
            os.rename(self.path, final)
        else:
            self.discard()
        self.path, self.installed = final, True
        return final, created

    def discard(self) -> None:
        """Remove the staged copy (never an installed, shared layer)."""
        if not self.installed:
            remove_tree(self.path)


def link_name(diff_id: str) -> str:
    """The short name of a layer's link under image/l/ (26 characters, as Docker's overlay2).

    Overlay takes one page of mount options: 120 absolute layer paths would not fit,
    120 of these names relative to image/l do. Derived from the diff id (its first
    128 bits in base32), so no table is needed and two layers never share one."""
    raw = bytes.fromhex(diff_id.removeprefix("sha256:"))[:16]
    return base64.b32encode(raw).decode().rstrip("=")


def ensure_link(links_dir: Path, diff_id: str) -> str:
    """Make `links_dir/<short>` -> `../layers/<diffid-hex>` if missing; returns the short name."""
    name = link_name(diff_id)
    try:
        os.symlink(f"../layers/{diff_id.removeprefix('sha256:')}", os.path.join(links_dir, name))
    except FileExistsError:
        pass
    return name


def detect_compression(head: bytes) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def open_decompressed(stream):
    """A reader of the uncompressed bytes of `stream` (plain, gzip, zstd, bzip2 or xz),
    chosen by magic bytes; `stream` need not be seekable."""
    head_reader = _PeekReader(stream)
    kind = detect_compression(head_reader.peek(6))
    if kind is None:
        return head_reader
    if kind == "gzip":
        return gzip.GzipFile(fileobj=head_reader, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(head_reader)
    if kind == "xz":
        return lzma.LZMAFile(head_reader)
    if zstandard is None:
        raise InvalidArgument("the layer is zstd-compressed and the zstandard module is not installed")
    return zstandard.ZstdDecompressor().stream_reader(head_reader, read_across_frames=True)


def extract_layer(stream, layers_dir: Path, *, rootless: bool, max_size: int = DEFAULT_MAX_SIZE,
                  what: str = "the layer", keep=None) -> StagedLayer:
    """Extract a (maybe compressed) layer tar into a new temporary directory under `layers_dir`.

    Returns the staged layer, to be `install`ed or `discard`ed. Raises
    InvalidArgument for a hostile or broken archive (nothing is left behind).
    `what` names the input in messages (`the layer`, `blobs/sha256/…`).
    `keep.write(bytes)` gets every byte read, as it came (a blob writer).
    """
    staging = Path(layers_dir) / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir(mode=0o755)
    try:
        raw = _HashingReader(stream, sink=keep)
        try:
            plain = _HashingReader(open_decompressed(raw), max_size=max_size, what=what)
            size = _Extractor(staging, rootless).run(plain, what)
            plain.drain()  # the diff id covers the end-of-archive blocks tarfile does not read
        except _CORRUPT_STREAM_ERRORS as error:
            if isinstance(error, OSError) and error.errno is not None:
                raise
            raise InvalidArgument(f"{what} is corrupt: {error}") from None
        raw.drain()
    except BaseException:
        remove_tree(staging)
        raise
    return StagedLayer(diff_id=plain.digest(), digest=raw.digest(), size=size, path=staging)


def extract_into(stream, dir_fd: int, *, rootless: bool, no_overwrite_dir_non_dir: bool = False,
                 owner: tuple[int, int] | None = None, chown: bool = True, rename=None,
                 max_size: int = DEFAULT_MAX_SIZE) -> int:
    """Extract a (maybe compressed) tar into an existing directory, `docker cp`'s PUT /archive.

    The guarantees of extract_layer hold below `dir_fd` (an O_RDONLY directory fd, typically
    resolved inside a container's root): nothing is written outside it, never through a
    symlink. Entries named `.wh.*` are written as they are (whiteouts belong to layers).
    `owner` replaces the archive's uid/gid, `chown=False` keeps the extracting user's;
    `rename(name)` renames every entry first. What was written before an error stays, as
    in Docker. Returns the bytes of file contents written."""
    reader = _HashingReader(open_decompressed(stream), max_size=max_size, what="the archive")
    extractor = _Extractor(None, rootless, root_fd=dir_fd, whiteouts=False,
                           no_overwrite_dir_non_dir=no_overwrite_dir_non_dir, owner=owner,
                           chown=chown, rename=rename, noun="archive entry", scope="the destination")
    try:
        return extractor.run(reader, "the archive")
    except _CORRUPT_STREAM_ERRORS as error:
        if isinstance(error, OSError) and error.errno is not None:
            raise
        raise InvalidArgument(f"the archive is corrupt: {error}") from None


def remove_tree(path: Path) -> None:
    """Remove a layer directory (or a stray file), whatever modes its tar gave to the
    directories in it."""
    def make_writable_and_retry(function, failed_path, _exc):
        parent = os.path.dirname(failed_path)
        os.chmod(parent, 0o700)
        function(failed_path)

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, onerror=make_writable_and_retry)
    elif os.path.lexists(path):
        os.unlink(path)


def clean_member_name(name: str) -> str | None:
    """The entry's path relative to the layer root, cleaned as Docker does, or None when it
    escapes with `..`. The root itself is `.`."""
    if name.startswith("/"):
        # Docker joins a rooted name to the layer root: `/x` is `x`, `/../x` is `x`.
        return posixpath.normpath("/" + name.lstrip("/")).lstrip("/") or "."
    cleaned = posixpath.normpath(name)
    if cleaned == ".." or cleaned.startswith("../"):
        return None
    return cleaned


class _PeekReader:
    """A reader that can look at its first bytes without consuming them (for magic numbers)."""

    def __init__(self, stream):
        self._stream = stream
        self._head = b""

    def peek(self, size: int) -> bytes:
        while len(self._head) < size:
            chunk = self._stream.read(size - len(self._head))
            if not chunk:
                break
            self._head += chunk
        return self._head[:size]

    def read(self, size: int = -1) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            if size is None or size < 0:
                return head + self._stream.read()
            if len(head) >= size:
                self._head = head[size:]
                return head[:size]
            return head + (self._stream.read(size - len(head)) or b"")
        return self._stream.read(size)

    def readable(self) -> bool:
        return True


class _HashingReader:
    """Hashes (and bounds) everything read through it."""

    def __init__(self, stream, max_size: int | None = None, what: str = "the layer", sink=None):
        self._stream = stream
        self._sink = sink
        self._hash = hashlib.sha256()
        self._count = 0
        self._max = max_size
        self._what = what

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self._count += len(data)
            if self._max is not None and self._count > self._max:
                raise InvalidArgument(f"{self._what} is larger than the limit of {self._max} bytes")
            self._hash.update(data)
            if self._sink is not None:
                self._sink.write(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(_COPY_CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class _Extractor:
    """Writes the entries of one tar below `root`, never following a symlink."""

    def __init__(self, root: Path | None, rootless: bool, *, root_fd: int | None = None,
                 whiteouts: bool = True, no_overwrite_dir_non_dir: bool = False,
                 owner: tuple[int, int] | None = None, chown: bool = True, rename=None,
                 noun: str = "layer entry", scope: str = "the layer"):
        self.root = root
        self.rootless = rootless
        self.size = 0
        self._dir_metadata: dict[str, tarfile.TarInfo] = {}
        self._given_root_fd = root_fd  # extract into this directory (not O_PATH: its metadata is set)
        self.whiteouts = whiteouts  # False outside a layer: `.wh.*` is an ordinary name
        self.no_overwrite_dir_non_dir = no_overwrite_dir_non_dir
        self.owner = owner  # (uid, gid) for every entry instead of the archive's
        self.chown = chown  # False: files belong to whoever extracts them (docker cp to the host)
        self.rename = rename  # name -> name, applied to every entry (docker cp's rebasing)
        self.noun, self.scope = noun, scope

    def run(self, reader, what: str) -> int:
        try:
            archive = tarfile.open(fileobj=reader, mode="r|", bufsize=_COPY_CHUNK)  # 10 KiB reads cost a third of the time
        except tarfile.ReadError:
            raise InvalidArgument(f"{what} is not a tar archive") from None
        if self._given_root_fd is not None:
            self._root_fd = os.dup(self._given_root_fd)
        else:
            self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with archive:
                try:
                    for member in archive:
                        self._extract_member(archive, member)
                except tarfile.TarError as error:
                    raise InvalidArgument(f"{what} is not a valid tar archive: {error}") from None
            self._apply_directory_metadata()
        finally:
            os.close(self._root_fd)
        return self.size

    # --- one entry -------------------------------------------------------

    def _extract_member(self, archive, member: tarfile.TarInfo) -> None:
        if self.rename is not None:
            member.name = self.rename(member.name)
            if member.islnk():
                member.linkname = self.rename(member.linkname)
        path = clean_member_name(member.name)
        if path is None:
            raise InvalidArgument(f"{self.noun} `{member.name}` escapes {self.scope} directory")
        if path == ".":
            if not member.isdir():
                raise InvalidArgument(f"{self.noun} `{member.name}` would replace {self.scope} root")
            self._dir_metadata["."] = member
            return
        parent, name = posixpath.split(path)
        if self.whiteouts and name.startswith(WHITEOUT_PREFIX):
            self._extract_whiteout(member, parent, name)
            return
        parent_fd = self._open_dir(parent, f"{self.noun} `{member.name}`", create=True)
        try:
            self._create(archive, member, parent_fd, name, path)
        finally:
            os.close(parent_fd)

    def _create(self, archive, member, parent_fd: int, name: str, path: str) -> None:
        if self.no_overwrite_dir_non_dir:
            self._check_overwrite(member, parent_fd, name, path)
        if member.isdir():
            if not _is_dir_at(parent_fd, name):
                self._forget_directories(path)
                _remove_at(parent_fd, name)
                os.mkdir(name, 0o700, dir_fd=parent_fd)
            self._dir_metadata[path] = member  # mode and mtime once its children are written
            return
        if (member.ischr() or member.isblk()) and self.rootless:
            # A rootless engine never creates device nodes (nor could it).
            log.warning("%s `%s`: a device node, skipped (rootless)", self.noun, member.name)
            return
        self._forget_directories(path)
        _remove_at(parent_fd, name)
        if member.isreg():
            self._write_file(archive, member, parent_fd, name)
        elif member.issym():
            os.symlink(member.linkname, name, dir_fd=parent_fd)
            self._set_metadata_at(parent_fd, name, member)
        elif member.islnk():
            self._link(member, parent_fd, name)
        elif member.isfifo():
            os.mkfifo(name, 0o600, dir_fd=parent_fd)
            self._set_metadata_at(parent_fd, name, member)
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(name, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent_fd)
            self._set_metadata_at(parent_fd, name, member)
        else:
            raise InvalidArgument(f"{self.noun} `{member.name}` has an unsupported type {member.type!r}")

    def _check_overwrite(self, member, parent_fd: int, name: str, path: str) -> None:
        """docker cp's noOverwriteDirNonDir: a directory stays a directory, a file a file."""
        try:
            mode = os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode) and not member.isdir():
            raise InvalidArgument(f'cannot overwrite directory "/{path}" with non-directory "{member.name}"')
        if not stat.S_ISDIR(mode) and member.isdir():
            raise InvalidArgument(f'cannot overwrite non-directory "/{path}" with directory "{member.name}"')

    def _write_file(self, archive, member, parent_fd: int, name: str) -> None:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=parent_fd)
        try:
            source = archive.extractfile(member)
            while chunk := source.read(_COPY_CHUNK):
                _write_all(fd, chunk)
            self.size += member.size
            self._chown(fd, None, member)
            self._set_xattrs(fd, member)
            os.chmod(fd, member.mode & 0o7777)  # after chown, which clears setuid
            os.utime(fd, ns=(_mtime_ns(member), _mtime_ns(member)))
        finally:
            os.close(fd)

    def _link(self, member, parent_fd: int, name: str) -> None:
        target = clean_member_name(member.linkname)
        if target is None or target == ".":
            raise InvalidArgument(
                f"{self.noun} `{member.name}` is a hard link to `{member.linkname}`, outside {self.scope}"
            )
        target_parent, target_name = posixpath.split(target)
        subject = f"{self.noun} `{member.name}` (a hard link to `{member.linkname}`)"
        target_fd = self._open_dir(target_parent, subject, create=False)
        try:
            # follow_symlinks=False: link the entry itself, even a symlink, never its target
            os.link(target_name, name, src_dir_fd=target_fd, dst_dir_fd=parent_fd,
                    follow_symlinks=False)
        except FileNotFoundError:
            raise InvalidArgument(
                f"{self.noun} `{member.name}` is a hard link to `{member.linkname}`, "
                f"which is not in {self.scope}"
            ) from None
        except PermissionError:  # directories cannot be hard linked
            raise InvalidArgument(
                f"{self.noun} `{member.name}` is a hard link to `{member.linkname}`, "
                "which cannot be linked"
            ) from None
        finally:
            os.close(target_fd)

    # --- whiteouts -------------------------------------------------------

    def _extract_whiteout(self, member, parent: str, name: str) -> None:
        parent_fd = self._open_dir(parent, f"{self.noun} `{member.name}`", create=True)
        try:
            if name == OPAQUE_MARKER:
                self._mark_opaque(parent_fd, member)
                return
            hidden = name[len(WHITEOUT_PREFIX):]
            if not hidden or hidden in (".", ".."):
                raise InvalidArgument(f"{self.noun} `{member.name}` is not a valid whiteout")
            if os.path.lexists(_at(parent_fd, hidden)):
                # OCI: a whiteout applies to lower layers only, never to its own layer's entries
                return
            self._make_whiteout(parent_fd, hidden)
        finally:
            os.close(parent_fd)

    def _mark_opaque(self, dir_fd: int, member) -> None:
        # Rootless overlays are mounted with `userxattr`: they read user.overlay.*,
        # and a user namespace cannot set trusted.* anyway.
        namespace = "user" if self.rootless else "trusted"
        try:
            os.setxattr(dir_fd, f"{namespace}.overlay.opaque", b"y")
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            # A data root on overlayfs refuses overlay's own xattrs: keep the OCI marker,
            # which the fallback drivers (fuse-overlayfs, vfs) read.
            _create_empty(dir_fd, OPAQUE_MARKER)

    def _make_whiteout(self, parent_fd: int, name: str) -> None:
        try:
            # A 0/0 character device is overlayfs' whiteout; since Linux 5.11 a
            # user namespace may create one too.
            os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent_fd)
        except PermissionError:
            if not self.rootless or _on_overlayfs(parent_fd):
                # A data root on overlayfs refuses whiteout devices (and cannot hold the
                # kernel overlay's upper dirs): keep the OCI whiteout, which the fallback
                # drivers read. fuse-overlayfs ignores xattr whiteouts: a deleted file
                # would come back in a committed image.
                _create_empty(parent_fd, WHITEOUT_PREFIX + name)
                return
            # Older kernels: an "xattr whiteout" (overlayfs >= 6.7): an empty file
            # marked user.overlay.whiteout, in a directory marked opaque "x" so
            # that overlayfs looks for such files.
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o000, dir_fd=parent_fd)
            try:
                os.setxattr(fd, "user.overlay.whiteout", b"")
            finally:
                os.close(fd)
            try:
                os.getxattr(parent_fd, "user.overlay.opaque")
            except OSError:
                os.setxattr(parent_fd, "user.overlay.opaque", b"x")

    # --- paths, never through a symlink ------------------------------------

    def _open_dir(self, path: str, subject: str, create: bool) -> int:
        """An fd on directory `path` of the layer, walking each component with O_NOFOLLOW.

        Missing parents are created (0755, as Docker does) when `create`."""
        fd = os.dup(self._root_fd)
        if path in ("", "."):
            return fd
        walked = []
        try:
            for component in path.split("/"):
                walked.append(component)
                fd = self._open_child_dir(fd, component, "/".join(walked), subject, create)
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _open_child_dir(self, fd: int, component: str, walked: str, subject: str, create: bool) -> int:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            child = os.open(component, flags, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise InvalidArgument(f"{subject}: `{walked}` is not in {self.scope}") from None
            os.mkdir(component, 0o755, dir_fd=fd)
            child = os.open(component, flags, dir_fd=fd)
        except OSError as error:
            if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            if stat.S_ISLNK(os.stat(component, dir_fd=fd, follow_symlinks=False).st_mode):
                raise InvalidArgument(
                    f"{subject} goes through `{walked}`, a symbolic link: refusing to follow it"
                ) from None
            raise InvalidArgument(f"{subject} goes through `{walked}`, which is not a directory") from None
        os.close(fd)
        return child

    # --- metadata --------------------------------------------------------

    def _set_metadata_at(self, parent_fd: int, name: str, member) -> None:
        self._chown(parent_fd, name, member)
        self._set_xattrs_at(parent_fd, name, member)
        if not member.issym():  # Linux has no lchmod: a symlink's mode is always 0777
            # Following is safe: we just made this node (a fifo or device) ourselves.
            os.chmod(name, member.mode & 0o7777, dir_fd=parent_fd)
        os.utime(name, ns=(_mtime_ns(member), _mtime_ns(member)), dir_fd=parent_fd,
                 follow_symlinks=False)

    def _chown(self, fd: int, name: str | None, member) -> None:
        if not self.chown:
            return
        uid, gid = self.owner or (member.uid, member.gid)
        try:
            if name is None:
                os.chown(fd, uid, gid)
            else:
                os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)
        except OSError as error:
            if error.errno != errno.EINVAL:
                raise
            raise InvalidArgument(
                f"{self.noun} `{member.name}` is owned by {member.uid}:{member.gid}, which this "
                "user namespace does not map (too few subordinate ids in /etc/subuid, /etc/subgid?)"
            ) from None

    def _set_xattrs(self, fd: int, member) -> None:
        for key, value in _xattrs(member):
            _try_setxattr(lambda: os.setxattr(fd, key, value))

    def _set_xattrs_at(self, parent_fd: int, name: str, member) -> None:
        for key, value in _xattrs(member):
            _try_setxattr(lambda: os.setxattr(_at(parent_fd, name), key, value, follow_symlinks=False))

    def _forget_directories(self, path: str) -> None:
        """A replaced directory takes its subdirectories with it: no metadata to apply later."""
        for known in [p for p in self._dir_metadata if p == path or p.startswith(path + "/")]:
            del self._dir_metadata[known]

    def _apply_directory_metadata(self) -> None:
        # Deepest first, so that setting a parent's mtime is the last change in it.
        for path in sorted(self._dir_metadata, key=lambda p: p.count("/") + (p != "."), reverse=True):
            member = self._dir_metadata[path]
            fd = self._open_dir(path, f"{self.noun} `{member.name}`", create=False)
            try:
                self._chown(fd, None, member)
                self._set_xattrs(fd, member)
                os.chmod(fd, member.mode & 0o7777)
                os.utime(fd, ns=(_mtime_ns(member), _mtime_ns(member)))
            finally:
                os.close(fd)


def _at(dir_fd: int, name: str) -> str:
    # For the few calls that take no dir_fd (xattrs): the fd's /proc path stays
    # bound to the directory we opened without following symlinks.
    return f"/proc/self/fd/{dir_fd}/{name}"


def _on_overlayfs(dir_fd: int) -> bool:
    return filesystem_type(os.readlink(f"/proc/self/fd/{dir_fd}")) == "overlay"


def _create_empty(dir_fd: int, name: str) -> None:
    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o000, dir_fd=dir_fd))


def _is_dir_at(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _remove_at(dir_fd: int, name: str) -> None:
    """Replace semantics, as Docker: an existing entry is removed before a new one is written."""
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _xattrs(member):
    for key, value in member.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr."):]
        # Overlay's own attributes (whiteouts, redirects, metacopy) are ours to
        # set: a layer that brings them could make overlayfs look elsewhere.
        if ".overlay." in name:
            continue
        yield name, value.encode("utf-8", "surrogateescape")


def _try_setxattr(setter) -> None:
    try:
        setter()
    except OSError as error:
        # Not every file system or namespace allows every xattr (trusted.* rootless,
        # user.* on symlinks): keep what we can, as Docker does.
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES):
            raise


def _mtime_ns(member) -> int:
    return int(member.mtime * 1_000_000_000)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
