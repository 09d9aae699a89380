"""Daemon and system commands: daemon, version, info."""

import sys

import click

from minictr.cli.decorators import pass_ctx


@click.command()
@click.option("--data-root", help="Where images and containers are kept.")
@click.pass_context
def daemon(click_ctx, data_root):
    """Run the daemon in the foreground (rootless when started by an ordinary user)."""
    from minictr.daemon import run

    sys.exit(run(click_ctx.obj.host, data_root))


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


system.add_command(info, "info")
