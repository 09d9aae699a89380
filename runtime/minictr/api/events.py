"""/events: the daemon's events as newline-delimited JSON, past ones first (since/until), then live."""

import asyncio
import time

from minictr.api.router import StreamResponse, ndjson, route
from minictr.errors import InvalidArgument

_POLL = 1.0  # how often a quiet stream checks whether it was dropped


@route("GET", "/events")
async def events(req):
    from minictr.events import EventFilter
    from minictr.spec.filters import parse
    from minictr.spec.times import parse_unix_ns

    since = parse_unix_ns(req.arg("since"), "since")
    until = parse_unix_ns(req.arg("until"), "until")
    if since is not None and until is not None and until < since:
        raise InvalidArgument(f"`since` time ({req.arg('since')}) cannot be after `until` time ({req.arg('until')})")
    matches = EventFilter(parse(req.arg("filters")))
    log = req.services.events
    past, queue = log.subscribe(since, until, matches)

    async def stream():
        try:
            for event in past:
                yield ndjson(event)
            if until is not None and until <= time.time_ns():
                return
            while log.subscribed(queue):
                timeout = _POLL if until is None else min(_POLL, max(0.0, (until - time.time_ns()) / 1e9))
                try:
                    event = await asyncio.wait_for(queue.get(), timeout)
                except asyncio.TimeoutError:
                    if until is not None and time.time_ns() >= until:
                        return
                    continue
                if matches(event) and (until is None or event["timeNano"] <= until):
                    yield ndjson(event)
        finally:
            log.unsubscribe(queue)

    return StreamResponse(stream())
