"""System commands: version, info, system prune (and df)."""

import click

from minictr.cli.decorators import pass_ctx


@click.command()
@pass_ctx
def version(ctx):
    """Show the client's and the daemon's versions."""
    from minictr import API_VERSION, __version__

    click.echo(f"Client:\n Version:     {__version__}\n API version: {API_VERSION}\n")
    server = ctx.client.get("/version")
    click.echo(f"Server:\n Version:     {server['Version']}\n API version: {server['ApiVersion']}"
               f" (minimum version {server['MinAPIVersion']})\n Kernel:      {server['KernelVersion']}")


@click.command()
@pass_ctx
def info(ctx):
    """Show system-wide information."""
    data = ctx.client.get("/info")
    lines = [
        f"Containers: {data['Containers']}", f" Running: {data['ContainersRunning']}",
        f" Stopped: {data['ContainersStopped']}", f"Images: {data['Images']}",
        f"Server Version: {data['ServerVersion']}", f"Storage Driver: {data['Driver']}",
        f"Cgroup Version: {data['CgroupVersion']}", f"Security Options: {', '.join(data['SecurityOptions']) or 'none'}",
        f"Kernel Version: {data['KernelVersion']}", f"Operating System: {data['OperatingSystem']}",
        f"CPUs: {data['NCPU']}", f"Docker Root Dir: {data['DockerRootDir']}",
    ]
    lines += [f"WARNING: {w}" for w in data.get("Warnings") or []]
    click.echo("\n".join(lines))


@click.group()
def system():
    """Manage minictr."""


@click.command()
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--volumes", is_flag=True, help="Prune anonymous volumes too.")
@pass_ctx
def prune(ctx, force, volumes):
    """Remove stopped containers (and, with --volumes, unused anonymous volumes)."""
    from minictr.cli.format import size
    from minictr.cli.volumes import confirm

    lines = ["  - all stopped containers"] + (["  - all anonymous volumes not used by at least one container"]
                                              if volumes else [])
    if not force and not confirm("WARNING! This will remove:\n" + "\n".join(lines) + "\n"):
        return
    reclaimed = 0
    containers = ctx.client.post("/containers/prune").json()
    reclaimed += containers.get("SpaceReclaimed") or 0
    if containers.get("ContainersDeleted"):
        click.echo("Deleted Containers:\n" + "\n".join(containers["ContainersDeleted"]) + "\n")
    if volumes:
        report = ctx.client.post("/volumes/prune").json()
        reclaimed += report.get("SpaceReclaimed") or 0
        if report.get("VolumesDeleted"):
            click.echo("Deleted Volumes:\n" + "\n".join(report["VolumesDeleted"]) + "\n")
    click.echo(f"Total reclaimed space: {size(reclaimed)}")


system.add_command(info, "info")
system.add_command(prune, "prune")
system.add_command(__import__("minictr.cli.df", fromlist=["df"]).df, "df")
