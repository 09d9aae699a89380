"""A container's masked and read-only paths and its privileged mode, as Docker sets them
(moby's oci/defaults.go), into monitor config entries (native/mounts.c applies them)."""

from minictr.errors import InvalidArgument

# Docker's defaults: these read empty in a container (a directory gets an empty read-only tmpfs,
# a file /dev/null) ...
MASKED = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
# ... and these refuse writes.
READONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def _paths(host_config, key, default):
    """HostConfig.MaskedPaths / ReadonlyPaths as moby reads them: absent (null) means Docker's default,
    a list (even empty) replaces it; --privileged has none."""
    paths = host_config.get(key)
    if host_config.get("Privileged"):
        return []
    if paths is None:
        return list(default)
    if not isinstance(paths, list) or not all(isinstance(p, str) and p.startswith("/") for p in paths):
        raise InvalidArgument(f"invalid {key}: expected a list of absolute paths")
    return paths


def check(host_config):
    _paths(host_config, "MaskedPaths", MASKED)
    _paths(host_config, "ReadonlyPaths", READONLY)


def monitor_entries(host_config):
    """`privileged`, `masked_path` and `readonly_path` entries for a container's init (an exec
    joins the filesystem the init made)."""
    entries = [("privileged", "1")] if host_config.get("Privileged") else []
    entries += [("readonly_path", p) for p in _paths(host_config, "ReadonlyPaths", READONLY)]
    entries += [("masked_path", p) for p in _paths(host_config, "MaskedPaths", MASKED)]
    return entries
