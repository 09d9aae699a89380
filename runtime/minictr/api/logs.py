"""GET /containers/{id}/logs: the container's json-file log, as Docker serves it."""

from minictr.api.router import StreamResponse, route, stream_content_type
from minictr.containers.logs import LogsQuery, open_logs
from minictr.errors import InvalidArgument


@route("GET", "/containers/{id}/logs")
async def container_logs(req):
    query = LogsQuery(follow=req.flag("follow"), stdout=req.flag("stdout"), stderr=req.flag("stderr"),
                      since_ns=_unix_ns(req, "since"), until_ns=_unix_ns(req, "until"),
                      timestamps=req.flag("timestamps"), details=req.flag("details"), tail=_tail(req.arg("tail")))
    tty, chunks = open_logs(req.services.containers, req.params["id"], query)
    return StreamResponse(chunks, stream_content_type(req, tty))


def _unix_ns(req, name):
    """Docker's `seconds[.nanoseconds]` query times; 0 when absent."""
    value = req.arg(name) or "0"
    seconds, _, fraction = value.partition(".")
    if not seconds.lstrip("-").isdigit() or (fraction and not fraction.isdigit()):
        raise InvalidArgument(f"invalid value for {name}: {value!r}: expected unix seconds[.nanoseconds]")
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9] or 0)


def _tail(value):
    """Docker's `tail`: a number of lines; `all`, anything else or a negative number means all."""
    try:
        return max(int(value), -1)
    except (TypeError, ValueError):
        return -1
