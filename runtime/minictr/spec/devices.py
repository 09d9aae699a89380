"""Host devices in Docker's words: `--device HOST[:CONTAINER][:PERMISSIONS]` and
`--device-cgroup-rule 'TYPE MAJOR:MINOR ACCESS'` as users type them, HostConfig.Devices and
HostConfig.DeviceCgroupRules as the daemon checks them, and the rules' one parsed form."""

from minictr.errors import InvalidArgument

# Docker's own pattern for a device cgroup rule (the devices controller's syntax, v1's devices.allow).
_RULE = r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$"
ANY = -1  # a major or minor of `*`


class Rule(tuple):
    """One allow rule of the device controller: (type `a`, `b` or `c`; major and minor, a number or
    ANY; access, some of `rwm`). str() is the controller's syntax (`c 1:3 rwm`). A plain tuple, not a
    NamedTuple: the CLI imports this module on every `run`, and typing costs it milliseconds."""

    def __new__(cls, kind, major, minor, access):
        return super().__new__(cls, (kind, major, minor, access))

    def __str__(self):
        kind, major, minor, access = self
        number = lambda n: "*" if n == ANY else str(n)  # noqa: E731
        return f"{kind} {number(major)}:{number(minor)} {access}"


def _valid_mode(mode):
    return bool(mode) and len(mode) <= 3 and set(mode) <= set("rwm") and len(set(mode)) == len(mode)


def parse_device(text):
    """Docker's --device: HOST[:CONTAINER][:PERMISSIONS] -> a HostConfig.Devices entry (the container
    path defaults to the host's, the permissions to rwm)."""
    parts = text.split(":")
    if len(parts) > 3 or not parts[0]:
        raise InvalidArgument(f"invalid device specification: {text}")
    host, container, permissions = parts[0], "", "rwm"
    if len(parts) == 3:
        container, permissions = parts[1], parts[2]
    elif len(parts) == 2 and _valid_mode(parts[1]):
        permissions = parts[1]
    elif len(parts) == 2:
        container = parts[1]
    device = {"PathOnHost": host, "PathInContainer": container or host, "CgroupPermissions": permissions}
    check_device(device)
    return device


def parse_rule(text):
    """A --device-cgroup-rule (`c 1:3 rwm`, `b *:* m`, `a *:* rwm`) as a Rule."""
    import re  # here, not above: the CLI imports this module on every `run`

    match = re.match(_RULE, text) if isinstance(text, str) else None
    if not match:
        raise InvalidArgument(f"invalid device cgroup format '{text}'")
    kind, major, minor, access = match.groups()
    return Rule(kind, ANY if major == "*" else int(major), ANY if minor == "*" else int(minor), access)


def check_device(device):
    """One HostConfig.Devices entry as the daemon gets it: {PathOnHost, PathInContainer, CgroupPermissions}."""
    if not isinstance(device, dict):
        raise InvalidArgument(f"invalid HostConfig.Devices entry: {device!r}: expected an object")
    for key in ("PathOnHost", "PathInContainer", "CgroupPermissions"):
        if not isinstance(device.get(key, ""), str):
            raise InvalidArgument(f"invalid HostConfig.Devices entry: {key} must be a string")
    host, container = device.get("PathOnHost") or "", device.get("PathInContainer") or ""
    for path in (host, container or host):
        if not path.startswith("/"):
            raise InvalidArgument(f"invalid device path {path!r}: it must be an absolute path")
        if "\0" in path:
            raise InvalidArgument(f"invalid device path {path!r}")
    mode = device.get("CgroupPermissions") or "rwm"
    if not _valid_mode(mode):
        raise InvalidArgument(f"invalid device mode: {mode}")


def check(host_config):
    """HostConfig.Devices and HostConfig.DeviceCgroupRules of a create body."""
    devices, rules = host_config.get("Devices") or [], host_config.get("DeviceCgroupRules") or []
    if not isinstance(devices, list):
        raise InvalidArgument("invalid HostConfig.Devices: expected a list")
    if not isinstance(rules, list):
        raise InvalidArgument("invalid HostConfig.DeviceCgroupRules: expected a list")
    for device in devices:
        check_device(device)
    for rule in rules:
        parse_rule(rule)


def permissions(device):
    """A checked HostConfig.Devices entry's permissions (Docker's default rwm when empty)."""
    return device.get("CgroupPermissions") or "rwm"
