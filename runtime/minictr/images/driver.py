"""How a container's root is made from its image's layers: the storage driver.

- `overlay2`: the kernel's overlayfs, mounted by the monitor inside the
  container's mount namespace (lowerdirs are the store's short links, relative
  to image/l, so that 120 layers fit in the one page of mount options).
- `fuse-overlayfs`: where the kernel refuses overlayfs under the data root (the
  data root is itself on overlayfs, as in a CI job inside a container; or an old
  kernel in a user namespace). The daemon mounts it on the container's rootfs
  just before the monitor clones the container's mount namespace, which copies
  the mount; once the container exists the daemon detaches its own copy. The
  fuse mount then lives only in the container's namespace: it goes (and the
  fuse-overlayfs process with it) when the container's last process does, so
  nothing stays mounted after a stop, a crash of the daemon, or a removal.
- `vfs`: neither works: a container's rootfs is a full copy of its layers
  (made at its first start, whiteouts applied), bound onto itself by the monitor.

The choice is made once, at the daemon's start, by trying an overlay mount under
the data root as the monitor would make it (`hostinfo.try_overlay`, which
`minictr doctor` runs too). `MINICTR_STORAGE_DRIVER` (the daemon's configuration)
forces one (tests, and machines where the probe lies).
"""

import errno
import logging
import os
import shutil
import stat
import subprocess

from minictr.errors import MinictrError
from minictr.hostinfo import CannotStart, filesystem_type, fuse_overlayfs_path, try_overlay
from minictr.images.overlay_upper import is_opaque_dir, overlay_marker

log = logging.getLogger("minictr.driver")

OVERLAY2, FUSE_OVERLAYFS, VFS = "overlay2", "fuse-overlayfs", "vfs"
DRIVERS = (OVERLAY2, FUSE_OVERLAYFS, VFS)
_COPIED_MARK = ".rootfs-copied"  # in the container's dir: its vfs rootfs is complete


def choose(data_root: str, rootless: bool, forced: str = "") -> "StorageDriver":
    """The driver for this data root: `forced` (MINICTR_STORAGE_DRIVER) if given, else overlay2
    if the kernel mounts it there, else fuse-overlayfs when present, else vfs. The reason is
    kept for `info`."""
    if forced:
        if forced not in DRIVERS:
            raise CannotStart(f"MINICTR_STORAGE_DRIVER={forced}: not one of {', '.join(DRIVERS)}")
        if forced == FUSE_OVERLAYFS and fuse_overlayfs_path() is None:
            raise CannotStart("MINICTR_STORAGE_DRIVER=fuse-overlayfs: fuse-overlayfs or /dev/fuse is missing")
        return StorageDriver(forced, rootless, "chosen by MINICTR_STORAGE_DRIVER")
    trial = try_overlay(True, os.path.join(data_root, "image"), userxattr=rootless)
    if not trial.failure:
        return StorageDriver(OVERLAY2, rootless, "")
    why = f"overlayfs does not work on the data root ({trial.failure})"
    if fuse_overlayfs_path() is not None:
        driver = StorageDriver(FUSE_OVERLAYFS, rootless, why)
    else:
        driver = StorageDriver(VFS, rootless, why + " and fuse-overlayfs is not installed: containers get full copies")
    log.warning("storage driver %s: %s", driver.name, driver.reason)
    return driver


class StorageDriver:
    def __init__(self, name: str, rootless: bool, reason: str):
        self.name = name
        self.rootless = rootless
        self.reason = reason  # why not overlay2 ("" when it is)

    def status(self, data_root: str = "/") -> list:
        """`info`'s DriverStatus."""
        fstype = filesystem_type(os.path.realpath(data_root)) or "unknown"
        rows = [["Backing Filesystem", {"ext4": "extfs", "ext3": "extfs", "overlay": "overlayfs"}.get(fstype, fstype)]]
        if self.name == FUSE_OVERLAYFS:
            rows.append(["Program", fuse_overlayfs_path() or "fuse-overlayfs"])
        if self.reason:
            rows.append(["Reason", self.reason])
        return rows

    # --- a container's start: the monitor's filesystem keys ---

    def prepare(self, image, top: str) -> list:
        """Before the monitor is spawned: the config entries for the container's root
        (`top` is the container's directory, with rootfs/, diff/, work/)."""
        rootfs = os.path.join(top, "rootfs")
        if self.name == OVERLAY2:
            return ([("rootfs", rootfs), ("lower_dir", str(image.link_dir))]
                    + [("lower", name) for name in image.layer_links]
                    + [("upper", os.path.join(top, "diff")), ("work", os.path.join(top, "work"))])
        if self.name == FUSE_OVERLAYFS:
            self.mount(image, top)
        else:
            copy_layers(image.layer_dirs, top)
        return [("rootfs", rootfs), ("rootfs_ready", "1")]

    def created(self, top: str) -> None:
        """Once the monitor made the container's mount namespace (or failed to): the
        daemon's own copy of a fuse mount goes; the container's stays while it runs."""
        if self.name == FUSE_OVERLAYFS:
            self.unmount(top)

    # --- the container's files from the daemon (cp, export of a stopped container) ---

    def mount(self, image, top: str) -> None:
        """The container's root on top/rootfs in the daemon's mount namespace."""
        rootfs, upper, work = (os.path.join(top, d) for d in ("rootfs", "diff", "work"))
        from minictr import native

        if self.name == OVERLAY2:
            native.mount_overlay(rootfs, image.layer_links, upper, work, self.rootless,
                                 lower_dir=str(image.link_dir))
        elif self.name == FUSE_OVERLAYFS:
            self.unmount(top)  # a copy a crash left in the daemon's namespace
            # allow_other: the container's users are not the mounting user (and, rootless,
            # live in a child user namespace of the daemon's). suid and dev: libfuse mounts
            # nosuid,nodev unless told, and a container's setuid programs and its --device nodes
            # must work as on overlay2 (a user namespace's mount stays nodev whatever it asks).
            options = (f"lowerdir={':'.join(image.layer_links)},upperdir={upper},workdir={work},allow_other,suid"
                       + ("" if self.rootless else ",dev"))
            result = subprocess.run([fuse_overlayfs_path() or "fuse-overlayfs", "-o", options, rootfs],
                                    cwd=str(image.link_dir), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
            if result.returncode != 0:
                message = result.stderr.decode(errors="replace").strip().splitlines()
                raise MinictrError(f"fuse-overlayfs on `{rootfs}`: {message[-1] if message else result.returncode}")
        else:
            copy_layers(image.layer_dirs, top)

    def unmount(self, top: str) -> None:
        if self.name == VFS:
            return
        from minictr import native

        rootfs = os.path.join(top, "rootfs")
        try:
            native.unmount(rootfs)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):
                log.warning("%s", e)


# --- vfs: a full copy of the layers ---------------------------------------------------------


def copy_layers(layer_dirs: list, top: str) -> None:
    """Make top/rootfs a copy of the layers (top-most first in `layer_dirs`), once.

    Layers are applied bottom-up: an opaque directory empties what lower layers put
    there, a whiteout removes the path. Owners, modes, times, xattrs (but overlay's)
    and hard links within a layer are kept."""
    mark = os.path.join(top, _COPIED_MARK)
    if os.path.exists(mark):
        return
    rootfs = os.path.join(top, "rootfs")
    _empty_dir(rootfs)
    for layer in reversed([str(d) for d in layer_dirs]):
        _apply_layer(layer, rootfs)
    with open(mark, "w"):
        pass


def _empty_dir(path: str) -> None:
    for name in os.listdir(path):
        child = os.path.join(path, name)
        if os.path.isdir(child) and not os.path.islink(child):
            shutil.rmtree(child)
        else:
            os.unlink(child)


def _apply_layer(layer: str, rootfs: str) -> None:
    linked = {}  # (dev, ino) of a layer file -> its copy: hard links stay links
    directories = []
    for dirpath, dirnames, filenames in os.walk(layer):
        relative = os.path.relpath(dirpath, layer)
        target_dir = rootfs if relative == "." else os.path.join(rootfs, relative)
        dir_fd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if relative != "." and is_opaque_dir(dir_fd) and os.path.isdir(target_dir):
                _empty_dir(target_dir)
            _apply_directories(dirpath, target_dir, dirnames, linked, directories)
            _apply_files(dir_fd, dirpath, target_dir, filenames, linked)
        finally:
            os.close(dir_fd)
    root_st = os.lstat(layer)
    directories.append((layer, rootfs, root_st))
    for source, target, st in reversed(directories):  # deepest first: times stay
        _copy_metadata(source, target, st)


def _apply_directories(dirpath: str, target_dir: str, dirnames: list, linked: dict, directories: list) -> None:
    for name in sorted(dirnames):
        source, target = os.path.join(dirpath, name), os.path.join(target_dir, name)
        st = os.lstat(source)
        if stat.S_ISLNK(st.st_mode):  # os.walk lists symlinks to directories here
            _replace(target)
            _copy_entry(source, target, st, linked)
            dirnames.remove(name)
            continue
        if not os.path.isdir(target) or os.path.islink(target):
            _replace(target)
            os.mkdir(target, 0o700)
        directories.append((source, target, st))


def _apply_files(dir_fd: int, dirpath: str, target_dir: str, filenames: list, linked: dict) -> None:
    for name in filenames:
        source = os.path.join(dirpath, name)
        st = os.lstat(source)
        marker = overlay_marker(dir_fd, name, st)
        if marker is not None:
            if not marker.opaque:
                _replace(os.path.join(target_dir, marker.hidden))
            continue
        target = os.path.join(target_dir, name)
        _replace(target)
        _copy_entry(source, target, st, linked)


def _replace(target: str) -> None:
    if os.path.isdir(target) and not os.path.islink(target):
        shutil.rmtree(target)
    elif os.path.lexists(target):
        os.unlink(target)


def _copy_entry(source: str, target: str, st, linked: dict) -> None:
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and key in linked:
        os.link(linked[key], target, follow_symlinks=False)
        return
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), target)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(source, target, follow_symlinks=False)
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(target, 0o600)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        os.mknod(target, (st.st_mode & ~0o7777) | 0o600, st.st_rdev)
    else:
        return
    _copy_metadata(source, target, st)
    if st.st_nlink > 1:
        linked[key] = target


def _copy_metadata(source: str, target: str, st) -> None:
    os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
    for name in _listxattr(source):
        if ".overlay." in name:
            continue
        try:
            os.setxattr(target, name, os.getxattr(source, name, follow_symlinks=False), follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES):
                raise
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(target, stat.S_IMODE(st.st_mode))  # after chown, which clears setuid
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _listxattr(path: str) -> list:
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []
