"""A container's mounts on this host: the resolved mounts (spec/mounts.py parses and checks them)
made ready — bind sources checked or created, new volumes seeded with the image's files — and
shown as inspect's Mounts."""

import os

from minictr.errors import InvalidArgument
from minictr.spec.mounts import invalid_config


def check_bind_source(mount):
    """A bind source must exist (`--mount`) or is created (`-v`, as Docker does), and the daemon
    must be able to read it: rootless, a directory the user cannot read is refused here rather
    than failing at start."""
    source = mount["source"]
    if not os.path.lexists(source):
        if not mount.get("create_source"):
            raise invalid_config("bind", f"bind source path does not exist: {source}")
        return
    need = os.R_OK | (os.X_OK if os.path.isdir(source) else 0)
    if not os.access(source, need):
        raise InvalidArgument(f"error while creating mount source path '{source}': permission denied "
                              "(the daemon's user cannot read it)")


def create_bind_source(mount):
    if mount["type"] == "bind" and not os.path.lexists(mount["source"]):
        try:
            os.makedirs(mount["source"], 0o755, exist_ok=True)
        except OSError as e:
            raise InvalidArgument(f"error while creating mount source path '{mount['source']}': "
                                  f"mkdir {e.filename}: {e.strerror}") from None


def by_depth(mounts):
    """Parents before children (`/a` before `/a/b`), as Docker mounts them."""
    return sorted(mounts, key=lambda m: len([p for p in m["destination"].split("/") if p]))


def inspect_entry(mount, volume_mountpoint=""):
    """One item of inspect's Mounts array."""
    if mount["type"] == "volume":
        return {"Type": "volume", "Name": mount["name"], "Source": volume_mountpoint,
                "Destination": mount["destination"], "Driver": "local", "Mode": mount["mode"],
                "RW": mount["rw"], "Propagation": ""}
    if mount["type"] == "bind":
        return {"Type": "bind", "Source": mount["source"], "Destination": mount["destination"],
                "Mode": mount["mode"], "RW": mount["rw"], "Propagation": mount["propagation"]}
    return {"Type": "tmpfs", "Source": "", "Destination": mount["destination"], "Mode": mount["mode"],
            "RW": mount["rw"], "Propagation": ""}


# ---- seeding a new volume with the image's files -----------------------------------------

def seed_volume(root_fd, destination, mountpoint, open_in_root):
    """Copy what the container's root has at `destination` (resolved inside the root by
    `open_in_root`, nothing followed out of it) into the empty volume at `mountpoint`: owners,
    modes and times kept, symlinks copied as symlinks, special files skipped."""
    try:
        source = open_in_root(root_fd, destination, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # nothing there, or not a directory: nothing to copy
    target = os.open(mountpoint, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(source)
        _copy_tree(source, target)
        os.chown(target, st.st_uid, st.st_gid)
        os.chmod(target, st.st_mode & 0o7777)
    finally:
        os.close(source)
        os.close(target)


def _copy_tree(source_fd, target_fd):
    import stat as st_

    for name in os.listdir(source_fd):
        st = os.stat(name, dir_fd=source_fd, follow_symlinks=False)
        if st_.S_ISDIR(st.st_mode):
            os.mkdir(name, 0o700, dir_fd=target_fd)
            child_src = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source_fd)
            child_dst = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=target_fd)
            try:
                _copy_tree(child_src, child_dst)
            finally:
                os.close(child_src)
                os.close(child_dst)
        elif st_.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=source_fd), name, dir_fd=target_fd)
        elif st_.S_ISREG(st.st_mode):
            _copy_file(source_fd, target_fd, name)
        else:
            continue
        os.chown(name, st.st_uid, st.st_gid, dir_fd=target_fd, follow_symlinks=False)
        if not st_.S_ISLNK(st.st_mode):
            os.chmod(name, st.st_mode & 0o7777, dir_fd=target_fd)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=target_fd, follow_symlinks=False)


def _copy_file(source_fd, target_fd, name):
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source_fd)
    try:
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                      dir_fd=target_fd)
        try:
            while os.sendfile(dst, src, None, 1 << 20):
                pass
        finally:
            os.close(dst)
    finally:
        os.close(src)
