"""A container's namespace modes (HostConfig.PidMode, IpcMode, UTSMode, CgroupnsMode, UsernsMode), checked
at create in Docker's words and turned into the monitor's `pidns`, `ipcns`, `utsns`, `cgroupns` and
`userns` keys at start. The network's mode is the network service's (`netns`)."""

import os

from minictr.errors import Conflict, InvalidArgument

# HostConfig field -> (what Docker's errors call it, the modes it takes besides container:X).
MODES = {
    "PidMode": ("PID", ("", "host")),
    "IpcMode": ("IPC", ("", "private", "shareable", "host", "none")),
    "UTSMode": ("UTS", ("", "host")),
    "CgroupnsMode": ("cgroup namespace", ("", "private", "host")),
    "UsernsMode": ("USER", ("", "host")),
}
JOINABLE = ("PidMode", "IpcMode")  # container:X
SHAREABLE = ("shareable", "host")  # IPC modes whose /dev/shm another container may join, as in Docker
SHM_DIR = "shm"  # a shareable container's /dev/shm: this directory of its data dir, bound


def shm_entries(container, top, containers):
    """`bind` entries of /dev/shm for IPC modes that share it: a shareable container's own directory,
    or its donor's (container:X); `host` and `none` are the monitor's (`ipcns`)."""
    mode = container.host_config.get("IpcMode") or ""
    if mode == "shareable":
        return [("bind", _shm_dir(top), "/dev/shm", "rw")]
    if mode.startswith("container:"):
        donor = containers.get(mode.partition(":")[2])
        if donor.host_config.get("IpcMode") == "shareable":
            return [("bind", _shm_dir(containers.paths(donor)["top"]), "/dev/shm", "rw")]
    return []


def _shm_dir(top):
    path = os.path.join(top, SHM_DIR)
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o1777)
    return path


def check(body, host_config, containers):
    """Raise InvalidArgument (NotFound for a container:X that does not exist) for the modes Docker
    refuses, in its words."""
    for key, (kind, modes) in MODES.items():
        mode = host_config.get(key) or ""
        if key in JOINABLE and mode.startswith("container:"):
            other = containers.get(mode.partition(":")[2])  # NotFound: Docker's "No such container"
            if key == "IpcMode" and other.host_config.get("IpcMode") not in SHAREABLE:
                raise InvalidArgument("non-shareable IPC (hint: use IpcMode:shareable for the donor container)")
            continue
        if mode not in modes:
            raise InvalidArgument(f"invalid {kind} mode: {mode}")
    if host_config.get("UTSMode") == "host" and body.get("Hostname"):
        raise InvalidArgument("conflicting options: hostname and the UTS mode")


def monitor_entries(host_config, containers, pid_of, rootless=False):
    """The monitor's namespace keys for HOST_CONFIG; `pid_of(other)` is a running container's pid
    (0: not running: Docker's Conflict)."""
    entries = []
    pid_mode = host_config.get("PidMode") or ""
    if rootless and pid_mode.startswith("container:") and host_config.get("UsernsMode") != "host":
        # X's PID namespace belongs to X's user namespace: only from there may its /proc be mounted,
        # so the container shares X's user namespace too (the same maps as its own would have).
        other = containers.get(pid_mode.partition(":")[2])
        if pid_of(other):
            entries.append(("userns_join", f"/proc/{pid_of(other)}/ns/user"))
    for key, name, kind in (("PidMode", "pidns", "PID"), ("IpcMode", "ipcns", "IPC")):
        mode = host_config.get(key) or ""
        if mode.startswith("container:"):
            other = containers.get(mode.partition(":")[2])
            if other.host_config.get(key) == "host":  # the donor's is the host's: so is this one's
                entries.append((name, "host"))
                continue
            pid = pid_of(other)
            if not pid:
                raise Conflict(f"cannot join {kind} of a non running container: {other.name}")
            entries.append((name, f"/proc/{pid}/ns/{name[:-2]}"))
        elif mode in ("host", "none"):
            entries.append((name, mode))
    if host_config.get("UTSMode") == "host":
        entries.append(("utsns", "host"))
    if host_config.get("CgroupnsMode") == "host":
        entries.append(("cgroupns", "host"))
    return entries


def in_user_namespace(host_config, rootless):
    """Whether the container gets a user namespace of its own: rootless, unless `--userns host`
    (the daemon's own, as rootless Docker's is RootlessKit's) or `--pid container:X` (X's)."""
    return (rootless and host_config.get("UsernsMode") != "host"
            and not (host_config.get("PidMode") or "").startswith("container:"))
