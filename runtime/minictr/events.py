"""The daemon's event log: what happened to containers, images, volumes and networks, for GET /events.

Services call `emit`; a subscriber gets the past events it asked for (from a bounded
ring, as Docker keeps its last 256) and then the live ones, filtered as Docker
filters them (daemon/events/filter.go)."""

import asyncio
import collections
import time

from minictr.errors import InvalidArgument

_KEPT = 1024
_QUEUE_LIMIT = 4096  # a subscriber this far behind is dropped rather than let it grow without end

ACCEPTED_FILTERS = frozenset({"config", "container", "daemon", "event", "image", "label", "network", "node",
                              "plugin", "scope", "secret", "service", "type", "volume"})
TYPES = frozenset({"builder", "config", "container", "daemon", "image", "network", "node", "plugin",
                   "secret", "service", "volume"})


class Events:
    def __init__(self):
        self._past = collections.deque(maxlen=_KEPT)
        self._queues = set()

    def emit(self, type_, action, actor_id, attributes=None):
        """Record one event; call from the event loop's thread."""
        now = time.time_ns()
        # Keys in order, as Go writes a map.
        attributes = {k: str(v) for k, v in sorted((attributes or {}).items())}
        event = {}
        if type_ in ("container", "image"):
            # The fields of the API before 1.22, which the docker CLI still reads.
            event.update(status=action, id=actor_id)
            if "image" in attributes and type_ == "container":
                event["from"] = attributes["image"]
        event.update({"Type": type_, "Action": action, "Actor": {"ID": actor_id, "Attributes": attributes},
                      "scope": "local", "time": now // 1_000_000_000, "timeNano": now})
        self._past.append(event)
        for queue in list(self._queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._queues.discard(queue)

    def subscribe(self, since_ns=None, until_ns=None, matches=None):
        """(past events, a queue of the ones to come); call `unsubscribe(queue)` when done.

        Past events are given only when `since_ns` or `until_ns` is set: those in
        [since_ns, until_ns] that `matches` (a predicate on the event) accepts."""
        queue = asyncio.Queue(_QUEUE_LIMIT)
        self._queues.add(queue)
        past = []
        if since_ns is not None or until_ns is not None:
            past = [e for e in self._past
                    if e["timeNano"] >= (since_ns or 0) and (until_ns is None or e["timeNano"] <= until_ns)
                    and (matches is None or matches(e))]
        return past, queue

    def unsubscribe(self, queue):
        self._queues.discard(queue)

    def subscribed(self, queue):
        """False once the queue was dropped for falling too far behind."""
        return queue in self._queues


class EventFilter:
    """Docker's event filters: {key: [values]}; values of one key are alternatives, keys must all match."""

    def __init__(self, filters):
        for key in filters:
            if key not in ACCEPTED_FILTERS:
                raise InvalidArgument(f"invalid filter '{key}'")
        for value in filters.get("type", []):
            if value not in TYPES:
                raise InvalidArgument(f"invalid filter 'type={value}'")
        self.filters = filters

    def _exact(self, key, value):
        values = self.filters.get(key)
        return not values or value in values

    def _fuzzy(self, key, value):
        values = self.filters.get(key)
        return not values or any(value.startswith(v) for v in values)

    def _by_name(self, key, event):
        values = self.filters.get(key)
        if not values:
            return True
        return self._fuzzy(key, event["Actor"]["ID"]) or self._fuzzy(key, event["Actor"]["Attributes"].get("name", ""))

    def __call__(self, event):
        attributes = event["Actor"]["Attributes"]
        return (self._action(event["Action"]) and self._exact("type", event["Type"])
                and self._exact("scope", event.get("scope", "local"))
                and self._by_name("container", event) and self._by_name("volume", event)
                and self._by_name("network", event) and self._by_name("plugin", event)
                and self._image(event) and self._labels(attributes))

    def _action(self, action):
        values = self.filters.get("event")
        if not values:
            return True
        # exec_create: ls and health_status: healthy carry details after the colon.
        if action in values or action.split(":", 1)[0] in values:
            return True
        return False

    def _image(self, event):
        values = self.filters.get("image")
        if not values:
            return True
        name = event["Actor"]["Attributes"].get("name" if event["Type"] == "image" else "image", "")
        candidates = {event["Actor"]["ID"], name, _strip_tag(event["Actor"]["ID"]), _strip_tag(name)}
        return bool(candidates & set(values))

    def _labels(self, attributes):
        for item in self.filters.get("label", []):
            key, sep, value = item.partition("=")
            if key not in attributes or (sep and attributes[key] != value):
                return False
        return True


def _strip_tag(reference):
    name = reference.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name
