"""A container's configuration as Docker builds it from the create request and the image, and
the JSON views of a container that the API returns."""

from minictr.errors import InvalidArgument
from minictr.spec import health, hosts, restart
from minictr.spec.times import rfc3339_to_unix, since

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def merge(body, image_config, container_id):
    """(Config, HostConfig) for a new container: request fields win, the image fills the rest."""
    image_config = image_config or {}
    hostname = body.get("Hostname") or container_id[:12]
    entrypoint = body.get("Entrypoint")
    cmd = body.get("Cmd")
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint]
    if isinstance(cmd, str):
        cmd = [cmd]
    if entrypoint is not None:
        # Setting an entrypoint drops the image's Cmd, as in Docker; `--entrypoint ""` clears it.
        entrypoint = [a for a in entrypoint if a != ""] or None
        cmd = cmd or None
    else:
        entrypoint = image_config.get("Entrypoint")
        if not cmd:
            cmd = image_config.get("Cmd")
    config = {
        "Hostname": hostname,
        "Domainname": body.get("Domainname", ""),
        "User": body.get("User") or image_config.get("User") or "",
        "AttachStdin": bool(body.get("AttachStdin")),
        "AttachStdout": bool(body.get("AttachStdout")),
        "AttachStderr": bool(body.get("AttachStderr")),
        "Tty": bool(body.get("Tty")),
        "OpenStdin": bool(body.get("OpenStdin")),
        "StdinOnce": bool(body.get("StdinOnce")),
        "Env": merge_env(image_config.get("Env") or [], body.get("Env") or [], hostname),
        "Cmd": cmd,
        **_healthcheck(body.get("Healthcheck"), image_config.get("Healthcheck")),
        "Image": body["Image"],
        "Volumes": body.get("Volumes") or image_config.get("Volumes"),
        "WorkingDir": body.get("WorkingDir") or image_config.get("WorkingDir") or "",
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": {**(image_config.get("Labels") or {}), **(body.get("Labels") or {})},
    }
    exposed = {**(image_config.get("ExposedPorts") or {}), **(body.get("ExposedPorts") or {})}
    if exposed:  # the image's EXPOSE and --expose/-p: what -P publishes
        config["ExposedPorts"] = exposed
    stop_signal = body.get("StopSignal") or image_config.get("StopSignal")
    if stop_signal:
        config["StopSignal"] = stop_signal
    if body.get("StopTimeout") is not None:
        config["StopTimeout"] = int(body["StopTimeout"])
    if body.get("WorkingDir") and not body["WorkingDir"].startswith("/"):
        raise InvalidArgument(f"the working directory '{body['WorkingDir']}' is invalid, it needs to be an absolute path")
    host_config = dict(body.get("HostConfig") or {})
    host_config.setdefault("NetworkMode", "default")
    host_config["AutoRemove"] = bool(host_config.get("AutoRemove"))
    restart.check(host_config.get("RestartPolicy"), host_config["AutoRemove"])
    hosts.check_extra_hosts(host_config.get("ExtraHosts"))
    return config, host_config


def _healthcheck(requested, image):
    """{"Healthcheck": the request's over the image's} (Docker's merge), or {} when neither has one."""
    health.check(requested)
    merged = health.merge(requested, image)
    return {"Healthcheck": merged} if merged else {}


def merge_env(image_env, request_env, hostname):
    """Docker's order: PATH default, image env, then the request's, a later key replacing an earlier.
    A bare `NAME` (the CLI found no value for `-e NAME`) is kept as given, as Docker's Config.Env
    keeps it, in place of the NAME before it; process_env leaves it out."""
    merged = {}
    for entry in [f"HOSTNAME={hostname}", DEFAULT_PATH, *image_env, *request_env]:
        merged[entry.partition("=")[0]] = entry
    return list(merged.values())


def process_env(env):
    """The environment a process gets from a Config.Env: without its bare `NAME` entries, which
    unset NAME (Docker's ReplaceOrAppendEnvValues; runc would refuse them)."""
    return [entry for entry in env if "=" in entry]


def _command(config):
    """Docker's Command of a list item (daemon/list.go): path, then the args, each with a space in
    single quotes (`sh -c 'exit 3'`)."""
    argv = (config["Entrypoint"] or []) + (config["Cmd"] or [])
    return " ".join(argv[:1] + [f"'{arg}'" if " " in arg else arg for arg in argv[1:]])


def state_string(container):
    """Docker's one-word state: created, running, paused, restarting, removing, exited, dead."""
    if getattr(container, "restarting", False):
        return "restarting"
    if getattr(container, "paused", False) is True:
        return "paused"
    if container.state.value == "exited" and container.started_at.startswith("0001-"):
        return "created"  # it never ran (its start failed): Docker still calls it created
    return container.state.value


def status_text(container):
    """The STATUS column, in Docker's words (`Up 3 minutes`, `Exited (0) 2 seconds ago`)."""
    state = state_string(container)
    if state == "running":
        return f"Up {since(rfc3339_to_unix(container.started_at))}{_health_suffix(container)}"
    if state == "paused":
        return f"Up {since(rfc3339_to_unix(container.started_at))} (Paused)"
    if state == "restarting":
        return f"Restarting ({container.exit_code}) {since(rfc3339_to_unix(container.finished_at))} ago"
    if state == "removing":
        return "Removal In Progress"
    if state == "dead":
        return "Dead"
    if container.started_at.startswith("0001-"):
        return "Created"
    return f"Exited ({container.exit_code}) {since(rfc3339_to_unix(container.finished_at))} ago"


def _health_suffix(container):
    """` (health: starting)`, ` (healthy)`, ` (unhealthy)` after `Up …`, as Docker's State.String."""
    health = getattr(container, "health", None)
    if not health:
        return ""
    return f" (health: {health['Status']})" if health["Status"] == "starting" else f" ({health['Status']})"


def health_status(container):
    """The container's health for `ps --filter health=`: its Status, or `none` without a healthcheck."""
    health = getattr(container, "health", None)
    return health["Status"] if health else "none"


def directory_size(top):
    """Bytes of the files under `top` (a container's upper dir), each hard-linked file once,
    directories not counted: Docker's SizeRw."""
    import os

    total, seen = 0, set()
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if name in dirs and not os.path.islink(os.path.join(root, name)):
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def summary(container):
    """One item of GET /containers/json."""
    return {
        "Id": container.id,
        "Names": ["/" + container.name],
        "Image": container.image_ref,
        "ImageID": container.image_id,
        "Command": _command(container.config),
        "Created": rfc3339_to_unix(container.created),
        "Ports": [],
        "Labels": _sorted_map(container.config.get("Labels") or {}),
        "State": state_string(container),
        "Status": status_text(container),
        "HostConfig": {"NetworkMode": container.host_config.get("NetworkMode", "default")},
        "NetworkSettings": {"Networks": {}},
        "Mounts": [],
    }


# HostConfig as Docker's inspect shows it when the request left a field out.
_HOST_CONFIG_DEFAULTS = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0],
    "CapAdd": None, "CapDrop": None, "CgroupnsMode": "private", "Dns": [], "DnsOptions": [],
    "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private", "Cgroup": "",
    "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False,
    "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864,
    "Runtime": "minictr", "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
    "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
    "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
    "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0, "MemorySwap": 0,
    "MemorySwappiness": None, "OomKillDisable": None, "PidsLimit": None, "Ulimits": [], "CpuCount": 0,
    "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None,
}


def _host_config(stored):
    import copy

    host_config = copy.deepcopy(_HOST_CONFIG_DEFAULTS)
    host_config.update({k: v for k, v in stored.items() if v is not None or k not in host_config})
    # Docker fills in an empty restart policy or log driver with its defaults.
    host_config["RestartPolicy"] = restart.normalize(host_config["RestartPolicy"])
    log_config = dict(host_config["LogConfig"] or {})
    host_config["LogConfig"] = {"Type": log_config.get("Type") or "json-file", "Config": log_config.get("Config") or {}}
    return host_config


def inspect(container, paths):
    """GET /containers/{id}/json."""
    argv = (container.config["Entrypoint"] or []) + (container.config["Cmd"] or [])
    state = state_string(container)
    return {
        "Id": container.id,
        "Created": container.created,
        "Path": argv[0] if argv else "",
        "Args": argv[1:],
        "State": {
            "Status": state,
            "Running": state in ("running", "paused", "restarting"),
            "Paused": state == "paused",
            "Restarting": state == "restarting",
            "OOMKilled": bool(getattr(container, "oom_killed", False)),
            "Dead": state == "dead",
            "Pid": container.pid,
            "ExitCode": container.exit_code,
            "Error": container.error,
            "StartedAt": container.started_at,
            "FinishedAt": container.finished_at,
            **({"Health": container.health} if getattr(container, "health", None) else {}),
        },
        "Image": container.image_id,
        "ResolvConfPath": "",
        "HostnamePath": paths["top"] + "/hostname",
        "HostsPath": paths["top"] + "/hosts",
        "LogPath": paths["log"],
        "Name": "/" + container.name,
        "RestartCount": getattr(container, "restart_count", 0),
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": getattr(container, "exec_ids", None) or None,
        "HostConfig": _host_config(container.host_config),
        "GraphDriver": {"Data": {
            "MergedDir": paths["top"] + "/rootfs", "UpperDir": paths["top"] + "/diff",
            "WorkDir": paths["top"] + "/work"}, "Name": "overlay2"},
        "Mounts": [],
        "Config": {**container.config, "Labels": _sorted_map(container.config.get("Labels"))},
        "NetworkSettings": {
            "Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {}, "HairpinMode": False,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": {}},
    }


def _sorted_map(mapping):
    """A Go map as Docker's JSON shows it: keys in order."""
    return None if mapping is None else {k: mapping[k] for k in sorted(mapping)}
