"""The daemon's event log: what happened to containers, images, volumes and networks, for GET /events.

Services call `emit`; subscribers get past events from a bounded ring and then live ones."""

import asyncio
import collections
import time

_KEPT = 1024


class Events:
    def __init__(self):
        self._past = collections.deque(maxlen=_KEPT)
        self._queues = set()

    def emit(self, type_, action, actor_id, attributes=None):
        """Record one event; call from the event loop's thread."""
        now = time.time_ns()
        event = {"Type": type_, "Action": action, "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
                 "scope": "local", "time": now // 1_000_000_000, "timeNano": now}
        if type_ == "container":
            event.update(status=action, id=actor_id, **({"from": attributes["image"]} if attributes and "image" in attributes else {}))
        self._past.append(event)
        for queue in self._queues:
            queue.put_nowait(event)

    def subscribe(self):
        """(past events, a queue of the ones to come); call `unsubscribe(queue)` when done."""
        queue = asyncio.Queue()
        self._queues.add(queue)
        return list(self._past), queue

    def unsubscribe(self, queue):
        self._queues.discard(queue)
