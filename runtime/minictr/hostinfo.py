"""What this host offers, read or tried: the probes `minictr doctor`, the daemon's preflight checks
and the storage driver's choice share. Only the standard library (ctypes in the overlay probe's
child); nothing here imports a service.
"""

import os
import pwd
import shutil
import tempfile
from dataclasses import dataclass

from minictr.errors import MinictrError

DOCTOR_HINT = "run `minictr doctor` to check this machine"


class CannotStart(MinictrError):
    """The daemon cannot run here; the message says what is missing and points to `minictr doctor`."""

    def __init__(self, message):
        super().__init__(f"{message}; {DOCTOR_HINT}")


def read_text(path):
    """The file's text, or None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def subordinate_ranges(path, name, uid):
    """The (start, count) ranges /etc/subuid or /etc/subgid (`path`) gives the user, by name or uid."""
    ranges = []
    for line in (read_text(path) or "").splitlines():
        fields = line.strip().split(":")
        if (len(fields) == 3 and fields[0] in (name, str(uid)) and fields[1].isdigit() and fields[2].isdigit()
                and int(fields[2]) > 0):
            ranges.append((int(fields[1]), int(fields[2])))
    return ranges


def existing_ancestor(path):
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def filesystem_type(path, mountinfo="/proc/self/mountinfo"):
    """The type of the filesystem mounted at the longest mount point above PATH."""
    best, fstype = "", None
    for line in (read_text(mountinfo) or "").splitlines():
        before, _, after = line.partition(" - ")
        fields = before.split()
        if len(fields) < 5 or not after:
            continue
        point = fields[4].encode().decode("unicode_escape")
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, fstype = point, after.split()[0]
    return fstype


@dataclass(frozen=True)
class CgroupMount:
    """A cgroup hierarchy as mounted here: `root` is the group shown at `point` (mountinfo's 4th field)."""

    point: str
    fstype: str  # cgroup (v1) or cgroup2
    options: tuple[str, ...]  # the super options: a v1 hierarchy's controllers are among them
    root: str


def cgroup_mounts(mountinfo="/proc/self/mountinfo"):
    """Every cgroup and cgroup2 mount this process sees: of two on one point, the later only (it
    hides the earlier, as a bind mount of a nested group over a hierarchy does)."""
    mounts = {}
    for line in (read_text(mountinfo) or "").splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) >= 5 and len(tail) >= 3:
            point = _unescape(fields[4])
            mounts.pop(point, None)  # whatever it was, it is hidden now
            if tail[0] in ("cgroup", "cgroup2"):
                mounts[point] = CgroupMount(point, tail[0], tuple(tail[2].split(",")), _unescape(fields[3]))
    return list(mounts.values())


def _unescape(field):
    return field.encode().decode("unicode_escape")


def cgroup_dir(group, controller=None, mounts=None):
    """The directory of the cgroup GROUP, as /proc/PID/cgroup names it, in the hierarchy of the v1
    CONTROLLER (None: the v2 hierarchy); None when no mount here shows it.

    A mount's root is not always `/`: inside a container without a cgroup namespace,
    /proc/self/cgroup says `/docker/ID` while /sys/fs/cgroup/memory *is* /docker/ID (root
    `/docker/ID` in mountinfo), so the group's directory is /sys/fs/cgroup/memory itself, not
    /sys/fs/cgroup/memory/docker/ID. With a cgroup namespace both say `/`."""
    best = None
    for mount in cgroup_mounts() if mounts is None else mounts:
        if (mount.fstype == "cgroup2") != (controller is None):
            continue
        if controller is not None and controller not in mount.options:
            continue
        below = _below(group, mount.root)
        # The deepest root wins; of equal ones the later mount, which hides the earlier.
        if below is not None and (best is None or len(mount.root) >= len(best[0])):
            best = (mount.root, os.path.join(mount.point, below) if below else mount.point)
    return best[1] if best else None


def _below(group, root):
    """GROUP's path relative to ROOT ("" for ROOT itself), or None if it is not under ROOT."""
    if root == "/":
        return group.lstrip("/")
    if group == root:
        return ""
    if group.startswith(root + "/"):
        return group[len(root) + 1:]
    return None


def cgroup_of(pid="self", controller=None):
    """The group of process PID (as /proc/PID/cgroup names it) for the v1 CONTROLLER (None: v2)."""
    for line in (read_text(f"/proc/{pid}/cgroup") or "").splitlines():
        _, names, group = line.split(":", 2)
        if (controller is None and names == "") or (controller is not None and controller in names.split(",")):
            return group
    return None


def fuse_overlayfs_path(search_path=None):
    """fuse-overlayfs, when it is installed and /dev/fuse can be opened (the storage driver's fallback)."""
    found = shutil.which("fuse-overlayfs", path=search_path)
    if found is None or not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return None
    return found


# Overlayfs, tried -------------------------------------------------------------------------------

OVERLAY_STEPS = ("unshare", "setgroups", "uid_map", "gid_map", "make / private", "mkdir", "mount overlay",
                 "write through the overlay", "delete a lower file (whiteout)", "umount")


@dataclass(frozen=True)
class OverlayTrial:
    """What an overlay mount tried under `where` did: `failure` is "" when it worked, else one line.
    `step` is the OVERLAY_STEPS index that failed, -1 before the probe ran (`errnum` set: its directory
    could not be made) or when it died without a word (`errnum` 0)."""

    where: str
    failure: str = ""
    step: int = -1
    errnum: int = 0


def try_overlay(root, data_root, uid=None, gid=None, userxattr=None):
    """Mount an overlay as the daemon does (rootless: in a user namespace of our own) on the data
    root's filesystem, in a forked child; the temporary directory is removed afterwards.
    `userxattr` (default: not root) as the monitor mounts it; the rootless daemon, root in its
    own user namespace, tries with root=True, userxattr=True."""
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    where = existing_ancestor(data_root)
    try:
        top = tempfile.mkdtemp(prefix=".minictr-doctor-", dir=where)
    except OSError as e:
        return OverlayTrial(where, f"cannot make a directory in {where} to try it: {e.strerror}", -1, e.errno)
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _probe_child(top, root, uid, gid, write_fd, userxattr)
        os.close(write_fd)
        report = os.read(read_fd, 64).decode()
        os.waitpid(pid, 0)
    finally:
        os.close(read_fd)
        _remove_tree(top)
    if report == "ok":
        return OverlayTrial(where)
    if not report:
        return OverlayTrial(where, "the probe died without a word")
    step, errnum = (int(n) for n in report.split())
    return OverlayTrial(where, f"{OVERLAY_STEPS[step]}: {os.strerror(errnum)} (on {where})", step, errnum)


def _probe_child(top, root, uid, gid, report_fd, userxattr=None):
    """In a forked child: unshare (user +) mount namespaces, map ourselves, mount an overlay under TOP,
    write and delete through it. Writes "STEP ERRNO" to REPORT_FD and exits."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    step = 0

    def call(ret):
        if ret < 0:
            raise OSError(ctypes.get_errno(), "")

    try:
        clone_newns, clone_newuser = 0x00020000, 0x10000000
        call(libc.unshare(clone_newns if root else clone_newns | clone_newuser))
        if not root:
            for step, (name, text) in enumerate(
                    (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")), start=1):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        step = 4
        ms_rec, ms_private = 0x4000, 1 << 18
        call(libc.mount(b"none", b"/", None, ms_rec | ms_private, None))
        step = 5
        dirs = {d: os.path.join(top, d) for d in ("lower", "upper", "work", "merged")}
        for d in dirs.values():
            os.mkdir(d)
        with open(os.path.join(dirs["lower"], "file"), "w") as f:
            f.write("lower\n")
        step = 6
        opts = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
        userxattr_ = (not root) if userxattr is None else userxattr
        opts += ",userxattr" if userxattr_ else ""  # as the rootless daemon mounts it (native/mounts.c)
        call(libc.mount(b"overlay", dirs["merged"].encode(), b"overlay", 0, opts.encode()))
        step = 7
        with open(os.path.join(dirs["merged"], "new"), "w") as f:
            f.write("upper\n")
        step = 8
        os.unlink(os.path.join(dirs["merged"], "file"))
        step = 9
        call(libc.umount2(dirs["merged"].encode(), 0))
        os.write(report_fd, b"ok")
    except OSError as e:
        os.write(report_fd, f"{step} {e.errno or 0}".encode())
    finally:
        os._exit(0)


def _remove_tree(top):
    # overlayfs leaves workdir/work mode 0 (and, rootless, owned by us): open it up to remove it.
    for dirpath, dirnames, _files in os.walk(top):
        for name in dirnames:
            try:
                os.chmod(os.path.join(dirpath, name), 0o700)
            except OSError:
                pass
    shutil.rmtree(top, ignore_errors=True)
