"""Container commands: run, create, start, ps, rm, inspect, wait, kill."""

import sys

import click

from minictr.cli import actions
from minictr.cli.context import error_line
from minictr.cli.decorators import pass_ctx
from minictr.cli.run_options import RUN_SETTINGS, DockerCommand, with_run_options
from minictr.client import api_path
from minictr.errors import NotFound


@click.command(cls=DockerCommand, context_settings=RUN_SETTINGS)
@with_run_options
@pass_ctx
def run(ctx, name, **options):
    """Create and run a new container from an image; exits with the container's exit code."""
    actions.run(ctx, name, **options)


@click.command(cls=DockerCommand, context_settings=RUN_SETTINGS)
@with_run_options
@pass_ctx
def create(ctx, name, **options):
    """Create a new container without starting it; prints its id."""
    actions.create(ctx, name, **options)


@click.command(cls=DockerCommand)
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and wait for the container to end.")
@click.option("-i", "--interactive", is_flag=True, help="Attach the container's STDIN.")
@click.option("--detach-keys", help="Key sequence that detaches (default ctrl-p,ctrl-q).")
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Proxy received signals to the container (with -a).")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def start(ctx, attach, interactive, detach_keys, sig_proxy, containers):
    """Start one or more created or stopped containers."""
    actions.start(ctx, attach, interactive, detach_keys, sig_proxy, containers)


@click.command()
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running).")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided (key=value).")
@click.option("--format", "format_", help="Format output using a Go template, 'table', 'table TEMPLATE' or 'json'.")
@click.option("-n", "--last", type=int, default=-1, help="Show n last created containers (includes all states).")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container (includes all states).")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes.")
@pass_ctx
def ps(ctx, all_, filters, format_, last, latest, no_trunc, quiet, size):
    """List containers."""
    actions.ps(ctx, all_, filters, format_, last, latest, no_trunc, quiet, size)


@click.command()
@click.option("-f", "--force", is_flag=True, help="Kill and remove a running container.")
@click.option("-v", "--volumes", is_flag=True, help="Remove the anonymous volumes of the container too.")
@click.option("-l", "--link", is_flag=True, help="Remove the given link (/CONTAINER/ALIAS), not a container.")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def rm(ctx, force, volumes, link, containers):
    """Remove one or more containers."""
    actions.rm(ctx, force, containers, volumes, link)


@click.command()
@click.option("-s", "--signal", "signal_", default="KILL", help="Signal to send.")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def kill(ctx, signal_, containers):
    """Send a signal to running containers."""
    actions.kill(ctx, signal_, containers)


@click.command()
@click.option("-t", "--time", "timeout", type=int, help="Seconds to wait before killing the container.")
@click.option("-s", "--signal", "signal_", help="Signal to send to stop the container.")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def stop(ctx, timeout, signal_, containers):
    """Stop running containers: the stop signal, then SIGKILL after a grace period."""
    actions.stop(ctx, timeout, signal_, containers)


@click.command()
@click.option("-t", "--time", "timeout", type=int, help="Seconds to wait before killing the container.")
@click.option("-s", "--signal", "signal_", help="Signal to send to stop the container.")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def restart(ctx, timeout, signal_, containers):
    """Restart one or more containers."""
    actions.restart(ctx, timeout, signal_, containers)


@click.command()
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def pause(ctx, containers):
    """Pause all processes within one or more containers."""
    actions.each_container(containers, lambda ref: ctx.client.post(api_path("/containers/{}/pause", ref)))


@click.command()
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def unpause(ctx, containers):
    """Unpause all processes within one or more containers."""
    actions.each_container(containers, lambda ref: ctx.client.post(api_path("/containers/{}/unpause", ref)))


@click.command()
@click.argument("container")
@click.argument("new_name")
@pass_ctx
def rename(ctx, container, new_name):
    """Rename a container."""
    ctx.client.post(api_path("/containers/{}/rename", container), {"name": new_name})


@click.command()
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def wait(ctx, containers):
    """Block until containers stop, then print their exit codes."""
    actions.wait(ctx, containers)


@click.command()
@click.option("-f", "--format", "format_", help="Format output using a Go template, or 'json'.")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes if the type is container.")
@click.option("--type", "kind", type=click.Choice(["container", "image"]), help="Only this kind of object.")
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def inspect(ctx, format_, size, kind, names):
    """Low-level information on containers or images, as JSON."""
    import json

    from minictr.cli.format import dump

    template = None
    if format_ and format_.strip() != "json":
        from minictr.cli.template import Template

        template = Template(format_)
    found, missing = [], []
    for name in names:
        paths = {"container": [(api_path("/containers/{}/json", name), {"size": 1} if size else None)],
                 "image": [(api_path("/images/{}/json", name), None)]}
        candidates = paths[kind] if kind else paths["container"] + paths["image"]
        for path, query in candidates:
            try:
                found.append(ctx.client.get(path, query))
                break
            except NotFound as e:
                error = e
        else:
            # Docker's words: the daemon's answer for one kind, its own line when it tried them all.
            missing.append(error_line(error) if kind else f"Error: No such object: {name}")
    if template is not None:
        from minictr.cli.container_format import INSPECT_TYPES

        click.echo("".join(template.execute(document, types=INSPECT_TYPES) + "\n" for document in found), nl=False)
    elif format_:
        click.echo(json.dumps(found, separators=(",", ":"), ensure_ascii=False))
    else:
        click.echo(dump(found))
    for line in missing:
        click.echo(line, err=True)
    if missing:
        sys.exit(1)


@click.group()
def container():
    """Manage containers."""


for _command, _name in ((run, "run"), (create, "create"), (start, "start"), (ps, "ls"), (rm, "rm"),
                        (kill, "kill"), (wait, "wait"), (stop, "stop"), (restart, "restart"), (pause, "pause"),
                        (unpause, "unpause"), (rename, "rename")):
    container.add_command(_command, _name)
container.add_command(inspect, "inspect")
