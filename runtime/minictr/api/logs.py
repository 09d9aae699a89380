"""GET /containers/{id}/logs: the container's json-file log, as Docker serves it."""

from minictr.api.router import StreamResponse, route, stream_content_type
from minictr.containers.logs import LogsQuery, open_logs
from minictr.spec.times import parse_unix_ns


@route("GET", "/containers/{id}/logs")
async def container_logs(req):
    query = LogsQuery(follow=req.flag("follow"), stdout=req.flag("stdout"), stderr=req.flag("stderr"),
                      since_ns=_unix_ns(req, "since"), until_ns=_unix_ns(req, "until"),
                      timestamps=req.flag("timestamps"), details=req.flag("details"), tail=_tail(req.arg("tail")))
    tty, chunks = open_logs(req.services.containers, req.params["id"], query)
    return StreamResponse(chunks, stream_content_type(req, tty))


def _unix_ns(req, name):
    """Docker's `seconds[.nanoseconds]` query times; 0 when absent."""
    return parse_unix_ns(req.arg(name), name) or 0


def _tail(value):
    """Docker's `tail`: a number of lines; `all`, anything else or a negative number means all."""
    try:
        return max(int(value), -1)
    except (TypeError, ValueError):
        return -1
