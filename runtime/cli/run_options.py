"""The options `run` and `create` share, and the API create body they make (Docker's flags and semantics)."""

import os

import click

from minictr.errors import InvalidArgument, NotFound

RUN_OPTIONS = [
    click.option("--name", help="Assign a name to the container."),
    click.option("-d", "--detach", is_flag=True, help="Run in the background and print the container's ID."),
    click.option("-i", "--interactive", is_flag=True, help="Keep stdin open and pass ours through."),
    click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
    click.option("--detach-keys", help="Key sequence that detaches (default ctrl-p,ctrl-q)."),
    click.option("--sig-proxy/--no-sig-proxy", default=True,
                 help="Proxy the signals we receive to the container (without a tty)."),
    click.option("-e", "--env", multiple=True, help="Set an environment variable (K=V, or K to pass ours)."),
    click.option("--env-file", multiple=True, help="Read environment variables from a file."),
    click.option("-l", "--label", multiple=True, help="Set a label (K=V)."),
    click.option("--label-file", multiple=True, help="Read labels from a file."),
    click.option("-w", "--workdir", help="Working directory inside the container."),
    click.option("-u", "--user", help="UID[:GID] or name[:group] inside the container."),
    click.option("-h", "--hostname", help="Container host name."),
    click.option("--entrypoint", help="Overwrite the image's entrypoint."),
    click.option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits."),
    click.option("--restart", default="no", help="Restart policy: no, on-failure[:N], always, unless-stopped."),
    click.option("--init", is_flag=True, help="Run an init inside the container that forwards signals and reaps."),
    click.option("--stop-signal", help="Signal that stops the container (default SIGTERM, or the image's)."),
    click.option("--stop-timeout", type=int, help="Seconds to wait before killing the container at stop."),
    click.option("--cidfile", help="Write the container ID to this file."),
    click.option("--log-driver", default="json-file", help="Logging driver: json-file or none."),
    click.option("--log-opt", multiple=True, help="Log driver option (max-size=10m, max-file=3)."),
    click.option("--network", default="default", help="Network: default or none (loopback only for now)."),
    click.argument("image"),
    click.argument("command", nargs=-1, type=click.UNPROCESSED),
]

# Docker stops parsing options at the image name: `run IMG sh -c 'x'` passes -c to sh.
RUN_SETTINGS = {"allow_interspersed_args": False}

_TRUE, _FALSE = ("true", "1", "t"), ("false", "0", "f")


class DockerCommand(click.Command):
    """A command whose boolean flags also take Docker's `--flag=true|false` (`--sig-proxy=false`)."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, docker_bools(self, args, ctx.allow_interspersed_args))


def docker_bools(command, args, interspersed=True):
    """`--flag=false` → `--no-flag` (or nothing when the flag is off by default), `--flag=true` →
    `--flag`, `-e=V` → `-e V`: only among the options, never in the container's command after
    the image."""
    options = {opt: p for p in command.params if isinstance(p, click.Option) for opt in p.opts}
    rewritten, i = [], 0
    while i < len(args):
        token = args[i]
        if token == "--" or not token.startswith("-") or token == "-":
            if not interspersed or token == "--":
                return rewritten + args[i:]
            rewritten.append(token)
        elif "=" in token:
            name, _, value = token.partition("=")
            param = options.get(name)
            if param is not None and param.is_flag and value.lower() in _TRUE + _FALSE:
                on = value.lower() in _TRUE
                rewritten += [name] if on else param.secondary_opts[:1]
            elif param is not None and not param.is_flag:
                rewritten += [name, value]  # `-e=K=V` is Docker's `-e K=V`
            else:
                rewritten.append(token)
        else:
            rewritten.append(token)
            param = options.get(token)
            if param is not None and not param.is_flag and i + 1 < len(args):
                rewritten.append(args[i + 1])  # the option's value, whatever it looks like
                i += 1
        i += 1
    return rewritten


def with_run_options(function):
    for option in reversed(RUN_OPTIONS):
        function = option(function)
    return function


def create_body(options):
    """The POST /containers/create body for the parsed `run`/`create` options."""
    if options["network"] not in ("default", "bridge", "none"):
        raise NotFound(f"network {options['network']} not found")
    if options["auto_remove"] and options["restart"] not in ("no", ""):
        raise InvalidArgument("Conflicting options: --restart and --rm")
    interactive, tty = options["interactive"], options["tty"]
    env = [entry for path in options["env_file"] for entry in _read_kv_file(path, from_environ=True)]
    env += [_env_entry(e) for e in options["env"]]
    labels = dict(_split_kv(e) for path in options["label_file"] for e in _read_kv_file(path, from_environ=False))
    labels.update(_split_kv(e) for e in options["label"])
    host_config = {
        "AutoRemove": options["auto_remove"],
        "NetworkMode": options["network"],
        "RestartPolicy": parse_restart_policy(options["restart"]),
        "LogConfig": {"Type": options["log_driver"], "Config": dict(_split_kv(o) for o in options["log_opt"])},
    }
    if options["init"]:
        host_config["Init"] = True
    body = {
        "Image": options["image"],
        "Env": env,
        "Labels": labels,
        "AttachStdin": interactive and not options["detach"],
        "AttachStdout": not options["detach"], "AttachStderr": not options["detach"],
        "OpenStdin": interactive, "StdinOnce": interactive and not options["detach"], "Tty": tty,
        "HostConfig": host_config,
    }
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
    if options["entrypoint"] is not None:
        body["Entrypoint"] = [options["entrypoint"]] if options["entrypoint"] else [""]
    return body


def parse_restart_policy(text):
    """Docker's --restart: no | always | unless-stopped | on-failure[:max-retries]."""
    name, sep, count = (text or "no").partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid restart policy '{name}'")
    if sep and name != "on-failure":
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{name}'")
    if sep and not count.isdigit():
        raise InvalidArgument(f"invalid restart policy format: maximum retry count must be an integer: {count!r}")
    return {"Name": "" if name == "no" else name, "MaximumRetryCount": int(count) if sep else 0}


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


def _env_entry(entry):
    if "=" in entry:
        return entry
    return f"{entry}={os.environ[entry]}" if entry in os.environ else entry


def _split_kv(entry):
    key, _, value = entry.partition("=")
    if not key:
        raise InvalidArgument(f"invalid key/value pair: {entry!r}")
    return key, value


def _read_kv_file(path, from_environ):
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
            line = _env_entry(line)
        if line.startswith("="):
            raise InvalidArgument(f"invalid line in {path}: {line!r}: variable name is empty")
        entries.append(line)
    return entries
