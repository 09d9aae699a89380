"""The create body that `run` and `create` send, from their parsed options (Docker's flags and
semantics), and the small files they read. No click here: the fast path uses it too."""

import os

from minictr.errors import InvalidArgument
from minictr.spec import devices, health, mounts, restart
from minictr.spec.hosts import split_extra_host
from minictr.spec.links import parse_link
from minictr.spec.resources import host_config_fields


def _network_options(options, host_config, body):
    """--add-host, --dns, --link into HostConfig; --ip, --network-alias (and --link on a user-defined
    network, as the docker CLI sends them) into NetworkingConfig."""
    for entry in options.get("add_host") or ():
        if split_extra_host(entry) is None:
            raise InvalidArgument(f"invalid argument \"{entry}\" for \"--add-host\" flag: bad format")
    if options.get("add_host"):
        host_config["ExtraHosts"] = list(options["add_host"])
    if options.get("dns"):
        host_config["Dns"] = list(options["dns"])
    links = list(options.get("link") or ())
    for link in links:
        parse_link(link)
    if links:
        host_config["Links"] = links
    network = "bridge" if options["network"] == "default" else options["network"]
    user_defined = network not in ("bridge", "host", "none") and not network.startswith("container:")
    if options.get("ip") or options.get("link_local_ip") or options.get("network_alias") or (links and user_defined):
        endpoint = {"Aliases": list(options.get("network_alias") or ())}
        if options.get("ip") or options.get("link_local_ip"):
            endpoint["IPAMConfig"] = {"IPv4Address": options.get("ip") or "",
                                      "LinkLocalIPs": list(options.get("link_local_ip") or ())}
        if links and user_defined:
            endpoint["Links"] = links
        body["NetworkingConfig"] = {"EndpointsConfig": {network: endpoint}}
    if options.get("mac_address"):
        body["MacAddress"] = options["mac_address"]  # as the docker CLI sends it to API 1.43


def create_body(options):
    """The POST /containers/create body for the parsed `run`/`create` options."""
    if options["auto_remove"] and options["restart"] not in ("no", ""):
        raise InvalidArgument("Conflicting options: --restart and --rm")
    interactive, tty = options["interactive"], options["tty"]
    env = [entry for path in options["env_file"] for entry in read_kv_file(path, from_environ=True)]
    env += [env_entry(e) for e in options["env"]]
    labels = dict(_split_kv(e) for path in options["label_file"] for e in read_kv_file(path, from_environ=False))
    labels.update(_split_kv(e) for e in options["label"])
    host_config = {
        "AutoRemove": options["auto_remove"],
        "NetworkMode": options["network"],
        "RestartPolicy": restart.parse(options["restart"]),
        "LogConfig": {"Type": options["log_driver"], "Config": dict(_split_kv(o) for o in options["log_opt"])},
    }
    if options["init"]:
        host_config["Init"] = True
    if options.get("cap_add"):
        host_config["CapAdd"] = list(options["cap_add"])
    if options.get("cap_drop"):
        host_config["CapDrop"] = list(options["cap_drop"])
    if options.get("privileged"):
        host_config["Privileged"] = True
    if options.get("security_opt"):
        host_config["SecurityOpt"] = security_opts(options["security_opt"])
    if options.get("device"):
        host_config["Devices"] = [devices.parse_device(d) for d in options["device"]]
    if options.get("device_cgroup_rule"):
        for rule in options["device_cgroup_rule"]:
            devices.parse_rule(rule)
        host_config["DeviceCgroupRules"] = list(options["device_cgroup_rule"])
    for option, key in (("pid", "PidMode"), ("ipc", "IpcMode"), ("uts", "UTSMode"), ("cgroupns", "CgroupnsMode"),
                        ("userns", "UsernsMode")):
        if options.get(option):
            host_config[key] = options[option]
    if options.get("group_add"):
        host_config["GroupAdd"] = list(options["group_add"])
    if options.get("sysctl"):
        host_config["Sysctls"] = dict(_split_kv(o) for o in options["sysctl"])
    if options.get("oom_kill_disable"):
        host_config["OomKillDisable"] = True
    host_config.update(host_config_fields(options))
    volumes = _mount_options(options, host_config)
    exposed_ports = _port_options(options, host_config)
    body = {
        "Image": options["image"],
        "Env": env,
        "Labels": labels,
        "AttachStdin": interactive and not options["detach"],
        "AttachStdout": not options["detach"], "AttachStderr": not options["detach"],
        "OpenStdin": interactive, "StdinOnce": interactive and not options["detach"], "Tty": tty,
        "HostConfig": host_config,
    }
    _network_options(options, host_config, body)
    if volumes:
        body["Volumes"] = volumes
    if exposed_ports:
        body["ExposedPorts"] = exposed_ports
    if tty:
        size = _terminal_size()
        if size:
            host_config["ConsoleSize"] = list(size)
    if options["command"]:
        body["Cmd"] = list(options["command"])
    for key, value in (("WorkingDir", options["workdir"]), ("User", options["user"]),
                       ("Hostname", options["hostname"]), ("StopSignal", options["stop_signal"]),
                       ("StopTimeout", options["stop_timeout"])):
        if value is not None and value != "":
            body[key] = value
    healthcheck = health.from_options(options)
    if healthcheck is not None:
        body["Healthcheck"] = healthcheck
    if options["entrypoint"] is not None:
        body["Entrypoint"] = [options["entrypoint"]] if options["entrypoint"] else [""]
    return body


def _port_options(options, host_config):
    """-p/-P/--expose into HostConfig.PortBindings/PublishAllPorts; the ExposedPorts they add."""
    if not (options.get("publish") or options.get("expose") or options.get("publish_all")):
        return {}
    from minictr.spec.ports import publish_options  # off the path of a `run` without ports

    exposed, bindings = publish_options(options.get("publish") or (), options.get("expose") or ())
    if bindings:
        host_config["PortBindings"] = bindings
    if options.get("publish_all"):
        host_config["PublishAllPorts"] = True
    return exposed


def _mount_options(options, host_config):
    """-v, --mount, --tmpfs, --volumes-from, --read-only into HostConfig as the docker CLI sends
    them (Binds, Mounts, Tmpfs, VolumesFrom, ReadonlyRootfs; `-v /path` into the returned
    Config.Volumes), checked here so that bad input creates nothing."""
    binds, volumes = [], {}
    for spec in options.get("volume") or ():
        if mounts.parse_bind(spec)["anonymous"]:
            volumes[spec] = {}
        else:
            binds.append(spec)
    parsed = [mounts.parse_mount_flag(text) for text in options.get("mount") or ()]
    tmpfs = dict(mounts.split_tmpfs_flag(text) for text in options.get("tmpfs") or ())
    for key, value in (("Binds", binds), ("Mounts", parsed), ("Tmpfs", tmpfs),
                       ("VolumesFrom", list(options.get("volumes_from") or ()))):
        if value:
            host_config[key] = value
    if options.get("read_only"):
        host_config["ReadonlyRootfs"] = True
    mounts.requested(host_config, volumes)  # duplicates and every other error, before the daemon
    return volumes


def write_cidfile(path, container_id):
    with open(path, "x") as f:
        f.write(container_id)


def check_cidfile(path):
    """Docker refuses to overwrite a cidfile: another container may still be using it."""
    if path and os.path.exists(path):
        raise InvalidArgument(f"Container ID file found, make sure the other container isn't running or delete {path}")


def _terminal_size():
    for fd in (1, 0, 2):
        try:
            size = os.get_terminal_size(fd)
            return size.lines, size.columns
        except OSError:
            continue
    return None


def env_entry(entry):
    if "=" in entry:
        return entry
    return f"{entry}={os.environ[entry]}" if entry in os.environ else entry


def _split_kv(entry):
    key, _, value = entry.partition("=")
    if not key:
        raise InvalidArgument(f"invalid key/value pair: {entry!r}")
    return key, value


def read_kv_file(path, from_environ):
    """Lines of KEY=VALUE (or a bare KEY) from an --env-file or --label-file; # starts a comment."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise InvalidArgument(f"open {path}: {e.strerror}") from None
    entries = []
    for line in lines:
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line and from_environ:
            line = env_entry(line)
        if line.startswith("="):
            raise InvalidArgument(f"invalid line in {path}: {line!r}: variable name is empty")
        entries.append(line)
    return entries


def security_opts(opts):
    """`--security-opt` as the docker CLI sends it: a seccomp profile's file is read here and sent as
    `seccomp=<its JSON, compacted>` (the daemon may not see the client's files)."""
    import json

    sent = []
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep and key != "no-new-privileges":
            key, sep, value = opt.partition(":")
        if (not sep or not value) and key != "no-new-privileges":
            raise InvalidArgument(f"Invalid --security-opt: {json.dumps(opt)}")
        if key == "seccomp" and value not in ("builtin", "unconfined"):
            try:
                with open(value, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise InvalidArgument(f"opening seccomp profile ({value}) failed: {getattr(e, 'strerror', e)}") from None
            try:
                compact = json.dumps(json.loads(text), separators=(",", ":"))
            except ValueError as e:
                raise InvalidArgument(f"compacting json for seccomp profile ({value}) failed: {e}") from None
            opt = f"seccomp={compact}"
        sent.append(opt)
    return sent
