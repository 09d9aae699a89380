"""`attach`: our terminal to a running container's stdio (its tty, or its three streams)."""

import sys

import click

from minictr.cli.decorators import pass_ctx
from minictr.cli.run_options import DockerCommand
from minictr.client import api_path
from minictr.errors import Conflict


@click.command(cls=DockerCommand)
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN.")
@click.option("--detach-keys", help="Key sequence that detaches (default ctrl-p,ctrl-q).")
@click.option("--sig-proxy/--no-sig-proxy", default=True,
              help="Proxy received signals to the container (without a tty).")
@click.argument("container")
@pass_ctx
def attach(ctx, no_stdin, detach_keys, sig_proxy, container):
    """Attach local standard input, output, and error streams to a running container."""
    from minictr.cli.actions import check_attachable
    from minictr.cli.streams import proxy_signals, stream_attached

    client = ctx.client
    info = client.get(api_path("/containers/{}/json", container))
    if info["State"]["Paused"]:
        raise Conflict("You cannot attach to a paused container, unpause it first")
    if not info["State"]["Running"]:
        raise Conflict("You cannot attach to a stopped container, start it first")
    container_id, tty = info["Id"], info["Config"]["Tty"]
    stdin = not no_stdin and info["Config"]["OpenStdin"]
    check_attachable(tty, stdin, detach_keys)
    waiter = client.stream("POST", api_path("/containers/{}/wait", container_id), {"condition": "not-running"})
    sock, early = client.hijack(api_path("/containers/{}/attach", container_id),
                                {"stream": 1, "stdin": int(stdin), "stdout": 1, "stderr": 1,
                                 "detachKeys": detach_keys})
    if sig_proxy and not tty:
        proxy_signals(client.socket_path, container_id)
    if stream_attached(client, api_path("/containers/{}/resize", container_id), sock, early, tty=tty, stdin=stdin,
                       detach_keys=detach_keys):
        return  # detached: the container runs on
    sys.exit(waiter.json()["StatusCode"])
