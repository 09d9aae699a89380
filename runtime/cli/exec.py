"""`minictr exec`: run a command in a running container."""

import sys

import click

from minictr.cli.context import pass_ctx
from minictr.cli.run_options import DockerCommand
from minictr.errors import MinictrError


@click.command(cls=DockerCommand, context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run the command in the background.")
@click.option("-i", "--interactive", is_flag=True, help="Pass our stdin to the command.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.option("-e", "--env", multiple=True, help="Set an environment variable (K=V, or K to pass ours).")
@click.option("--env-file", multiple=True, help="Read environment variables from a file.")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("-u", "--user", help="UID[:GID] or name[:group] inside the container.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_ctx
def exec_(ctx, container, command, detach, interactive, tty, env, env_file, workdir, user):
    """Execute a command in a running container; exits with the command's exit code."""
    from minictr.client import quote_path

    client = ctx.client
    body = _exec_body(command, detach, interactive, tty, env, env_file, workdir, user)
    try:
        exec_id = client.post(f"/containers/{quote_path(container)}/exec", None, body).json()["Id"]
        if detach:
            client.post(f"/exec/{exec_id}/start", None, {"Detach": True, "Tty": tty})
            return
        sock, early = client.hijack(f"/exec/{exec_id}/start")
    except MinictrError as e:
        if not hasattr(e, "exit_code"):
            e.exit_code = 1  # docker exec's status for an error from the daemon
        raise
    from minictr.cli.streams import stream_attached

    if stream_attached(client, f"/exec/{exec_id}/resize", sock, early, tty=tty, stdin=interactive):
        return  # detached with ctrl-p ctrl-q: the command runs on
    sys.exit(client.get(f"/exec/{exec_id}/json")["ExitCode"] or 0)


def _exec_body(command, detach, interactive, tty, env, env_file, workdir, user):
    from minictr.cli.run_options import _env_entry, _read_kv_file
    from minictr.cli.terminal import terminal_size

    entries = [entry for path in env_file for entry in _read_kv_file(path, from_environ=True)]
    entries += [_env_entry(e) for e in env]
    body = {"AttachStdin": interactive and not detach, "AttachStdout": not detach,
            "AttachStderr": not detach, "Tty": tty, "Detach": detach, "Cmd": list(command),
            "Env": [e for e in entries if "=" in e]}
    if tty and (size := terminal_size()):
        body["ConsoleSize"] = list(size)
    if workdir:
        body["WorkingDir"] = workdir
    if user:
        body["User"] = user
    return body
