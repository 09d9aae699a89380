"""A container's capability set, as Docker computes it from HostConfig.CapAdd, CapDrop and Privileged."""

from minictr.errors import InvalidArgument

# Bit numbers from linux/capability.h; the kernel's last is CAP_CHECKPOINT_RESTORE (40).
CAPABILITIES = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
    "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
}

# Docker's default set (moby's oci/caps/defaults.go): 14 capabilities.
DEFAULT = frozenset({
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
})


def normalize(name):
    """`net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` name one capability, as in Docker; `ALL` stays."""
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in CAPABILITIES:
        raise InvalidArgument(f"unknown capability: \"{name}\"")
    return full


def container_caps(host_config):
    """The names of the capabilities a container's processes hold (bounding = permitted = effective)."""
    if host_config.get("Privileged"):
        return frozenset(CAPABILITIES)
    add = [normalize(c) for c in host_config.get("CapAdd") or []]
    drop = [normalize(c) for c in host_config.get("CapDrop") or []]
    # Docker: dropping ALL starts from nothing, then CapAdd applies; adding ALL gives every one, minus drops.
    caps = set() if "ALL" in drop else set(DEFAULT)
    if "ALL" in add:
        caps = set(CAPABILITIES)
    caps |= {c for c in add if c != "ALL"}
    if "ALL" not in drop:
        caps -= {c for c in drop if c not in add}
    return frozenset(caps)


def mask(caps):
    """The 64-bit mask of a set of names, for the monitor's `caps` key."""
    bits = 0
    for name in caps:
        bits |= 1 << CAPABILITIES[name]
    return bits


def monitor_entries(host_config, exec_privileged=False):
    """The `caps` entry for a container's process: its container's set, or every capability for
    `exec --privileged` (as Docker)."""
    caps = frozenset(CAPABILITIES) if exec_privileged else container_caps(host_config)
    return [("caps", format(mask(caps), "x"))]
