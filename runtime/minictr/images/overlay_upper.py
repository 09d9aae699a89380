"""Reading an overlay upper directory as a layer's content: what both `commit` (the layer
tar) and a container's `diff`/`cp` (containers/files.py) need.

Which entries are overlay's markers rather than content is decided here, once, for every
form a layer or an upper dir may hold them in:

- a whiteout (the name is deleted from the layers below): a 0/0 character device
  (overlayfs); an empty file marked `user.overlay.whiteout` (overlayfs' "xattr whiteout",
  rootless on kernels that refuse the device in a user namespace); a file `.wh.NAME`
  (the OCI form, which fuse-overlayfs writes where it cannot make the device: on a data
  root on overlayfs, which refuses whiteout devices, and which the store keeps there too);
- an opaque directory (the layers below are hidden): `trusted.overlay.opaque`,
  `user.overlay.opaque` (userxattr) or fuse-overlayfs' `user.fuseoverlayfs.opaque` set to
  "y", or a file `.wh..wh..opq` in it (fuse-overlayfs always makes one beside the xattr).
"""

import os
import stat
from typing import NamedTuple

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque", "user.fuseoverlayfs.opaque")
_XATTR_WHITEOUT = "user.overlay.whiteout"


class Marker(NamedTuple):
    """An entry that is overlay's bookkeeping: `hidden` is the name a whiteout deletes ("" for
    the opaque marker file, which makes its directory opaque)."""

    hidden: str

    @property
    def opaque(self):
        return self.hidden == ""


def overlay_marker(dir_fd, name, st):
    """The Marker entry `name` of directory `dir_fd` (an upper dir or a layer; `st` its lstat)
    is, or None when it is content."""
    if name == OPAQUE_MARKER:
        return Marker("")
    if name.startswith(WHITEOUT_PREFIX) and len(name) > len(WHITEOUT_PREFIX):
        return Marker(name[len(WHITEOUT_PREFIX):])
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return Marker(name)
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        try:
            os.getxattr(f"/proc/self/fd/{dir_fd}/{name}", _XATTR_WHITEOUT, follow_symlinks=False)
            return Marker(name)
        except OSError:
            pass
    return None


def whited_out(dir_fd, name):
    """Whether a layer directory (`dir_fd`) holds a whiteout of `name`, in any form."""
    for candidate in (name, WHITEOUT_PREFIX + name):
        try:
            st = os.stat(candidate, dir_fd=dir_fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            continue
        marker = overlay_marker(dir_fd, candidate, st)
        if marker is not None and marker.hidden == name:
            return True
    return False


class ExactSize:
    """A file's bytes cut or zero-padded to the size its tar header announced (it may change
    while we read it)."""

    def __init__(self, f, size):
        self._f = f
        self._left = size

    def read(self, size=-1):
        if self._left <= 0:
            return b""
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._f.read(size) or b"\0" * size
        self._left -= len(data)
        return data


def is_opaque_dir(fd):
    """Whether a directory of an upper dir or a layer (an fd) is opaque: it hides the lower
    layers' entries. ("x" in user.overlay.opaque only says it holds xattr whiteouts.)"""
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(fd, name) == b"y":
                return True
        except OSError:
            pass
    try:
        os.stat(OPAQUE_MARKER, dir_fd=fd, follow_symlinks=False)
        return True
    except (FileNotFoundError, NotADirectoryError):
        return False


def same_as_lower(upper_fd, name, st, lower_fd):
    """Whether the regular file `name` of an upper dir (`st` its lstat) is an unchanged copy of
    the one in the layer directory `lower_fd`: same owner, mode, size, modification time and
    bytes. fuse-overlayfs copies up the other hard links of a file it deletes (busybox's
    /bin/mt when /bin/ls goes), and such a copy is no change."""
    try:
        below = os.stat(name, dir_fd=lower_fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if not (stat.S_ISREG(st.st_mode) and stat.S_ISREG(below.st_mode)):
        return False
    if (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns) != \
            (below.st_mode, below.st_uid, below.st_gid, below.st_size, below.st_mtime_ns):
        return False
    return _own_xattrs(upper_fd, name) == _own_xattrs(lower_fd, name) and _same_bytes(upper_fd, lower_fd, name)


def _own_xattrs(dir_fd, name):
    """A file's extended attributes but the overlay drivers' bookkeeping (fuse-overlayfs marks
    a copy with user.fuseoverlayfs.origin)."""
    path = f"/proc/self/fd/{dir_fd}/{name}"
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    values = {}
    for key in keys:
        if ".overlay." in key or ".fuseoverlayfs." in key:
            continue
        try:
            values[key] = os.getxattr(path, key, follow_symlinks=False)
        except OSError:
            continue
    return values


def _same_bytes(upper_fd, lower_fd, name):
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    with open(os.open(name, flags, dir_fd=upper_fd), "rb") as mine, \
            open(os.open(name, flags, dir_fd=lower_fd), "rb") as theirs:
        while True:
            a, b = mine.read(1 << 20), theirs.read(1 << 20)
            if a != b:
                return False
            if not a:
                return True


def lookup_lower(lower_fds, name):
    """Where overlayfs finds `name` beneath an upper directory, given the fds of the same
    directory in the lower layers (top-most first): the fd of the layer directory that has it
    (None when none does), and fds of the directories of that name it merges (the caller
    closes them)."""
    found_in = None
    child_fds = []
    for fd in lower_fds:
        if whited_out(fd, name):
            break  # a whiteout in this layer hides the ones beneath
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            continue
        found_in = fd if found_in is None else found_in
        if not stat.S_ISDIR(st.st_mode):
            break
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        child_fds.append(child)
        if is_opaque_dir(child):
            break
    return found_in, child_fds
