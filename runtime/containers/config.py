"""A container's configuration as Docker builds it from the create request and the image, and
the JSON views of a container that the API returns."""

from minictr.durations import rfc3339_to_unix, since

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
        "Image": body["Image"],
        "Volumes": body.get("Volumes") or image_config.get("Volumes"),
        "WorkingDir": body.get("WorkingDir") or image_config.get("WorkingDir") or "",
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": {**(image_config.get("Labels") or {}), **(body.get("Labels") or {})},
    }
    host_config = dict(body.get("HostConfig") or {})
    host_config.setdefault("NetworkMode", "default")
    host_config["AutoRemove"] = bool(host_config.get("AutoRemove"))
    return config, host_config


def merge_env(image_env, request_env, hostname):
    """Docker's order: PATH default, image env, then the request's, a later key replacing an earlier."""
    merged = {}
    for entry in [f"HOSTNAME={hostname}", DEFAULT_PATH, *image_env, *request_env]:
        key, sep, _ = entry.partition("=")
        # A bare `NAME` reaching the daemon (the CLI found no value for `-e NAME`) is dropped.
        if sep:
            merged[key] = entry
    return list(merged.values())


def hosts_file(hostname):
    return ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
            f"ff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n")


def _command(config):
    return " ".join((config["Entrypoint"] or []) + (config["Cmd"] or []))


def status_text(container):
    state = container.state.value
    if state == "running":
        return f"Up {since(rfc3339_to_unix(container.started_at))}"
    if state == "exited":
        return f"Exited ({container.exit_code}) {since(rfc3339_to_unix(container.finished_at))} ago"
    if state == "removing":
        return "Removal In Progress"
    return "Created"


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
        "Labels": container.config.get("Labels") or {},
        "State": container.state.value,
        "Status": status_text(container),
        "HostConfig": {"NetworkMode": container.host_config.get("NetworkMode", "default")},
        "NetworkSettings": {"Networks": {}},
        "Mounts": [],
    }


def inspect(container, paths):
    """GET /containers/{id}/json."""
    argv = (container.config["Entrypoint"] or []) + (container.config["Cmd"] or [])
    state = container.state.value
    return {
        "Id": container.id,
        "Created": container.created,
        "Path": argv[0] if argv else "",
        "Args": argv[1:],
        "State": {
            "Status": state,
            "Running": state == "running",
            "Paused": False,
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": container.pid,
            "ExitCode": container.exit_code,
            "Error": container.error,
            "StartedAt": container.started_at,
            "FinishedAt": container.finished_at,
        },
        "Image": container.image_id,
        "ResolvConfPath": "",
        "HostnamePath": paths["top"] + "/hostname",
        "HostsPath": paths["top"] + "/hosts",
        "LogPath": paths["log"],
        "Name": "/" + container.name,
        "RestartCount": 0,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": container.host_config,
        "GraphDriver": {"Name": "overlay2", "Data": {
            "UpperDir": paths["top"] + "/diff", "WorkDir": paths["top"] + "/work",
            "MergedDir": paths["top"] + "/rootfs"}},
        "Mounts": [],
        "Config": container.config,
        "NetworkSettings": {"Networks": {}, "Ports": {}, "SandboxKey": ""},
    }
