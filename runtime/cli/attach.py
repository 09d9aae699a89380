"""`attach`: our terminal to a running container's stdio (its tty, or its three streams)."""

import signal
import sys
import threading

import click

from minictr.cli.context import pass_ctx
from minictr.errors import Conflict

# What Docker's CLI does not forward: job control and the terminal's own business.
_NOT_PROXIED = {signal.SIGCHLD, signal.SIGPIPE, signal.SIGURG, signal.SIGWINCH, signal.SIGKILL, signal.SIGSTOP,
                signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCONT}


@click.command()
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN.")
@click.option("--detach-keys", help="Key sequence that detaches (default ctrl-p,ctrl-q).")
@click.option("--sig-proxy/--no-sig-proxy", default=True, show_default=True,
              help="Proxy received signals to the container (without a tty).")
@click.argument("container")
@pass_ctx
def attach(ctx, no_stdin, detach_keys, sig_proxy, container):
    """Attach local standard input, output, and error streams to a running container."""
    from minictr.cli.containers import check_attachable
    from minictr.cli.streams import stream_attached
    from minictr.client import quote_path

    client = ctx.client
    info = client.get(f"/containers/{quote_path(container)}/json")
    if info["State"]["Paused"]:
        raise Conflict("You cannot attach to a paused container, unpause it first")
    if not info["State"]["Running"]:
        raise Conflict("You cannot attach to a stopped container, start it first")
    container_id, tty = info["Id"], info["Config"]["Tty"]
    stdin = not no_stdin and info["Config"]["OpenStdin"]
    check_attachable(tty, stdin, detach_keys)
    waiter = client.stream("POST", f"/containers/{container_id}/wait", {"condition": "not-running"})
    sock, early = client.hijack(f"/containers/{container_id}/attach",
                                {"stream": 1, "stdin": int(stdin), "stdout": 1, "stderr": 1,
                                 "detachKeys": detach_keys})
    if sig_proxy and not tty:
        _proxy_signals(client.socket_path, container_id)
    if stream_attached(client, container_id, sock, early, tty=tty, stdin=stdin, detach_keys=detach_keys):
        return  # detached: the container runs on
    sys.exit(waiter.json()["StatusCode"])


def _proxy_signals(socket_path, container_id):
    """Send the signals we get to the container instead (Docker's --sig-proxy), each from a
    thread with a connection of its own."""
    from minictr.client import Client

    def forward(signum, frame):
        threading.Thread(target=_kill, args=(socket_path, container_id, signum), daemon=True).start()

    def _kill(path, ref, signum):
        try:
            Client(path).post(f"/containers/{ref}/kill", {"signal": int(signum)})
        except Exception:  # noqa: BLE001 - the container may be gone already
            pass

    for signum in signal.valid_signals():
        if signum not in _NOT_PROXIED and signum < signal.SIGRTMIN:
            try:
                signal.signal(signum, forward)
            except (OSError, ValueError):
                pass
