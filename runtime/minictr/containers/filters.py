"""`docker ps --filter`: the `filters` query of GET /containers/json matched as Docker's daemon
does it (daemon/list.go); the query's syntax is spec/filters.py's."""

from minictr.containers.config import health_status
from minictr.errors import InvalidArgument
from minictr.spec.filters import labels_match, regex_match

ACCEPTED = frozenset({"ancestor", "before", "exited", "health", "id", "label", "name", "status", "since",
                      "volume", "network", "is-task", "publish", "expose"})
STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
_HEALTH = ("starting", "healthy", "unhealthy", "none")


class ContainerFilter:
    """What `filters`, `all` and `limit` of GET /containers/json select.

    `lookup(ref)` finds a container (for before/since; NotFound propagates, as in Docker);
    `ancestor_ids(ref)` gives the image ids an `ancestor` value stands for (the image and its children)."""

    def __init__(self, filters, all=False, limit=-1, lookup=None, ancestor_ids=None):
        for key in filters:
            if key not in ACCEPTED:
                raise InvalidArgument(f"invalid filter '{key}'")
        for status in filters.get("status", []):
            if status not in STATES:
                raise InvalidArgument(f"invalid filter 'status={status}'")
        for health in filters.get("health", []):
            if health not in _HEALTH:
                raise InvalidArgument(f"invalid filter 'health={health}'")
        self.exit_codes = set()
        for code in filters.get("exited", []):
            try:
                self.exit_codes.add(int(code))
            except ValueError:
                raise InvalidArgument(f'strconv.Atoi: parsing "{code}": invalid syntax') from None
        for value in filters.get("is-task", []):
            if value not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'is-task={value}'")
        self.filters = filters
        # A status or exited filter looks at stopped containers too, as `-a` does.
        self.all = all or bool(filters.get("status")) or bool(filters.get("exited"))
        self.limit = limit
        self.before = [lookup(ref).id for ref in filters.get("before", [])][-1:]
        self.since = [lookup(ref).id for ref in filters.get("since", [])][-1:]
        self.images = None
        if "ancestor" in filters:
            self.images = set()
            for ref in filters["ancestor"]:
                self.images |= ancestor_ids(ref)

    def select(self, containers, state_of):
        """The containers (newest first) that pass, as a list; `state_of(c)` is Docker's state string."""
        before = self.before[0] if self.before else None
        since = self.since[0] if self.since else None
        chosen = []
        for container in containers:
            if before is not None:
                if container.id == before:
                    before = None
                continue
            if since is not None and container.id == since:
                break
            if 0 < self.limit == len(chosen):
                break
            if self._includes(container, state_of(container)):
                chosen.append(container)
        return chosen

    def _includes(self, container, state):
        f = self.filters
        if state not in ("running", "paused", "restarting") and not self.all and self.limit <= 0:
            return False
        if not regex_match(f.get("name"), container.name) and not regex_match(f.get("name"), "/" + container.name):
            return False
        if not regex_match(f.get("id"), container.id):
            return False
        if not regex_match(f.get("status"), state):
            return False
        if self.exit_codes and not (state not in ("running", "paused", "restarting", "created")
                                    and container.exit_code in self.exit_codes):
            return False
        if not labels_match(f.get("label"), container.config.get("Labels") or {}):
            return False
        if self.images is not None and container.image_id not in self.images:
            return False
        if f.get("health") and health_status(container) not in f["health"]:
            return False
        if any(v in ("true", "1") for v in f.get("is-task", [])):
            return False
        mode = container.host_config.get("NetworkMode") or "default"
        if f.get("network") and not set(f["network"]) & ({"bridge"} if mode == "default" else {mode}):
            return False
        # No volumes or published ports yet: filters on them match nothing.
        if f.get("volume") or f.get("publish") or f.get("expose"):
            return False
        return True
