"""The `logs` command."""

import os
import time

import click

from minictr.cli.decorators import pass_ctx
from minictr.client import api_path
from minictr.spec.times import parse_timestamp


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("--since", help="Show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m for 42 minutes).")
@click.option("--until", help="Show logs before a timestamp (2013-01-02T13:23:37Z) or relative (42m for 42 minutes).")
@click.option("-n", "--tail", default="all", show_default=True, help="Number of lines to show from the end of the logs.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.option("--details", is_flag=True, help="Show extra details provided to logs.")
@click.argument("container")
@pass_ctx
def logs(ctx, container, follow, since, until, tail, timestamps, details):
    """Fetch the logs of a container."""
    now = time.time()
    query = {"stdout": 1, "stderr": 1, "follow": int(follow), "timestamps": int(timestamps),
             "details": int(details), "tail": tail,
             "since": parse_timestamp(since, now) if since else None,
             "until": parse_timestamp(until, now) if until else None}
    client = ctx.client
    tty = client.get(api_path("/containers/{}/json", container))["Config"]["Tty"]
    response = client.stream("GET", api_path("/containers/{}/logs", container), query)
    if tty:
        for chunk in response.chunks():
            _write_all(1, chunk)
    else:
        _demux(response.chunks())


def _demux(chunks):
    """Docker's multiplexed frames to our stdout (stream 1) and stderr (stream 2)."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        start = 0
        while len(buffer) - start >= 8:
            length = int.from_bytes(buffer[start + 4:start + 8], "big")
            if len(buffer) - start - 8 < length:
                break
            _write_all(2 if buffer[start] == 2 else 1, buffer[start + 8:start + 8 + length])
            start += 8 + length
        buffer = buffer[start:]


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
