"""Container commands: run, create, start, ps, rm, inspect, wait, kill."""

import os
import sys

import click

from minictr.cli.context import each, pass_ctx
from minictr.errors import MinictrError, NotFound

_RUN_OPTIONS = [
    click.option("--name", help="Assign a name to the container."),
    click.option("-e", "--env", multiple=True, help="Set an environment variable (K=V, or K to pass ours)."),
    click.option("-w", "--workdir", help="Working directory inside the container."),
    click.option("-u", "--user", help="UID[:GID] or name[:group] inside the container."),
    click.option("-h", "--hostname", help="Container host name."),
    click.option("--entrypoint", help="Overwrite the image's entrypoint."),
    click.option("-i", "--interactive", is_flag=True, help="Keep stdin open and pass ours through."),
    click.option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits."),
    click.option("--network", default="default", help="Network: default or none (loopback only for now)."),
    click.argument("image"),
    click.argument("command", nargs=-1, type=click.UNPROCESSED),
]

# Docker stops parsing options at the image name: `run IMG sh -c 'x'` passes -c to sh.
_RUN_SETTINGS = {"allow_interspersed_args": False}


def _with_options(options):
    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function
    return decorate


def _create_body(image, command, env, workdir, user, hostname, entrypoint, interactive, auto_remove, network):
    if network not in ("default", "bridge", "none"):
        raise NotFound(f"network {network} not found")
    body = {
        "Image": image,
        "Env": [_env_entry(e) for e in env],
        "AttachStdin": interactive, "AttachStdout": True, "AttachStderr": True,
        "OpenStdin": interactive, "StdinOnce": interactive, "Tty": False,
        "HostConfig": {"AutoRemove": auto_remove, "NetworkMode": network},
    }
    if command:
        body["Cmd"] = list(command)
    for key, value in (("WorkingDir", workdir), ("User", user), ("Hostname", hostname)):
        if value:
            body[key] = value
    if entrypoint is not None:
        body["Entrypoint"] = [entrypoint] if entrypoint else [""]
    return body


def _env_entry(entry):
    if "=" in entry:
        return entry
    return f"{entry}={os.environ[entry]}" if entry in os.environ else entry


@click.command(context_settings=_RUN_SETTINGS)
@_with_options(_RUN_OPTIONS)
@pass_ctx
def run(ctx, image, command, name, **options):
    """Create and run a new container from an image; exits with the container's exit code."""
    from minictr.cli.streams import demux_to_terminal, forward_stdin

    client = ctx.client
    body = _create_body(image, command, **options)
    container_id = client.post("/containers/create", {"name": name}, body).json()["Id"]
    interactive = options["interactive"]
    sock, early = client.hijack(f"/containers/{container_id}/attach",
                                {"stream": 1, "stdin": int(interactive), "stdout": 1, "stderr": 1})
    condition = "removed" if options["auto_remove"] else "next-exit"
    waiter = client.stream("POST", f"/containers/{container_id}/wait", {"condition": condition})
    try:
        client.post(f"/containers/{container_id}/start")
    except MinictrError as e:
        e.exit_code = _start_exit_code(str(e))
        raise
    if interactive:
        forward_stdin(sock)
    demux_to_terminal(sock, early)
    sys.exit(waiter.json()["StatusCode"])


def _start_exit_code(message):
    """Docker's exit codes when a container cannot start: 127 no such command, 126 not executable."""
    if "executable file not found" in message or "no such file or directory" in message.lower():
        return 127
    if "permission denied" in message.lower():
        return 126
    return 125


@click.command(context_settings=_RUN_SETTINGS)
@_with_options(_RUN_OPTIONS)
@pass_ctx
def create(ctx, image, command, name, **options):
    """Create a new container without starting it; prints its id."""
    body = _create_body(image, command, **options)
    click.echo(ctx.client.post("/containers/create", {"name": name}, body).json()["Id"])


@click.command()
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def start(ctx, containers):
    """Start one or more created or stopped containers."""
    _each(containers, lambda ref: ctx.client.post(f"/containers/{ref}/start"))


@click.command()
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running).")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@pass_ctx
def ps(ctx, all_, quiet, no_trunc):
    """List containers."""
    from minictr.cli.format import ago, table

    containers = ctx.client.get("/containers/json", {"all": int(all_)})
    ids = [c["Id"] if no_trunc else c["Id"][:12] for c in containers]
    if quiet:
        for container_id in ids:
            click.echo(container_id)
        return
    rows = []
    for container_id, c in zip(ids, containers):
        command = c["Command"] if no_trunc or len(c["Command"]) <= 20 else c["Command"][:19] + "…"
        rows.append([container_id, c["Image"], f'"{command}"', ago(c["Created"]), c["Status"], "",
                     ",".join(n.lstrip("/") for n in c["Names"])])
    click.echo(table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows))


@click.command()
@click.option("-f", "--force", is_flag=True, help="Kill and remove a running container.")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def rm(ctx, force, containers):
    """Remove one or more containers."""
    _each(containers, lambda ref: ctx.client.delete(f"/containers/{ref}", {"force": int(force)}))


@click.command()
@click.option("-s", "--signal", "signal_", default="KILL", help="Signal to send.")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def kill(ctx, signal_, containers):
    """Send a signal to running containers."""
    _each(containers, lambda ref: ctx.client.post(f"/containers/{ref}/kill", {"signal": signal_}))


@click.command()
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def wait(ctx, containers):
    """Block until containers stop, then print their exit codes."""
    for ref in containers:
        click.echo(ctx.client.stream("POST", f"/containers/{ref}/wait").json()["StatusCode"])


@click.command()
@click.option("--type", "kind", type=click.Choice(["container", "image"]), help="Only this kind of object.")
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def inspect(ctx, kind, names):
    """Low-level information on containers or images, as JSON."""
    from minictr.cli.format import dump
    from minictr.client import quote_path

    found, missing = [], []
    for name in names:
        paths = {"container": [f"/containers/{quote_path(name)}/json"], "image": [f"/images/{name}/json"]}
        candidates = paths[kind] if kind else paths["container"] + paths["image"]
        for path in candidates:
            try:
                found.append(ctx.client.get(path))
                break
            except NotFound:
                continue
        else:
            missing.append(name)
    click.echo(dump(found))
    for name in missing:
        click.echo(f"minictr: No such object: {name}", err=True)
    if missing:
        sys.exit(1)


def _each(refs, request):
    """Send `request` for each container named, printing each name as it succeeds."""

    def act(ref):
        request(ref)
        click.echo(ref)

    if not each(refs, act):
        sys.exit(1)


@click.group()
def container():
    """Manage containers."""


for _command, _name in ((run, "run"), (create, "create"), (start, "start"), (ps, "ls"), (rm, "rm"),
                        (kill, "kill"), (wait, "wait")):
    container.add_command(_command, _name)
container.add_command(inspect, "inspect")
