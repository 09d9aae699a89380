"""Which host devices a container may use, as Docker decides it: its default allow-list (moby's
oci/defaults.go, as runc completes it), the nodes of --device with their permissions, the rules of
--device-cgroup-rule, and everything for --privileged.

The rules go to the container's device controller (containers/cgroups.py: v1's devices.allow, or a
BPF program on v2); the nodes are made in the container's /dev by the monitor (`device` entries,
native/mounts.c). Without the controller's rules a root container could mknod any host device (a
loop device, a disk) and read or write it: the kernel checks nothing else."""

import os
import stat

from minictr.errors import InvalidArgument
from minictr.spec.devices import ANY, Rule, check as check_fields, parse_rule, permissions

# Docker's default: everything denied, then these allowed. mknod of any node (`c *:* m`, `b *:* m`:
# images unpack device files), and read/write of null, zero, full, random, urandom, tty, console,
# ptmx, the container's ptys (136:*) and tun.
DEFAULT_RULES = (
    Rule("c", ANY, ANY, "m"), Rule("b", ANY, ANY, "m"),
    Rule("c", 1, 3, "rwm"), Rule("c", 1, 5, "rwm"), Rule("c", 1, 7, "rwm"), Rule("c", 1, 8, "rwm"),
    Rule("c", 1, 9, "rwm"), Rule("c", 5, 0, "rwm"), Rule("c", 5, 1, "rwm"), Rule("c", 5, 2, "rwm"),
    Rule("c", 136, ANY, "rwm"), Rule("c", 10, 200, "rwm"),
)


def check(host_config, rootless):
    """HostConfig.Devices and DeviceCgroupRules of a create body: well formed, and each device a node
    (or a directory of nodes) of this host. Rootless has no device controller: a device without r or w
    could not be kept from reading or writing, so it is refused rather than ignored (without m it is
    kept: the kernel refuses mknod in a user namespace anyway)."""
    check_fields(host_config)
    for device in host_config.get("Devices") or []:
        host_nodes(device)
        if rootless and not set("rw") <= set(permissions(device)):
            raise InvalidArgument(f"cannot restrict device {device['PathOnHost']} to {permissions(device)!r}: "
                                  "rootless containers have no device cgroup; use rw or rwm")


def host_nodes(device):
    """[(host node, path in the container)] of a HostConfig.Devices entry: the node itself, or every
    node under a directory (Docker's --device /dev/snd). Symlinks on the host are followed."""
    source = device["PathOnHost"]
    target = device.get("PathInContainer") or source
    resolved = os.path.realpath(source)
    try:
        mode = os.stat(resolved).st_mode
    except OSError as e:
        raise InvalidArgument(f'error gathering device information while adding custom device "{source}": '
                              f"{(e.strerror or str(e)).lower()}") from None
    if _is_device(mode):
        return [(resolved, target)]
    if not stat.S_ISDIR(mode):
        raise InvalidArgument(f'error gathering device information while adding custom device "{source}": '
                              "not a device node")
    nodes = []
    for top, _dirs, files in os.walk(resolved):
        for name in sorted(files):
            path = os.path.join(top, name)
            if _is_device(os.lstat(path).st_mode):
                nodes.append((path, os.path.join(target, os.path.relpath(path, resolved))))
    return nodes


def _is_device(mode):
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def cgroup_rules(host_config):
    """The container's device allow rules (all else denied), or None for --privileged: every device."""
    if host_config.get("Privileged"):
        return None
    rules = list(DEFAULT_RULES)
    for device in host_config.get("Devices") or []:
        for node, _target in host_nodes(device):
            st = os.stat(node)
            kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
            rules.append(Rule(kind, os.major(st.st_rdev), os.minor(st.st_rdev), permissions(device)))
    rules += [parse_rule(text) for text in host_config.get("DeviceCgroupRules") or []]
    return rules


def monitor_entries(host_config):
    """`device` entries: the nodes of --device, made in the container (native/mounts.c)."""
    return [("device", node, target) for device in host_config.get("Devices") or []
            for node, target in host_nodes(device)]
