"""A container's files seen from the daemon: `docker cp` (the archive endpoints), diff, export, top.

Every path inside a container is resolved inside the container's root, never
through its symlinks to the host: the first step goes through openat2 with
RESOLVE_IN_ROOT (native.open_in_root), every later one through a directory fd
with O_NOFOLLOW, so that a container swapping a directory for a symlink while
we copy cannot redirect us (CVE-2018-15664).

The root is /proc/PID/root while the container runs. A created or exited
container's overlay is mounted nowhere (only inside its own mount namespace
while it runs), so it is mounted at containers/<id>/rootfs in the daemon's
own mount namespace for as long as one operation lasts, with the container's
lock held: one such mount per container, and no start meanwhile.
"""

import asyncio
import base64
import contextlib
import errno
import json
import os
import posixpath
import stat
import tarfile
import time

from minictr import native
from minictr.containers.state import State
from minictr.errors import Conflict, InvalidArgument, MinictrError, NotFound
from minictr.images.overlay_upper import ExactSize, is_opaque_dir, lookup_lower, overlay_marker, same_as_lower
from minictr.tasks import thread_stream

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# diff's kinds, as Docker numbers them
MODIFIED, ADDED, DELETED = 0, 1, 2

# What the monitor creates when the image lacks it (mount points); Docker keeps these
# in an init layer, so that `docker diff` of a fresh container is empty.
_PLACEHOLDERS = {"/proc", "/sys", "/dev", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf",
                 "/sbin/docker-init", "/.dockerenv"}


# ---- the container's root ----------------------------------------------------------------

@contextlib.asynccontextmanager
async def container_root(service, ref, with_volumes=False):
    """An O_PATH fd on the container's `/` for the duration of the block (see the module's doc);
    `with_volumes`: its volumes and binds mounted on it when it is not running (the archive
    endpoints; not export, whose tar has none, nor the seeding of a new volume)."""
    container = service.get(ref)
    await container.lock.acquire()
    locked = True
    try:
        _check_not_removed(container)
        if container.state.alive:
            root_fd = os.open(f"/proc/{container.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            # A running container needs no mount: let it stop, restart, be paused meanwhile.
            container.lock.release()
            locked = False
            try:
                yield root_fd
            finally:
                os.close(root_fd)
            return
        root_fd, mount_point = await asyncio.to_thread(_mount_overlay, service, container, with_volumes)
        try:
            yield root_fd
        finally:
            await asyncio.to_thread(_unmount_overlay, service, root_fd, mount_point)
    finally:
        if locked:
            container.lock.release()


def _check_not_removed(container):
    if container.removed:
        raise NotFound(f"No such container: {container.id}")
    if container.state is State.REMOVING:
        raise Conflict(f"removal of container {container.name} is already in progress")


def _mount_overlay(service, container, with_volumes):
    """The container's root, with its volumes and binds on it if asked, as Docker mounts them
    for an archive operation on a container that is not running: a file put into a volume of
    a created container is there when it starts. Returns (fd on the root, (top, mounted))."""
    image = service.images.resolve(container.image_id)
    top = os.path.join(service.data_dir, container.id)
    service.driver.mount(image, top)  # the storage driver's root (vfs: the copy itself, no mount)
    root_fd, mounted = -1, []
    try:
        root_fd = os.open(os.path.join(top, "rootfs"), os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        for source, destination, readonly in service.mounting.archive_binds(container) if with_volumes else ():
            try:
                native.bind_mount_in_root(root_fd, source, destination, readonly)
            except OSError as e:
                raise MinictrError(f"mounting {destination} of container {container.name}: {e.strerror}") from None
            mounted.append(_mounted_path(root_fd, destination))
        return root_fd, (top, mounted)
    except BaseException:
        _unmount_overlay(service, root_fd, (top, mounted))
        raise


def _mounted_path(root_fd, destination):
    """Where a bind just mounted at `destination` is on the host, as the kernel resolved it
    inside the root (never by following the container's symlinks again)."""
    fd = native.open_in_root(root_fd, destination, os.O_PATH)
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _unmount_overlay(service, root_fd, mount_point):
    top, mounted = mount_point
    if root_fd >= 0:
        os.close(root_fd)
    for path in reversed(mounted):
        native.unmount(path)
    service.driver.unmount(top)


# ---- paths -------------------------------------------------------------------------------

def _absolute(path):
    """The path made absolute and clean, keeping a trailing `/` or `/.` (they assert a directory)."""
    if not path:
        raise InvalidArgument("path cannot be empty")
    cleaned = posixpath.normpath("/" + path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if posixpath.basename(path) == "." and posixpath.basename(cleaned) != ".":
        cleaned = cleaned.rstrip("/") + "/."
    elif path.endswith("/") and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def _open_parent(root_fd, abs_path, ref):
    """(fd on the directory part resolved in the container, the last component or '' or '.')."""
    directory, base = abs_path.rsplit("/", 1)
    try:
        return native.open_in_root(root_fd, directory or "/", os.O_PATH | os.O_DIRECTORY), base
    except OSError as e:
        raise _path_error(e, abs_path, ref) from None


def _path_error(error, abs_path, ref):
    if error.errno == errno.ENOENT:
        return NotFound(f"Could not find the file {abs_path} in container {ref}")
    if error.errno == errno.ENOTDIR:
        return InvalidArgument(f"{abs_path}: not a directory")
    if error.errno in (errno.ELOOP, errno.EXDEV):
        return InvalidArgument(f"{abs_path}: too many levels of symbolic links")
    return MinictrError(f"{abs_path}: {error.strerror}")


class _Target:
    """What a path names: the entry `base` in directory `parent_fd` (never followed when it is
    a symlink), or the directory itself (base '')."""

    def __init__(self, root_fd, path, ref):
        self.abs_path = _absolute(path)
        self.parent_fd, base = _open_parent(root_fd, self.abs_path, ref)
        self.base = "" if base == "." else base
        # The name of the entry in the archive and in the stat header, as Docker names it.
        self.name = base or posixpath.basename(self.abs_path.rstrip("/")) or "/"
        try:
            if self.base:
                self.stat = os.stat(self.base, dir_fd=self.parent_fd, follow_symlinks=False)
            else:
                self.stat = os.fstat(self.parent_fd)
        except OSError as e:
            os.close(self.parent_fd)
            raise _path_error(e, self.abs_path, ref) from None
        self.root_fd = root_fd

    def close(self):
        os.close(self.parent_fd)

    def path_stat(self):
        """Docker's ContainerPathStat: {name, size, mode (Go's os.FileMode bits), mtime, linkTarget}."""
        st = self.stat
        link_target = ""
        if stat.S_ISLNK(st.st_mode):
            link_target = self._resolve_link()
        mtime = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(st.st_mtime_ns // 10**9))
        return {"name": self.name, "size": st.st_size, "mode": go_file_mode(st.st_mode),
                "mtime": f"{mtime}.{st.st_mtime_ns % 10**9:09d}Z", "linkTarget": link_target}

    def _resolve_link(self):
        """Where the symlink leads, as an absolute path in the container (followed as far as it goes)."""
        path = self.abs_path.rstrip("/")
        for _ in range(40):
            directory, base = path.rsplit("/", 1)
            try:
                parent = native.open_in_root(self.root_fd, directory or "/", os.O_PATH | os.O_DIRECTORY)
            except OSError:
                return path
            try:
                target = os.readlink(base, dir_fd=parent)
            except OSError:
                return path  # not a symlink (any more), or missing: that is where it leads
            finally:
                os.close(parent)
            path = posixpath.normpath(posixpath.join(directory or "/", target))
            if path.startswith("//"):
                path = "/" + path.lstrip("/")
        return path


def go_file_mode(mode):
    """A stat mode as Go's os.FileMode, what the docker CLI reads in X-Docker-Container-Path-Stat."""
    bits = mode & 0o777
    kind = stat.S_IFMT(mode)
    bits |= {stat.S_IFDIR: 1 << 31, stat.S_IFLNK: 1 << 27, stat.S_IFIFO: 1 << 25, stat.S_IFSOCK: 1 << 24,
             stat.S_IFBLK: 1 << 26, stat.S_IFCHR: (1 << 26) | (1 << 21)}.get(kind, 0)
    if mode & stat.S_ISUID:
        bits |= 1 << 23
    if mode & stat.S_ISGID:
        bits |= 1 << 22
    if mode & stat.S_ISVTX:
        bits |= 1 << 20
    return bits


def encode_path_stat(path_stat):
    return base64.urlsafe_b64encode(json.dumps(path_stat).encode()).decode()


# ---- archive: GET, HEAD, PUT ------------------------------------------------------------------

async def stat_path(service, ref, path):
    """HEAD /containers/{id}/archive: the stat of `path` (its last component not followed)."""
    async with container_root(service, ref, with_volumes=True) as root_fd:
        return await asyncio.to_thread(_stat_path, root_fd, path, ref)


def _stat_path(root_fd, path, ref):
    target = _Target(root_fd, path, ref)
    try:
        return target.path_stat()
    finally:
        target.close()


async def archive_path(service, ref, path):
    """GET /containers/{id}/archive: the stat of `path` and an async iterator of a tar of it.

    The stat is taken now (a missing path is an error before any byte is sent); the tar is
    made as the iterator is consumed, resolving the path again."""
    path_stat = await stat_path(service, ref, path)

    async def chunks():
        async with container_root(service, ref, with_volumes=True) as root_fd:
            async for chunk in thread_stream(lambda out: _write_archive(root_fd, path, ref, out)):
                yield chunk

    return path_stat, chunks()


def _write_archive(root_fd, path, ref, out):
    target = _Target(root_fd, path, ref)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            archiver = _Archiver(tar)
            if target.base:
                archiver.add(target.parent_fd, target.base, target.name)
            else:
                # The directory itself (`/dir/` or `/dir/.`): its fd is O_PATH, reopen it to list it.
                fd = os.open(".", _DIR, dir_fd=target.parent_fd)
                try:
                    archiver.add_directory(fd, os.fstat(fd), "." if target.name == "/" else target.name)
                finally:
                    os.close(fd)
    finally:
        target.close()


async def extract_to_dir(service, ref, path, spool, no_overwrite_dir_non_dir=False, copy_uid_gid=False):
    """PUT /containers/{id}/archive: extract the tar in `spool` into directory `path`
    (followed, as Docker does, when it is a symlink to a directory)."""
    _check_not_read_only_mount(service.get(ref), _absolute(path))
    owner = None
    if copy_uid_gid:
        owner = await asyncio.to_thread(_container_user, service, service.get(ref))
    async with container_root(service, ref, with_volumes=True) as root_fd:
        await asyncio.to_thread(_extract, service, root_fd, path, ref, spool, no_overwrite_dir_non_dir, owner)


def _check_not_read_only_mount(container, abs_path):
    """Docker's checkIfPathIsInAVolume: a put into a read-only volume or bind is refused up front."""
    inside = [m for m in container.mounts if m["type"] in ("volume", "bind")
              and posixpath.relpath(abs_path, m["destination"]).split("/")[0] != ".."]
    if inside and not max(inside, key=lambda m: len(m["destination"]))["rw"]:
        raise InvalidArgument("mounted volume is marked read-only")


def _container_user(service, container):
    """docker cp -a: the files belong to the container's user (Docker's ChownOpts); None when unset."""
    from minictr.containers.users import resolve_user

    if not container.config.get("User"):
        return None
    image = service.images.resolve(container.image_id)
    upper = os.path.join(service.data_dir, container.id, "diff")
    uid, gid, _groups = resolve_user(container.config["User"], [upper] + image.layer_dirs)
    return uid, gid


def _extract(service, root_fd, path, ref, spool, no_overwrite_dir_non_dir, owner):
    from minictr.images.layers import extract_into

    abs_path = _absolute(path)
    try:
        dir_fd = native.open_in_root(root_fd, abs_path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        if e.errno == errno.ENOTDIR:
            raise InvalidArgument(f"extraction point is not a directory: {abs_path}") from None
        raise _path_error(e, abs_path, ref) from None
    try:
        extract_into(spool, dir_fd, rootless=service.rootless,
                     no_overwrite_dir_non_dir=no_overwrite_dir_non_dir, owner=owner)
    except PermissionError as e:
        raise Conflict(f"cannot write to {abs_path} in container {ref}: {e.strerror}") from None
    finally:
        os.close(dir_fd)


# ---- export -----------------------------------------------------------------------------------

async def export(service, ref):
    """GET /containers/{id}/export: the container's whole filesystem as a tar, made as it is read.
    Of a running container, the mounts inside it (/proc, /dev, /sys) are empty directories."""
    service.get(ref)  # a missing container answers 404 before the stream starts

    async def chunks():
        async with container_root(service, ref) as root_fd:
            async for chunk in thread_stream(lambda out: _write_export(root_fd, out)):
                yield chunk

    return chunks()


def _write_export(root_fd, out):
    fd = os.open(".", _DIR, dir_fd=root_fd)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            root_stat = os.fstat(fd)
            archiver = _Archiver(tar, one_file_system=root_stat.st_dev)
            archiver.add_children(fd, "")
    finally:
        os.close(fd)


# ---- writing a tar from directory fds ---------------------------------------------------------

class _Archiver:
    """Adds entries to a tar, walking below directory fds without following any symlink."""

    def __init__(self, tar, one_file_system=None):
        self.tar = tar
        self.device = one_file_system  # do not descend into directories of another device (mounts)
        self.links = {}  # (dev, ino) of files with several links -> their first name

    def add(self, parent_fd, name, arcname):
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                fd = os.open(name, _DIR, dir_fd=parent_fd)
                try:
                    self.add_directory(fd, os.fstat(fd), arcname)
                finally:
                    os.close(fd)
            elif stat.S_ISREG(st.st_mode):
                self._add_file(parent_fd, name, arcname)
            elif stat.S_ISLNK(st.st_mode):
                info = self._info(st, arcname, tarfile.SYMTYPE)
                info.linkname = os.readlink(name, dir_fd=parent_fd)
                self.tar.addfile(info)
            elif stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind = {stat.S_IFIFO: tarfile.FIFOTYPE, stat.S_IFCHR: tarfile.CHRTYPE,
                        stat.S_IFBLK: tarfile.BLKTYPE}[stat.S_IFMT(st.st_mode)]
                info = self._info(st, arcname, kind)
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                self.tar.addfile(info)
            # sockets are not archived (tar has no type for them)
        except (FileNotFoundError, NotADirectoryError):
            pass  # gone (or replaced) while we walked: the container is alive
        except OSError as e:
            if e.errno != errno.ELOOP:  # swapped for a symlink under our feet: not followed
                raise

    def add_directory(self, fd, st, arcname):
        self.tar.addfile(self._info(st, arcname, tarfile.DIRTYPE))
        if self.device is not None and st.st_dev != self.device:
            return  # a mount point inside a running container: /proc, /sys, /dev
        self.add_children(fd, arcname)

    def add_children(self, fd, arcname):
        with os.scandir(fd) as entries:
            names = sorted(entry.name for entry in entries)
        prefix = "" if arcname in ("", "/") else arcname.rstrip("/") + "/"
        for name in names:
            self.add(fd, name, prefix + name)

    def _add_file(self, parent_fd, name, arcname):
        # O_PATH first: opening a fifo or a device swapped in for the file would block or act.
        path_fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            st = os.fstat(path_fd)
            if not stat.S_ISREG(st.st_mode):
                return
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                info = self._info(st, arcname, tarfile.LNKTYPE)
                info.linkname = self.links[key]
                self.tar.addfile(info)
                return
            if st.st_nlink > 1:
                self.links[key] = arcname
            fd = os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                info = self._info(st, arcname, tarfile.REGTYPE)
                info.size = st.st_size
                self.tar.addfile(info, ExactSize(f, st.st_size))
        finally:
            os.close(path_fd)

    @staticmethod
    def _info(st, arcname, kind):
        info = tarfile.TarInfo(arcname)
        info.type = kind
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = st.st_mtime
        return info


# ---- diff -----------------------------------------------------------------------------------

async def changes(service, ref):
    """GET /containers/{id}/changes: [{Path, Kind}] from the container's upper dir."""
    container = service.get(ref)
    image = await asyncio.to_thread(service.images.resolve, container.image_id)
    upper = os.path.join(service.data_dir, container.id, "diff")
    result = await asyncio.to_thread(_changes_of, upper, [str(d) for d in image.layer_dirs])
    return [{"Path": path, "Kind": kind} for path, kind in result]


def _changes_of(upper, layer_dirs):
    fds = []
    try:
        upper_fd = os.open(upper, _DIR)
        fds.append(upper_fd)
        lowers = []
        for layer in layer_dirs:
            lowers.append(os.open(layer, _DIR))
            fds.append(lowers[-1])
        out = []
        _Differ().walk(upper_fd, lowers, "", out)
        return out
    finally:
        for fd in fds:
            os.close(fd)


class _Differ:
    """Walks an overlay upper dir beside the lower dirs that the same path has in the image
    (top-most first, as overlayfs looks them up). Whiteouts and opaque directories may be in
    any of the forms the drivers write (overlay_upper.overlay_marker decides)."""

    def walk(self, upper_fd, lower_fds, prefix, out):
        """Appends (path, kind) below this directory; returns how many entries were left out
        as placeholders of the container's mount set-up."""
        skipped = 0
        contents, deleted = _upper_entries(upper_fd)
        for name in sorted(set(contents) | deleted):
            path = f"{prefix}/{name}"
            st = contents.get(name)
            if st is None:
                out.append((path, DELETED))
                continue
            found_in, child_lowers = lookup_lower(lower_fds, name)
            in_lower = found_in is not None
            if stat.S_ISDIR(st.st_mode):
                if not self._directory(upper_fd, name, path, st, in_lower, child_lowers, out):
                    skipped += 1
                continue
            _close_all(child_lowers)
            if path in _PLACEHOLDERS and not in_lower and st.st_size == 0:
                skipped += 1
            elif in_lower and same_as_lower(upper_fd, name, st, found_in):
                continue  # copied up unchanged (fuse-overlayfs: a hard link of a deleted file)
            else:
                out.append((path, MODIFIED if in_lower else ADDED))
        return skipped

    def _directory(self, upper_fd, name, path, st, in_lower, child_lowers, out):
        """Records a directory of the upper dir and what is below it; False when left out."""
        fd = os.open(name, _DIR, dir_fd=upper_fd)
        try:
            if is_opaque_dir(fd):
                _close_all(child_lowers)
                child_lowers = []
            below = os.fstat(child_lowers[0]) if child_lowers else None
            sub = []
            skipped = self.walk(fd, child_lowers, path, sub)
        finally:
            _close_all(child_lowers)
            os.close(fd)
        if sub:
            out.append((path, MODIFIED if in_lower else ADDED))
            out.extend(sub)
            return True
        if in_lower:
            # Copied up: report it when its own mode or owner changed, not for a child's sake.
            if below is None or (below.st_mode, below.st_uid, below.st_gid) == (st.st_mode, st.st_uid, st.st_gid):
                return False
            out.append((path, MODIFIED))
            return True
        if path in _PLACEHOLDERS or skipped:
            return False  # a mount point, or made only to hold one
        out.append((path, ADDED))
        return True


def _upper_entries(dir_fd):
    """A directory of the upper dir: {name: lstat} of its content, and the names its whiteouts
    delete (a name deleted and made again is content only)."""
    contents, deleted = {}, set()
    with os.scandir(dir_fd) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        marker = overlay_marker(dir_fd, name, st)
        if marker is None:
            contents[name] = st
        elif not marker.opaque:
            deleted.add(marker.hidden)
    return contents, deleted - set(contents)


def _close_all(fds):
    for fd in fds:
        os.close(fd)


# ---- top --------------------------------------------------------------------------------------

async def top(service, ref, ps_args="-ef"):
    """GET /containers/{id}/top: host `ps` output restricted to the processes of the container's
    PID namespace (which includes those of `exec`). {Titles, Processes}."""
    container = service.get(ref)
    if not container.state.alive:
        raise Conflict(f"Container {container.id} is not running")
    pids = await asyncio.to_thread(_pids_in_namespace_of, container.pid)
    if not pids:
        raise Conflict(f"Container {container.id} is not running")
    args = ps_args.split() if ps_args else ["-ef"]
    try:
        process = await asyncio.create_subprocess_exec("ps", *args, stdin=asyncio.subprocess.DEVNULL,
                                                       stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
    except OSError as e:
        raise MinictrError(f"Error running ps: {e.strerror}") from None
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        raise MinictrError(f"ps: {stderr.decode(errors='replace').strip() or 'exit status ' + str(process.returncode)}")
    return parse_ps(stdout.decode(errors="replace"), pids)


def parse_ps(output, pids):
    """Docker's parsePSOutput: the header's fields are the titles; the last one (the command)
    takes the rest of each line; rows are kept when their PID is one of `pids`."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        raise MinictrError("ps printed nothing")
    titles = lines[0].split()
    if "PID" not in titles:
        raise MinictrError("Couldn't find PID field in ps output")
    pid_index = titles.index("PID")
    processes = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= pid_index:
            continue
        try:
            pid = int(fields[pid_index])
        except ValueError:
            continue
        if pid in pids:
            head = fields[:len(titles) - 1]
            processes.append(head + [" ".join(fields[len(titles) - 1:])])
    return {"Titles": titles, "Processes": processes}


def _pids_in_namespace_of(pid):
    try:
        namespace = os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return set()
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/pid").st_ino == namespace:
                pids.add(int(entry))
        except OSError:
            continue
    return pids
