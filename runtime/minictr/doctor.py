"""`minictr doctor`: can this machine run minictr for this user? One result per check, with the fix.

Each check takes the paths and values it reads as parameters (tests point them at a temporary
tree) and returns a Result. "fail" means minictr cannot work (or not as documented) until fixed;
"warn" means it works with less: no resource limits rootless on cgroup v1 or without delegation
(a run that asks for a limit then fails and says so), or no XDG_RUNTIME_DIR (a private directory
in /tmp is used). The host probes it shares with the daemon are in hostinfo.py.
"""

import os
import shutil
import stat
import struct
import sys
from dataclasses import asdict, dataclass

from minictr.hostinfo import (OVERLAY_STEPS, CgroupMount, cgroup_dir, cgroup_mounts, existing_ancestor, filesystem_type,
                              fuse_overlayfs_path, read_text, subordinate_ranges, try_overlay, user_name)

OK, WARN, FAIL = "ok", "warn", "FAIL"
MIN_FREE = 1 << 30  # a busybox is small, but a pull of a real image is hundreds of MiB
SUBID_RANGE = "100000-165535"
APPARMOR_PATH = "/etc/apparmor.d/minictr"
CAP_SETGID, CAP_SETUID = 6, 7
VFS_CAP_FLAGS_EFFECTIVE = 0x1


@dataclass
class Result:
    check: str
    status: str
    message: str
    fix: str = ""

    def line(self):
        fix = f" — fix: {self.fix}" if self.fix else ""
        return f"{self.status:<5} {self.check}: {self.message}{fix}"

    def as_dict(self):
        return asdict(self)


def _read(path):
    text = read_text(path)
    return None if text is None else text.strip()


# User namespaces -------------------------------------------------------------------------------

def user_namespaces(root, proc="/proc", probe=None):
    """The sysctls that forbid unprivileged user namespaces. PROBE is the overlay probe's Result: with
    Ubuntu's AppArmor restriction on, a working probe means our profile is loaded and lifts it."""
    name = "user namespaces"
    if root:
        return Result(name, OK, "not needed (root)")
    max_ns = _read(f"{proc}/sys/user/max_user_namespaces")
    if max_ns is not None and int(max_ns) == 0:
        return Result(name, FAIL, "disabled (user.max_user_namespaces = 0)",
                      "sudo sysctl -w user.max_user_namespaces=28633 (and set it in /etc/sysctl.d/)")
    clone = _read(f"{proc}/sys/kernel/unprivileged_userns_clone")
    if clone is not None and int(clone) == 0:
        return Result(name, FAIL, "unprivileged ones are disabled (kernel.unprivileged_userns_clone = 0)",
                      "sudo sysctl -w kernel.unprivileged_userns_clone=1 (and set it in /etc/sysctl.d/)")
    restrict = _read(f"{proc}/sys/kernel/apparmor_restrict_unprivileged_userns")
    if restrict is not None and int(restrict) == 1:
        if probe is not None and probe.status == OK:
            return Result(name, OK, "allowed for minictr by its AppArmor profile "
                                    "(kernel.apparmor_restrict_unprivileged_userns = 1)")
        return Result(name, FAIL, "AppArmor restricts unprivileged ones "
                                  "(kernel.apparmor_restrict_unprivileged_userns = 1)",
                      f"minictr doctor --apparmor-profile | sudo tee {APPARMOR_PATH} && "
                      f"sudo apparmor_parser -r {APPARMOR_PATH}")
    return Result(name, OK, "allowed")


APPARMOR_PROFILE = """\
# /etc/apparmor.d/minictr: lets minictr create user namespaces where Ubuntu restricts them
# (kernel.apparmor_restrict_unprivileged_userns = 1). Printed by `minictr doctor --apparmor-profile`
# for the paths minictr is installed at; load it with `sudo apparmor_parser -r /etc/apparmor.d/minictr`.
# The daemon's python makes the rootless daemon's namespaces and the monitor those of containers.
# AppArmor attaches a profile to the executable's real path: a virtualenv's python is a symlink, so
# the profile names the interpreter it points to, and lifts the restriction for every script it runs.
abi <abi/4.0>,
include <tunables/global>

profile minictr-python {python} flags=(unconfined) {{
  userns,
  include if exists <local/minictr-python>
}}

profile minictr-monitor {monitor} flags=(unconfined) {{
  userns,
  include if exists <local/minictr-monitor>
}}
"""


def apparmor_profile(python=None, monitor=None):
    """The AppArmor profile for the paths minictr is installed at (or those given)."""
    python = python or os.path.realpath(sys.executable)
    monitor = monitor or os.path.join(os.path.dirname(os.path.realpath(__file__)), "minictr-monitor")
    return APPARMOR_PROFILE.format(python=python, monitor=monitor)


# Subordinate ids and the helpers that map them ------------------------------------------------

def _subordinate_count(path, name, uid):
    return sum(count for _start, count in subordinate_ranges(path, name, uid))


def subordinate_ids(root, uid, name=None, subuid="/etc/subuid", subgid="/etc/subgid"):
    check = "subordinate ids"
    if root:
        return Result(check, OK, "not needed (root)")
    name = name or user_name(uid)
    uids, gids = _subordinate_count(subuid, name, uid), _subordinate_count(subgid, name, uid)
    fix = f"sudo usermod --add-subuids {SUBID_RANGE} --add-subgids {SUBID_RANGE} {name}"
    missing = [path for path, count in ((subuid, uids), (subgid, gids)) if count == 0]
    if missing:
        return Result(check, FAIL, f"none for {name} in {' and '.join(missing)} "
                                   "(containers would have only uid 0)", fix)
    if min(uids, gids) < 65536:
        return Result(check, WARN, f"{name} has {uids} uids and {gids} gids: images with ids "
                                   "above that cannot be used", fix)
    return Result(check, OK, f"{uids} uids and {gids} gids for {name}")


def file_capabilities(path):
    """The permitted set of PATH's file capabilities (security.capability), as a bit mask; 0 if none."""
    try:
        raw = os.getxattr(path, "security.capability")
    except OSError:
        return 0
    if len(raw) < 12:
        return 0
    _magic, low = struct.unpack_from("<II", raw)
    high = struct.unpack_from("<I", raw, 12)[0] if len(raw) >= 20 else 0
    return low | (high << 32)


def id_map_helper(root, tool, search_path=None):
    """newuidmap or newgidmap: installed, and setuid root or with cap_setuid / cap_setgid."""
    check = tool
    if root:
        return Result(check, OK, "not needed (root)")
    path = shutil.which(tool, path=search_path)
    if path is None:
        return Result(check, FAIL, "not installed (containers would have only uid 0)",
                      "sudo apt-get install uidmap (Fedora: shadow-utils)")
    cap, cap_name = (CAP_SETUID, "cap_setuid") if tool == "newuidmap" else (CAP_SETGID, "cap_setgid")
    st = os.stat(path)
    if st.st_uid == 0 and st.st_mode & stat.S_ISUID:
        return Result(check, OK, f"{path} (setuid root)")
    if file_capabilities(path) & (1 << cap):
        return Result(check, OK, f"{path} ({cap_name})")
    return Result(check, FAIL, f"{path} is neither setuid root nor has {cap_name}",
                  f"sudo setcap {cap_name}+ep {path} (or sudo chmod u+s {path})")


# Overlayfs in a user namespace, tried -----------------------------------------------------------

def overlay_probe(root, data_root, uid=None, gid=None, userxattr=None):
    """Mount an overlay as the daemon does (hostinfo.try_overlay) on the data root's filesystem."""
    trial = try_overlay(root, data_root, uid, gid, userxattr)
    return overlay_result(root, trial, filesystem_type(trial.where))


def overlay_result(root, trial, fstype, search_path=None):
    """The overlayfs line for an OverlayTrial on a filesystem of type FSTYPE (the data root's)."""
    check = "overlayfs" if root else "overlayfs in a user namespace"
    if not trial.failure:
        return Result(check, OK, f"works on {trial.where}")
    if trial.step < 0:
        return Result(check, FAIL, trial.failure, "choose a writable --data-root" if trial.errnum else "")
    if fstype == "overlay" and OVERLAY_STEPS[trial.step] in _FALLBACK_STEPS:
        # As in a CI job inside a container: not the kernel's fault, and not fixed by a newer one.
        fallback = "fuse-overlayfs" if fuse_overlayfs_path(search_path) else "vfs (full copies)"
        return Result(check, FAIL, f"{trial.failure}: the data root is on overlayfs, which the kernel does not "
                      "take as an overlay's upper dir",
                      f"{fallback} is used instead; for overlay2 put the data root on another filesystem: "
                      "--data-root on a volume or a tmpfs (in a container: a volume mounted there)")
    return Result(check, FAIL, trial.failure, _overlay_fix(trial.step, trial.errnum, root))


def _overlay_fix(step, errnum, root):
    import errno

    if OVERLAY_STEPS[step] == "mount overlay" and errnum == errno.ENODEV:
        return "sudo modprobe overlay"
    if step < 4 and not root:
        return "allow user namespaces (see the user namespaces line)"
    if OVERLAY_STEPS[step] == "mount overlay" and not root:
        return "a kernel >= 5.11 mounts overlayfs in a user namespace; or use --data-root on ext4 or xfs"
    return "use a --data-root on ext4 or xfs"


# Cgroups ----------------------------------------------------------------------------------------

_WANTED = ("cpu", "memory", "pids")
DELEGATE_FIX = ("sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io "
                "memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && "
                "sudo systemctl daemon-reload, then log in again; a login shell's own cgroup is never delegated, so "
                "start the daemon in a delegated scope: systemd-run --user --scope -p Delegate=yes minictrd")


def _cgroup_mounts(mountinfo):
    for line in (_read(mountinfo) or "").splitlines():
        before, _, after = line.partition(" - ")
        fields = after.split()
        if len(fields) >= 3 and fields[0] in ("cgroup", "cgroup2"):
            yield before.split()[4], fields[0], fields[2].split(",")


def cgroups(root, mountinfo="/proc/self/mountinfo", cgroup_root="/sys/fs/cgroup", self_cgroup="/proc/self/cgroup"):
    check = "cgroups"
    mounts = list(_cgroup_mounts(mountinfo))
    unified = os.path.exists(os.path.join(cgroup_root, "cgroup.controllers"))
    if unified:
        return _cgroups_v2(root, cgroup_root, self_cgroup, mountinfo)
    v1 = sorted({o for _p, fstype, opts in mounts if fstype == "cgroup" for o in opts if o in _V1_CONTROLLERS})
    if not v1:
        return Result(check, WARN, "none mounted: containers run without limits",
                      "mount cgroup v2 on /sys/fs/cgroup (boot with systemd.unified_cgroup_hierarchy=1)")
    version = "v1 (hybrid)" if any(fstype == "cgroup2" for _p, fstype, _o in mounts) else "v1"
    if root:
        return Result(check, OK, f"{version}: {', '.join(v1)}")
    return Result(check, WARN, f"{version} is never delegated to an unprivileged user: rootless containers "
                               "cannot have limits (--memory, --cpus, --pids-limit)",
                  "boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1), or run minictr as root")


_V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")


def _cgroups_v2(root, cgroup_root, self_cgroup, mountinfo):
    check = "cgroups"
    if root:
        controllers = (_read(os.path.join(cgroup_root, "cgroup.controllers")) or "").split()
        missing = [c for c in _WANTED if c not in controllers]
        if missing:
            return Result(check, WARN, f"v2 without {', '.join(missing)}: those limits are unavailable")
        return Result(check, OK, f"v2: {', '.join(controllers)}")
    own = next((line[3:] for line in (_read(self_cgroup) or "").splitlines() if line.startswith("0::")), None)
    # Through the root of the mount on cgroup_root, as the daemon finds it: inside a container it
    # need not be `/`.
    mounts = [m for m in cgroup_mounts(mountinfo) if m.point == cgroup_root and m.fstype == "cgroup2"]
    group = cgroup_dir(own, mounts=mounts or [CgroupMount(cgroup_root, "cgroup2", (), "/")]) if own else None
    if not group or not os.access(group, os.W_OK):
        return Result(check, WARN, f"v2, but {own or 'our cgroup'} is not delegated to this user: rootless "
                                   "containers cannot have limits", DELEGATE_FIX)
    controllers = (_read(os.path.join(group, "cgroup.controllers")) or "").split()
    missing = [c for c in _WANTED if c not in controllers]
    if missing:
        return Result(check, WARN, f"v2, delegated without {', '.join(missing)}: those limits are unavailable",
                      DELEGATE_FIX)
    return Result(check, OK, f"v2, delegated: {', '.join(controllers)}")


# Networking -------------------------------------------------------------------------------------

def tun(path="/dev/net/tun"):
    check = "tun device"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return Result(check, FAIL, f"{path} does not exist", "sudo modprobe tun")
    except OSError as e:
        return Result(check, FAIL, f"cannot open {path}: {e.strerror}", f"sudo chmod 0666 {path}")
    os.close(fd)
    return Result(check, OK, f"{path} opens read-write")


def user_mode_network(root, search_path=None):
    check = "user-mode networking"
    if root:
        return Result(check, OK, "not needed (root)")
    found = [tool for tool in ("slirp4netns", "pasta") if shutil.which(tool, path=search_path)]
    if not found:
        return Result(check, FAIL, "neither slirp4netns nor pasta is installed",
                      "sudo apt-get install slirp4netns (or passt for pasta)")
    return Result(check, OK, " and ".join(found))


def nftables(root, search_path=None):
    check = "nftables"
    if not root:
        return Result(check, OK, "not needed (rootless: outbound through slirp4netns)")
    nft = shutil.which("nft", path=search_path)
    if nft is None:
        return Result(check, FAIL, "nft is not installed: containers on bridge networks cannot reach outside "
                      "(minictr masquerades in its own table inet minictr)", "sudo apt-get install nftables")
    return Result(check, OK, nft)


def ip_forwarding(root, proc="/proc"):
    check = "ip forwarding"
    if not root:
        return Result(check, OK, "not needed (rootless)")
    value = _read(os.path.join(proc, "sys/net/ipv4/ip_forward"))
    if value == "1":
        return Result(check, OK, "net.ipv4.ip_forward=1")
    if value == "0":
        return Result(check, WARN, "net.ipv4.ip_forward=0: the daemon turns it on (for the whole host) when a "
                      "bridge network is used", "sudo sysctl -w net.ipv4.ip_forward=1 (to choose it yourself)")
    return Result(check, WARN, "cannot read net.ipv4.ip_forward")


FORWARD_FIX = ("accept minictr's bridges in that chain (iifname minictr0 accept; oifname minictr0 ct state "
               "established,related accept; the same for user networks' mcbr-* bridges)")
# iptables' own FORWARD chains (Docker's): the daemon adds a jump to a chain of its own there.
IPTABLES_FORWARD = ("ip filter FORWARD", "ip6 filter FORWARD")


def forward_policy(root, proc="/proc", search_path=None):
    """As root: a forward chain with policy drop that is not minictr's drops what containers send
    outside, and with br_netfilter (bridge-nf-call-iptables=1) what they send each other on one bridge
    too. iptables' filter FORWARD (Docker's) is no problem: the daemon jumps from it to its own chain."""
    check = "forward policy"
    if not root:
        return Result(check, OK, "not needed (rootless: the daemon's own network namespace)")
    nft = shutil.which("nft", path=search_path)
    from minictr.networks.filter_forward import CHAIN
    from minictr.networks.outbound import FAMILY, TABLE, forward_drop_chains

    # Every daemon's table is minictr's own here (inet minictr, inet minictr-<bridge>).
    chains = forward_drop_chains(nft, lambda family, name: family == FAMILY and name.startswith(TABLE)) \
        if nft else None
    if chains is None:
        return Result(check, WARN, "cannot list the nftables chains (nft missing or failing)")
    opened = [chain for chain in chains if chain in IPTABLES_FORWARD]
    others = [chain for chain in chains if chain not in IPTABLES_FORWARD]
    if not others:
        if opened:
            return Result(check, OK, f"{_have(opened)} policy drop (Docker's): the daemon lets its bridges "
                                     f"through with a jump to its own chain ({CHAIN})")
        return Result(check, OK, "no forward chain drops by default")
    bridged = _read(os.path.join(proc, "sys/net/bridge/bridge-nf-call-iptables")) == "1"
    dropped = ("traffic between containers on one of minictr's bridges (br_netfilter: bridge-nf-call-iptables=1) "
               "and outbound traffic" if bridged else "outbound traffic of containers")
    return Result(check, WARN, f"{_have(others)} policy drop: {dropped} is dropped there", FORWARD_FIX)


def _have(chains):
    return f"{', '.join(chains)} {'has' if len(chains) == 1 else 'have'}"


# Directories ------------------------------------------------------------------------------------

def runtime_dir(root, uid, value):
    """XDG_RUNTIME_DIR (its value given, None when unset)."""
    check = "XDG_RUNTIME_DIR"
    if root:
        return Result(check, OK, "not needed (root: /run/minictr)")
    if not value:
        return Result(check, WARN, f"not set: minictr uses /tmp/minictr-{uid} instead",
                      f"log in with a session (pam_systemd), or export XDG_RUNTIME_DIR=/run/user/{uid}")
    try:
        st = os.stat(value)
    except OSError as e:
        return Result(check, FAIL, f"{value}: {e.strerror}",
                      f"sudo install -d -m 0700 -o {user_name(uid)} {value}")
    if not stat.S_ISDIR(st.st_mode):
        return Result(check, FAIL, f"{value} is not a directory", f"export XDG_RUNTIME_DIR=/run/user/{uid}")
    if st.st_uid != uid:
        return Result(check, FAIL, f"{value} is owned by {user_name(st.st_uid)}, not {user_name(uid)}",
                      f"sudo chown {user_name(uid)} {value}")
    if stat.S_IMODE(st.st_mode) != 0o700:
        return Result(check, FAIL, f"{value} has mode {stat.S_IMODE(st.st_mode):04o}, not 0700",
                      f"chmod 0700 {value}")
    return Result(check, OK, value)


def data_root(path, mountinfo="/proc/self/mountinfo", min_free=MIN_FREE):
    """The data root (or the directory it will be made in): writable, not on overlayfs, with room."""
    check = "data root"
    where = existing_ancestor(os.path.realpath(path))
    elsewhere = "--data-root DIR (or MINICTR_DATA_ROOT) on another filesystem"
    if not os.path.isdir(where):
        return Result(check, FAIL, f"{where} is not a directory", f"choose a {elsewhere}")
    if not os.access(where, os.W_OK | os.X_OK):
        return Result(check, FAIL, f"{where} is not writable", f"choose a writable {elsewhere}")
    fstype = filesystem_type(where, mountinfo)
    if fstype == "overlay":
        return Result(check, WARN, f"{path} is on overlayfs, which cannot hold overlay upper dirs "
                      "(see the storage driver line)", f"use a {elsewhere} (a volume or tmpfs in a container)")
    vfs = os.statvfs(where)
    free = vfs.f_bavail * vfs.f_frsize
    if free < min_free:
        return Result(check, FAIL, f"{path}: {_gib(free)} free, less than {_gib(min_free)}",
                      f"free some space or use a {elsewhere}")
    return Result(check, OK, f"{path} ({fstype or 'unknown'}, {_gib(free)} free)")


def _gib(n):
    return f"{n / (1 << 30):.1f} GiB"


_FALLBACK_STEPS = ("mount overlay", "write through the overlay", "delete a lower file (whiteout)")


def storage_driver(probe, search_path=None):
    """Which driver the daemon will use (minictr.images.driver.choose decides the same way)."""
    check = "storage driver"
    if probe.status == OK:
        return Result(check, OK, "overlay2")
    if fuse_overlayfs_path(search_path) is not None:
        return Result(check, WARN, "fuse-overlayfs: overlayfs does not work on the data root (slower than overlay2)",
                      "use a --data-root where the overlayfs line is ok")
    return Result(check, WARN, "vfs: overlayfs does not work on the data root and fuse-overlayfs is not "
                  "installed: every container gets a full copy of its image",
                  "sudo apt-get install fuse-overlayfs fuse3, or a --data-root where the overlayfs line is ok")


# All of them ------------------------------------------------------------------------------------

def run_checks(data_root_path, environ, root=None, uid=None):
    """Every check, in the order printed, for the invoking user (ENVIRON: theirs)."""
    root = os.geteuid() == 0 if root is None else root
    uid = os.getuid() if uid is None else uid
    probe = overlay_probe(root, data_root_path)
    driver = storage_driver(probe)
    overlay = probe
    if probe.status == FAIL and probe.message.startswith(tuple(step + ":" for step in _FALLBACK_STEPS)):
        # The kernel's overlayfs fails on this data root, but a fallback driver works.
        overlay = Result(probe.check, WARN, probe.message, probe.fix)
    return [
        user_namespaces(root, probe=probe),
        subordinate_ids(root, uid),
        id_map_helper(root, "newuidmap"),
        id_map_helper(root, "newgidmap"),
        overlay,
        cgroups(root),
        tun(),
        user_mode_network(root),
        nftables(root),
        ip_forwarding(root),
        forward_policy(root),
        runtime_dir(root, uid, environ.get("XDG_RUNTIME_DIR")),
        data_root(data_root_path),
        driver,
    ]
