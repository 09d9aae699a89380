"""The `logs` command."""

import os
import re
import time

import click

from minictr.cli.decorators import pass_ctx
from minictr.errors import InvalidArgument


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
             "since": docker_timestamp(since, now) if since else None,
             "until": docker_timestamp(until, now) if until else None}
    client = ctx.client
    tty = client.get(f"/containers/{container}/json")["Config"]["Tty"]
    response = client.stream("GET", f"/containers/{container}/logs", query)
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


# ---- --since/--until as the docker CLI sends them (api/types/time GetTimestamp) -----------------

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_DURATION = re.compile(r"([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)")
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DATE_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(?:\.(\d+))?)?)?)?([zZ]|[+-]\d\d:\d\d)?")
_UNIX = re.compile(r"\d+(?:\.\d+)?")


def docker_timestamp(value, now):
    """The API's `seconds[.nanoseconds]` for a --since/--until value: a Go duration before now
    (10m, 1h30m), an RFC 3339 date or time (local time without a zone), or unix seconds."""
    duration = _go_duration(value) if value != "0" else None
    if duration is not None:
        return str(int((now - duration) // 1))
    m = _DATE_TIME.fullmatch(value)
    if m:
        year, month, day, hour, minute, second, fraction, zone = m.groups()
        fields = (int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
        if zone is None:
            seconds = int(time.mktime(fields + (0, 0, -1)))  # the client's local time, as Docker
        else:
            import calendar

            seconds = calendar.timegm(fields)
            if zone not in "zZ":
                sign = 1 if zone[0] == "+" else -1
                seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
        return f"{seconds}.{(fraction or '').ljust(9, '0')[:9]}"
    if "-" in value or not _UNIX.fullmatch(value):
        raise InvalidArgument(f'failed to parse value as time or duration: "{value}"')
    return value


def _go_duration(value):
    m = _DURATION.fullmatch(value)
    if not m:
        return None
    seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(m.group(2)))
    return -seconds if m.group(1) == "-" else seconds
