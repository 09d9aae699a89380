"""The Engine API's request bodies as Docker's daemon decodes them: the types of ContainerConfig,
HostConfig, NetworkingConfig, the update body, network create/connect and volume create, and
`decode`, which checks a parsed JSON body against them the way Go's encoding/json does.

The types are the Engine API reference's (moby api/docs/v1.43.yaml, the API version minictr
speaks), with the Go types the reference leaves vague applied: `Cmd`/`Entrypoint`/`Shell` are a
strslice (a string or an array of strings), `BlkioWeight` is a uint16, a rate a uint64, and so
on. A body is refused when a known field has the wrong JSON kind or an integer outside its Go
type — with Go's words, `json: cannot unmarshal number into Go struct field ContainerConfig.Cmd
of type string` — and accepted otherwise: null for any field, and fields it does not know
(ignored, as Docker does), so every real client's body still passes.

Pure data and stdlib: the daemon's API handlers use it; the CLI never imports it.
"""

from minictr.errors import InvalidArgument

# A type is a primitive name (lower case), a struct name (a key of STRUCTS), or
# ("array", T) / ("map", T): a JSON array of T / an object whose values are T.
STRING, BOOL = "string", "bool"
INT, INT64, UINT16, UINT32, UINT64 = "int", "int64", "uint16", "uint32", "uint64"
STRSLICE = "strslice"  # Go's strslice.StrSlice: "a" or ["a", "b"]
OBJECT = "object"      # struct{} or map[string]interface{}: any JSON object


def _array(item):
    return ("array", item)


def _map(value):
    return ("map", value)


STRINGS = _array(STRING)
STRING_MAP = _map(STRING)

_INT_RANGES = {
    INT: (-2 ** 63, 2 ** 63 - 1), INT64: (-2 ** 63, 2 ** 63 - 1),
    UINT16: (0, 2 ** 16 - 1), UINT32: (0, 2 ** 32 - 1), UINT64: (0, 2 ** 64 - 1),
}

RESOURCES = {
    "CpuShares": INT64, "Memory": INT64, "CgroupParent": STRING, "BlkioWeight": UINT16,
    "BlkioWeightDevice": _array("WeightDevice"),
    "BlkioDeviceReadBps": _array("ThrottleDevice"), "BlkioDeviceWriteBps": _array("ThrottleDevice"),
    "BlkioDeviceReadIOps": _array("ThrottleDevice"), "BlkioDeviceWriteIOps": _array("ThrottleDevice"),
    "CpuPeriod": INT64, "CpuQuota": INT64, "CpuRealtimePeriod": INT64, "CpuRealtimeRuntime": INT64,
    "CpusetCpus": STRING, "CpusetMems": STRING,
    "Devices": _array("DeviceMapping"), "DeviceCgroupRules": STRINGS, "DeviceRequests": _array("DeviceRequest"),
    "KernelMemory": INT64, "KernelMemoryTCP": INT64, "MemoryReservation": INT64, "MemorySwap": INT64,
    "MemorySwappiness": INT64, "NanoCpus": INT64, "OomKillDisable": BOOL, "Init": BOOL, "PidsLimit": INT64,
    "Ulimits": _array("Ulimit"), "CpuCount": INT64, "CpuPercent": INT64,
    "IOMaximumIOps": UINT64, "IOMaximumBandwidth": UINT64,
}

CONTAINER_CONFIG = {
    "Hostname": STRING, "Domainname": STRING, "User": STRING,
    "AttachStdin": BOOL, "AttachStdout": BOOL, "AttachStderr": BOOL,
    "ExposedPorts": _map(OBJECT), "Tty": BOOL, "OpenStdin": BOOL, "StdinOnce": BOOL,
    "Env": STRINGS, "Cmd": STRSLICE, "Healthcheck": "HealthConfig", "ArgsEscaped": BOOL, "Image": STRING,
    "Volumes": _map(OBJECT), "WorkingDir": STRING, "Entrypoint": STRSLICE, "NetworkDisabled": BOOL,
    "MacAddress": STRING, "OnBuild": STRINGS, "Labels": STRING_MAP, "StopSignal": STRING,
    "StopTimeout": INT, "Shell": STRSLICE,
}

HOST_CONFIG = {
    **RESOURCES,
    "Binds": STRINGS, "ContainerIDFile": STRING, "LogConfig": "LogConfig", "NetworkMode": STRING,
    "PortBindings": _map(_array("PortBinding")), "RestartPolicy": "RestartPolicy", "AutoRemove": BOOL,
    "VolumeDriver": STRING, "VolumesFrom": STRINGS, "Mounts": _array("Mount"), "ConsoleSize": _array(UINT64),
    "Annotations": STRING_MAP, "CapAdd": STRSLICE, "CapDrop": STRSLICE, "CgroupnsMode": STRING,
    "Dns": STRINGS, "DnsOptions": STRINGS, "DnsSearch": STRINGS, "ExtraHosts": STRINGS, "GroupAdd": STRINGS,
    "IpcMode": STRING, "Cgroup": STRING, "Links": STRINGS, "OomScoreAdj": INT, "PidMode": STRING,
    "Privileged": BOOL, "PublishAllPorts": BOOL, "ReadonlyRootfs": BOOL, "SecurityOpt": STRINGS,
    "StorageOpt": STRING_MAP, "Tmpfs": STRING_MAP, "UTSMode": STRING, "UsernsMode": STRING, "ShmSize": INT64,
    "Sysctls": STRING_MAP, "Runtime": STRING, "Isolation": STRING, "MaskedPaths": STRINGS,
    "ReadonlyPaths": STRINGS,
}

ENDPOINT_SETTINGS = {
    "IPAMConfig": "EndpointIPAMConfig", "Links": STRINGS, "Aliases": STRINGS, "NetworkID": STRING,
    "EndpointID": STRING, "Gateway": STRING, "IPAddress": STRING, "IPPrefixLen": INT, "IPv6Gateway": STRING,
    "GlobalIPv6Address": STRING, "GlobalIPv6PrefixLen": INT, "MacAddress": STRING, "DriverOpts": STRING_MAP,
}

STRUCTS = {
    # POST /containers/create: the container's Config with its HostConfig and NetworkingConfig beside
    # (Docker's ContainerConfigWrapper); POST /commit's body is the same Config.
    "ContainerConfig": {**CONTAINER_CONFIG, "HostConfig": "HostConfig", "NetworkingConfig": "NetworkingConfig"},
    "HostConfig": HOST_CONFIG,
    "HealthConfig": {"Test": STRINGS, "Interval": INT64, "Timeout": INT64, "StartPeriod": INT64,
                     "StartInterval": INT64, "Retries": INT},
    "WeightDevice": {"Path": STRING, "Weight": UINT16},
    "ThrottleDevice": {"Path": STRING, "Rate": UINT64},
    "DeviceMapping": {"PathOnHost": STRING, "PathInContainer": STRING, "CgroupPermissions": STRING},
    "DeviceRequest": {"Driver": STRING, "Count": INT, "DeviceIDs": STRINGS, "Capabilities": _array(STRINGS),
                      "Options": STRING_MAP},
    "Ulimit": {"Name": STRING, "Soft": INT64, "Hard": INT64},
    "LogConfig": {"Type": STRING, "Config": STRING_MAP},
    "PortBinding": {"HostIp": STRING, "HostPort": STRING},
    "RestartPolicy": {"Name": STRING, "MaximumRetryCount": INT},
    "Mount": {"Target": STRING, "Source": STRING, "Type": STRING, "ReadOnly": BOOL, "Consistency": STRING,
              "BindOptions": "BindOptions", "VolumeOptions": "VolumeOptions", "TmpfsOptions": "TmpfsOptions"},
    "BindOptions": {"Propagation": STRING, "NonRecursive": BOOL, "CreateMountpoint": BOOL},
    "VolumeOptions": {"NoCopy": BOOL, "Labels": STRING_MAP, "DriverConfig": "Driver"},
    "Driver": {"Name": STRING, "Options": STRING_MAP},
    "TmpfsOptions": {"SizeBytes": INT64, "Mode": UINT32},
    "NetworkingConfig": {"EndpointsConfig": _map("EndpointSettings")},
    "EndpointSettings": ENDPOINT_SETTINGS,
    "EndpointIPAMConfig": {"IPv4Address": STRING, "IPv6Address": STRING, "LinkLocalIPs": STRINGS},
    # POST /containers/{id}/update
    "UpdateConfig": {**RESOURCES, "RestartPolicy": "RestartPolicy"},
    # POST /networks/create, /networks/{id}/connect, /networks/{id}/disconnect
    "NetworkCreateRequest": {"Name": STRING, "CheckDuplicate": BOOL, "Driver": STRING, "Scope": STRING,
                             "Internal": BOOL, "Attachable": BOOL, "Ingress": BOOL, "ConfigOnly": BOOL,
                             "ConfigFrom": "ConfigReference", "IPAM": "IPAM", "EnableIPv6": BOOL,
                             "EnableIPv4": BOOL, "Options": STRING_MAP, "Labels": STRING_MAP},
    "ConfigReference": {"Network": STRING},
    "IPAM": {"Driver": STRING, "Config": _array("IPAMConfig"), "Options": STRING_MAP},
    "IPAMConfig": {"Subnet": STRING, "IPRange": STRING, "Gateway": STRING, "AuxiliaryAddresses": STRING_MAP},
    "NetworkConnectRequest": {"Container": STRING, "EndpointConfig": "EndpointSettings"},
    "NetworkDisconnectRequest": {"Container": STRING, "Force": BOOL},
    # POST /volumes/create (ClusterVolumeSpec is swarm's: any object, refused later if set)
    "VolumeCreateRequest": {"Name": STRING, "Driver": STRING, "DriverOpts": STRING_MAP, "Labels": STRING_MAP,
                            "ClusterVolumeSpec": OBJECT},
}

# A null array element or map value decodes to the Go type's zero value.
_ZERO = {STRING: "", BOOL: False, STRSLICE: None, OBJECT: {}, **{name: 0 for name in _INT_RANGES}}


def decode(body, struct):
    """`body` (parsed JSON; None is an empty body) as Docker decodes it into `struct` (a key of
    STRUCTS): the same object with null elements made zero values. A wrong type is an
    InvalidArgument in Go's words, naming the struct and the field."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidArgument(f"json: cannot unmarshal {_kind(body)} into Go value of type {_go_name(struct)}")
    return _struct(body, struct)


def _struct(value, struct):
    fields = STRUCTS[struct]
    decoded = dict(value)
    for key, item in value.items():
        kind = fields.get(key)
        if kind is not None and item is not None:
            decoded[key] = _value(item, kind, f"{struct}.{key}")
    return decoded


def _value(value, kind, field):
    if isinstance(kind, tuple):
        return _container(value, kind, field)
    if kind in STRUCTS:
        _expect(value, dict, kind, field)
        return _struct(value, kind)
    if kind == STRSLICE:
        return [value] if isinstance(value, str) else _container(value, STRINGS, field)
    if kind in _INT_RANGES:
        return _integer(value, kind, field)
    _expect(value, {STRING: str, BOOL: bool, OBJECT: dict}[kind], kind, field)
    return value


def _container(value, kind, field):
    shape, item_kind = kind
    if shape == "array":
        _expect(value, list, kind, field)
        return [_item(item, item_kind, field) for item in value]
    _expect(value, dict, kind, field)
    return {key: _item(item, item_kind, field) for key, item in value.items()}


def _item(value, kind, field):
    if value is None:
        return {} if kind in STRUCTS else _ZERO.get(kind) if isinstance(kind, str) else None
    return _value(value, kind, field)


def _integer(value, kind, field):
    # Go's decoder takes an integer literal only: 1.5, 1e3 and 1e308 are refused, as is an overflow.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _type_error(value, kind, field)
    low, high = _INT_RANGES[kind]
    if isinstance(value, float) or not low <= value <= high:
        raise InvalidArgument(f"json: cannot unmarshal number {value} into Go struct field {field} of type {kind}")
    return value


def _expect(value, python_type, kind, field):
    if not isinstance(value, python_type):
        _type_error(value, kind, field)


def _type_error(value, kind, field):
    raise InvalidArgument(f"json: cannot unmarshal {_kind(value)} into Go struct field {field} "
                          f"of type {_go_name(kind)}")


def _kind(value):
    """The JSON kind's name as Go's decoder says it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def _go_name(kind):
    if isinstance(kind, tuple):
        shape, item = kind
        return ("[]" if shape == "array" else "map[string]") + _go_name(item)
    return {STRSLICE: "strslice.StrSlice", OBJECT: "struct {}"}.get(kind, kind)
