"""`minictr exec`: run a command in a running container."""

import click

from minictr.cli import actions
from minictr.cli.decorators import pass_ctx
from minictr.cli.run_options import DockerCommand


@click.command(cls=DockerCommand, context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run the command in the background.")
@click.option("-i", "--interactive", is_flag=True, help="Pass our stdin to the command.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.option("-e", "--env", multiple=True, help="Set an environment variable (K=V, or K to pass ours).")
@click.option("--env-file", multiple=True, help="Read environment variables from a file.")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("-u", "--user", help="UID[:GID] or name[:group] inside the container.")
@click.option("--privileged", is_flag=True, help="Give the command every capability.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_ctx
def exec_(ctx, container, command, detach, interactive, tty, env, env_file, workdir, user, privileged):
    """Execute a command in a running container; exits with the command's exit code."""
    actions.exec_(ctx, container, command, detach, interactive, tty, env, env_file, workdir, user, privileged)
