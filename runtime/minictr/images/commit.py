"""`docker commit`, the image side: an overlay upper dir and a container config become a new
image, the dir a new layer on top of the container's image (containers/commit.py picks the dir).

The upper dir is written as an OCI layer tar: whiteouts, in whichever form the
driver left them (overlay_upper.overlay_marker: a 0/0 character device, an xattr
whiteout, fuse-overlayfs' `.wh.NAME` file), become one `.wh.NAME` entry each, and
an opaque directory (any of its forms) gets one `.wh..wh..opq` entry. A file
fuse-overlayfs copied up unchanged (another hard link of a file it deleted) is
left out. The tar is
then extracted by the same hostile-tar-proof code as any pulled layer (so the
stored layer is made exactly as a pulled one would be), and the tar itself is
kept as the layer's blob: `save` and `push` hand out those exact bytes.

The mount points the monitor makes when the image lacks them (/proc, /sys,
/dev, /etc/hostname, …) are left out while still empty, as Docker leaves out
its init layer.
"""

import errno
import json
import os
import stat
import tarfile
import tempfile

from minictr.images import archive
from minictr.spec import health
from minictr.spec import reference as references
from minictr.images.archive import PendingImage
from minictr.images.layers import extract_layer
from minictr.images.overlay_upper import (WHITEOUT_PREFIX, ExactSize, is_opaque_dir, lookup_lower, overlay_marker,
                                          same_as_lower, whited_out)

LAYER_MEDIA_TYPE = "application/vnd.docker.image.rootfs.diff.tar"
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PLACEHOLDERS = {"proc", "sys", "dev", "etc/hostname", "etc/hosts", "etc/resolv.conf", "sbin/docker-init",
                 ".dockerenv"}


def commit_config(parent: dict, container_config: dict, changes: list[str], overrides: dict | None,
                  message: str, author: str, container_id: str, diff_id: str) -> bytes:
    """The new image's config document (the exact bytes that are hashed into its id).

    As Docker's daemon: the container's config, then the request body's config
    on top of it, then the `--change` lines; history and diff ids extend the parent's."""
    config = {key: value for key, value in container_config.items() if value not in (None, "", [], {})
              or key in ("Cmd", "Entrypoint")}
    for key, value in (overrides or {}).items():
        if value not in (None, "", [], {}):
            config[key] = value
    changed = archive.config_from_changes(changes)
    config.update(changed)
    # A new Healthcheck (the body's, a HEALTHCHECK change over it) takes the container's
    # fields where it has none, as Docker's commit merges it.
    requested = changed.get("Healthcheck") or (overrides or {}).get("Healthcheck")
    if requested:
        config["Healthcheck"] = health.merge(requested, container_config.get("Healthcheck"))
    created = archive.rfc3339_now()
    created_by = " ".join((container_config.get("Entrypoint") or []) + (container_config.get("Cmd") or []))
    entry = {"created": created, "created_by": created_by}
    entry.update({"author": author} if author else {})
    entry.update({"comment": message} if message else {})
    document = {
        "architecture": parent.get("architecture") or archive.host_architecture(),
        **({"author": author} if author else {}),
        **({"comment": message} if message else {}),
        "config": config,
        "container": container_id,
        "container_config": container_config,  # as Docker's commit keeps it: `image inspect`'s ContainerConfig
        "created": created,
        "history": list(parent.get("history") or []) + [entry],
        "os": parent.get("os") or "linux",
        "rootfs": {"type": "layers", "diff_ids": list(parent["rootfs"]["diff_ids"]) + [diff_id]},
        **({"variant": parent["variant"]} if parent.get("variant") else {}),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def write_layer_tar(upper: str, lower_dirs: list, out) -> None:
    """The OCI layer tar of an overlay upper dir; `lower_dirs` (top-most first) tell which of
    the monitor's mount points the image has (those are kept)."""
    upper_fd = os.open(upper, _DIR)
    lower_fds = []
    try:
        for path in lower_dirs:
            lower_fds.append(os.open(path, _DIR))
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _UpperWalker(tar, lower_fds).children(upper_fd, "", lower_fds)
    finally:
        for fd in [upper_fd] + lower_fds:
            os.close(fd)


class _UpperWalker:
    def __init__(self, tar, lower_fds):
        self.tar = tar
        self.lower_fds = lower_fds
        self.links = {}  # (dev, ino) -> first name, for hard links within the layer

    def children(self, dir_fd: int, prefix: str, lowers: list) -> bool:
        """Adds the entries below a directory (`lowers`: the same directory in the image's layers,
        as overlayfs merges them); False when all of it was left out."""
        with os.scandir(dir_fd) as entries:
            names = sorted(entry.name for entry in entries)
        contents, whiteouts = [], {}
        for name in names:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            marker = overlay_marker(dir_fd, name, st)
            if marker is None:
                contents.append((name, st))
            elif not marker.opaque:  # the opaque marker is written with its directory
                whiteouts.setdefault(marker.hidden, st)
        added = False
        kept = {name for name, _ in contents}
        for hidden, st in sorted(whiteouts.items()):
            if hidden not in kept:  # deleted then made again: the new entry alone, as Docker writes it
                self.tar.addfile(_info(st, f"{prefix}{WHITEOUT_PREFIX}{hidden}", tarfile.REGTYPE, mode=0))
                added = True
        for name, st in contents:
            found_in, child_lowers = lookup_lower(lowers, name)
            try:
                added |= self.entry(dir_fd, name, f"{prefix}{name}", st, found_in, child_lowers)
            finally:
                for fd in child_lowers:
                    os.close(fd)
        return added

    def entry(self, dir_fd: int, name: str, path: str, st, found_in, child_lowers) -> bool:
        if stat.S_ISDIR(st.st_mode):
            return self.directory(dir_fd, name, path, st, child_lowers)
        if path in _PLACEHOLDERS and st.st_size == 0 and not self._in_image(path):
            return False
        if found_in is not None and same_as_lower(dir_fd, name, st, found_in):
            return False  # copied up unchanged (fuse-overlayfs: a hard link of a deleted file)
        if stat.S_ISREG(st.st_mode):
            self.regular(dir_fd, name, path, st)
        elif stat.S_ISLNK(st.st_mode):
            info = _info(st, path, tarfile.SYMTYPE)
            info.linkname = os.readlink(name, dir_fd=dir_fd)
            self.tar.addfile(info)
        elif stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            kind = {stat.S_IFIFO: tarfile.FIFOTYPE, stat.S_IFCHR: tarfile.CHRTYPE,
                    stat.S_IFBLK: tarfile.BLKTYPE}[stat.S_IFMT(st.st_mode)]
            info = _info(st, path, kind)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tar.addfile(info)
        else:
            return False  # sockets: tar has no type for them
        return True

    def directory(self, dir_fd: int, name: str, path: str, st, lowers: list) -> bool:
        fd = os.open(name, _DIR, dir_fd=dir_fd)
        try:
            opaque = is_opaque_dir(fd)
            if not opaque and _holds_placeholders(path) and not self._in_image(path) \
                    and not self._has_content(fd, path + "/"):
                return False  # made only to hold the monitor's mount points
            info = _info(st, path + "/", tarfile.DIRTYPE)
            info.pax_headers.update(_xattr_headers(fd, None))
            self.tar.addfile(info)
            if opaque:
                self.tar.addfile(_info(st, f"{path}/.wh..wh..opq", tarfile.REGTYPE, mode=0))
            self.children(fd, path + "/", [] if opaque else lowers)
            return True
        finally:
            os.close(fd)

    def _has_content(self, dir_fd: int, prefix: str) -> bool:
        with os.scandir(dir_fd) as entries:
            names = sorted(entry.name for entry in entries)
        for name in names:
            path = prefix + name
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if not _holds_placeholders(path) or self._in_image(path):
                return True
            if stat.S_ISDIR(st.st_mode):
                fd = os.open(name, _DIR, dir_fd=dir_fd)
                try:
                    if is_opaque_dir(fd) or self._has_content(fd, path + "/"):
                        return True
                finally:
                    os.close(fd)
            elif not (stat.S_ISREG(st.st_mode) and st.st_size == 0):
                return True
        return False

    def regular(self, dir_fd: int, name: str, path: str, st) -> None:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            info = _info(st, path, tarfile.LNKTYPE)
            info.linkname = self.links[key]
            self.tar.addfile(info)
            return
        if st.st_nlink > 1:
            self.links[key] = path
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as file:
            info = _info(os.fstat(file.fileno()), path, tarfile.REGTYPE)
            info.size = os.fstat(file.fileno()).st_size
            info.pax_headers.update(_xattr_headers(file.fileno(), None))
            self.tar.addfile(info, ExactSize(file, info.size))

    def _in_image(self, path: str) -> bool:
        parent, _, base = path.rpartition("/")
        for fd in self.lower_fds:
            try:
                parent_fd = os.open(parent or ".", _DIR, dir_fd=fd)
            except OSError:
                continue
            try:
                if whited_out(parent_fd, base):
                    return False
                os.stat(base, dir_fd=parent_fd, follow_symlinks=False)
                return True
            except OSError:
                continue
            finally:
                os.close(parent_fd)
        return False


def _holds_placeholders(path: str) -> bool:
    return any(p == path or p.startswith(path + "/") for p in _PLACEHOLDERS)


def _xattr_headers(fd: int, name) -> dict:
    headers = {}
    try:
        keys = os.listxattr(fd)
    except OSError:
        return headers
    for key in keys:
        if ".overlay." in key:
            continue  # overlay's bookkeeping is not part of the layer
        try:
            value = os.getxattr(fd, key)
        except OSError as error:
            if error.errno in (errno.ENODATA, errno.EPERM, errno.EACCES, errno.ENOTSUP):
                continue
            raise
        headers[f"SCHILY.xattr.{key}"] = value.decode("utf-8", "surrogateescape")
    return headers


def _info(st, name: str, kind, mode: int | None = None):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode) if mode is None else mode
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    return info


def stage_commit(store, upper: str, image, container_config: dict, container_id: str, *, changes: list[str],
                 overrides: dict | None, message: str, author: str, reference: str | None):
    """Build the new image from the upper dir `upper` over `image`: a StagedImage (the caller
    stores it, then closes it)."""
    tags = [references.parse(reference)] if reference else []
    archive.config_from_changes(changes)  # a bad --change fails before any work
    tar_file = tempfile.TemporaryFile(dir=store.tmp_dir)
    try:
        write_layer_tar(upper, [str(d) for d in image.layer_dirs], tar_file)
        tar_file.seek(0)
        layer = extract_layer(tar_file, store.layers_dir, rootless=store.rootless,
                              max_size=store.max_layer_size, what="the container's changes")
        config_bytes = commit_config(image.document, container_config, changes, overrides, message, author,
                                     container_id, layer.diff_id)
        pending = PendingImage(config_bytes, [None] * len(image.layer_dirs) + [layer], tags)
        pending.parent = image.id  # Docker's Parent: the store keeps it, the image's config does not
        tar_file.seek(0)
        return StagedImage(pending, tar_file, layer)
    except BaseException:
        tar_file.close()
        raise


class StagedImage:
    """A committed image made but not stored yet: its PendingImage, and its layer's tar (a
    temporary file, kept as the layer's blob: `save` and `push` hand out those exact bytes)."""

    def __init__(self, pending, tar_file, layer):
        self.pending = pending
        self.tar_file = tar_file
        self.layer = layer

    def store(self, store) -> str:
        """Keep the layer's tar as its blob, then commit the image; returns its id."""
        with store.blobs.writer(expected_digest=self.layer.diff_id, what="the container's changes") as writer:
            while chunk := self.tar_file.read(1 << 20):
                writer.write(chunk)
        self.pending.blobs = [(self.layer.diff_id, self.layer.diff_id, LAYER_MEDIA_TYPE, writer.size)]
        try:
            return store._commit(self.pending)
        except BaseException:
            store.forget_unrecorded_blobs([self.layer.diff_id])
            raise

    def close(self):
        self.tar_file.close()
        self.pending.discard()
