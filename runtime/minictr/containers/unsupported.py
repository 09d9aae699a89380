"""Create-body fields minictr does not implement: set to anything but their zero value, create answers
400 naming the docker flag, never a container that silently ignores it (docs/compat.md, "run/create
flags"; tests/unit/test_compat_table.py keeps the two in step)."""

from minictr.errors import InvalidArgument

# HostConfig field -> (docker flag, values that mean "not asked for").
HOST_CONFIG = {
    "DeviceRequests": ("--gpus", (None, [])),
    "CgroupParent": ("--cgroup-parent", (None, "")),
    "BlkioWeight": ("--blkio-weight", (None, 0)),
    "BlkioWeightDevice": ("--blkio-weight-device", (None, [])),
    "BlkioDeviceReadBps": ("--device-read-bps", (None, [])),
    "BlkioDeviceWriteBps": ("--device-write-bps", (None, [])),
    "BlkioDeviceReadIOps": ("--device-read-iops", (None, [])),
    "BlkioDeviceWriteIOps": ("--device-write-iops", (None, [])),
    "CpuRealtimePeriod": ("--cpu-rt-period", (None, 0)),
    "CpuRealtimeRuntime": ("--cpu-rt-runtime", (None, 0)),
    "CpusetMems": ("--cpuset-mems", (None, "")),
    "MemoryReservation": ("--memory-reservation", (None, 0)),
    "KernelMemory": ("--kernel-memory", (None, 0)),
    "VolumeDriver": ("--volume-driver", (None, "", "local")),
    "Runtime": ("--runtime", (None, "", "minictr")),
    "Isolation": ("--isolation", (None, "", "default")),
    "StorageOpt": ("--storage-opt", (None, {})),
    "Annotations": ("--annotation", (None, {})),
    "CpuCount": ("--cpu-count", (None, 0)),
    "CpuPercent": ("--cpu-percent", (None, 0)),
    "IOMaximumIOps": ("--io-maxiops", (None, 0)),
    "IOMaximumBandwidth": ("--io-maxbandwidth", (None, 0)),
}

# Why a flag is refused, where the user could expect it to work (Docker has it for some drivers).
REASONS = {"--storage-opt": "minictr's storage drivers (overlay, fuse-overlayfs, vfs) cannot limit a container's size"}

# Config (the body's top level) field -> (docker flag, values that mean "not asked for").
CONFIG = {
    "Domainname": ("--domainname", (None, "")),
}

# NetworkingConfig.EndpointsConfig.<network> field -> docker flag.
ENDPOINT = {}
ENDPOINT_IPAM = {}


def check(body):
    """Raise InvalidArgument naming the first flag of the create body minictr would have to ignore."""
    host_config = body.get("HostConfig") or {}
    for fields, source in ((HOST_CONFIG, host_config), (CONFIG, body)):
        for key, (flag, unset) in fields.items():
            if key in source and source[key] not in unset:
                where = "HostConfig." + key if source is host_config else key
                reason = f": {REASONS[flag]}" if flag in REASONS else ""
                raise InvalidArgument(f"minictr does not support {flag} ({where}){reason}")
    endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    for network, endpoint in endpoints.items():
        endpoint = endpoint or {}
        for fields, source in ((ENDPOINT, endpoint), (ENDPOINT_IPAM, endpoint.get("IPAMConfig") or {})):
            for key, flag in fields.items():
                if source.get(key):
                    raise InvalidArgument(f"minictr does not support {flag} (EndpointsConfig.{network}.{key})")
