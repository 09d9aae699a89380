"""The container record and its store: the database rows, and lookups by id, name or prefix.

The database row is the truth about a container; the record keeps beside it only what
lives as long as the daemon does (locks, waiters, attach clients, the pidfd of its monitor).
The store knows nothing of images, volumes or networks, so that those services can be
handed the store (names, ids, records, directories) rather than the container service.
"""

import asyncio
import json
import logging
import os
import shutil
from dataclasses import dataclass, field

from minictr.containers.state import State, check_transition
from minictr.db import is_disk_full
from minictr.errors import Conflict, InvalidArgument, NotFound, NoSpace
from minictr.tasks import spawn

log = logging.getLogger("minictr.containers")

# How often changes a full disk refused are tried again.
RETRY_UNSAVED_SECONDS = 2.0
_DELETED = "deleted"  # in ContainerStore._unsaved: the row is to be deleted

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    image_ref TEXT NOT NULL,
    config TEXT NOT NULL,
    host_config TEXT NOT NULL,
    created TEXT NOT NULL,
    state TEXT NOT NULL,
    pid INTEGER NOT NULL DEFAULT 0,
    monitor_pid INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL DEFAULT '0001-01-01T00:00:00Z',
    finished_at TEXT NOT NULL DEFAULT '0001-01-01T00:00:00Z',
    error TEXT NOT NULL DEFAULT '',
    restart_count INTEGER NOT NULL DEFAULT 0,
    manually_stopped INTEGER NOT NULL DEFAULT 0,
    mounts TEXT NOT NULL DEFAULT '[]'
)
"""

# Columns added after the first release: (name, declaration), added to an older table at load.
_ADDED_COLUMNS = [("restart_count", "INTEGER NOT NULL DEFAULT 0"), ("manually_stopped", "INTEGER NOT NULL DEFAULT 0"),
                  ("mounts", "TEXT NOT NULL DEFAULT '[]'"), ("oom_killed", "INTEGER NOT NULL DEFAULT 0"),
                  ("health", "TEXT NOT NULL DEFAULT 'null'")]
_JSON_COLUMNS = {"config", "host_config", "mounts", "health"}

_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass
class Container:
    id: str
    name: str
    image_id: str
    image_ref: str
    config: dict
    host_config: dict
    created: str
    state: State
    pid: int = 0
    monitor_pid: int = 0
    exit_code: int = 0
    started_at: str = _ZERO_TIME
    finished_at: str = _ZERO_TIME
    error: str = ""
    restart_count: int = 0
    manually_stopped: bool = False
    mounts: list = field(default_factory=list)  # resolved mounts (containers/mounts.py)
    oom_killed: bool = False
    health: dict = None  # State.Health (containers/health.py), None until a healthcheck first ran
    # What lives only as long as this daemon does:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition, repr=False)
    pending_attaches: list = field(default_factory=list, repr=False)
    cgroups: list = field(default_factory=list, repr=False)
    cgroup_cleanup: asyncio.Task = field(default=None, repr=False)
    pidfd: int = -1
    removed: bool = False
    restart_task: asyncio.Task = field(default=None, repr=False)
    backoff: float = 0.0
    exits: int = 0  # exits seen by this daemon (`wait?condition=next-exit`)
    start_failed: bool = False  # its command could not be run: the restart policy leaves it

    @classmethod
    def from_row(cls, row):
        return cls(id=row["id"], name=row["name"], image_id=row["image_id"], image_ref=row["image_ref"],
                   config=json.loads(row["config"]), host_config=json.loads(row["host_config"]),
                   created=row["created"], state=State(row["state"]), pid=row["pid"],
                   monitor_pid=row["monitor_pid"], exit_code=row["exit_code"],
                   started_at=row["started_at"], finished_at=row["finished_at"], error=row["error"],
                   restart_count=row["restart_count"], manually_stopped=bool(row["manually_stopped"]),
                   mounts=json.loads(row["mounts"]), oom_killed=bool(row["oom_killed"]),
                   health=json.loads(row["health"]))


class ContainerStore:
    """Every container of this daemon: its row, its record in memory, its directories."""

    def __init__(self, db, data_root, run_dir, events):
        self.db = db
        self.events = events
        self.data_dir = os.path.join(data_root, "containers")
        # A removed container's directory is renamed here and deleted in the background: a removal
        # (and `run --rm`) does not wait for the deletion of its files.
        self.trash_dir = os.path.join(data_root, "trash")
        # Short on purpose: a Unix socket path (the attach socket below) must fit in 108 bytes.
        self.run_dir = os.path.join(run_dir, "c")
        if len(self.run_dir) + len("/0123456789abcdef/attach.sock") >= 108:
            raise InvalidArgument(f"the runtime directory {run_dir} is too long for Unix socket paths; "
                                  "choose a shorter socket path")
        self._containers = {}
        # Changes a full disk refused, by container id: columns to write, or _DELETED; kept in
        # the runtime directory (a tmpfs, as a rule) too, so that a daemon restarted before there
        # is space again still knows them.
        self._unsaved = {}
        self._unsaved_path = os.path.join(self.run_dir, "unsaved.json")
        self._retrying = None
        os.makedirs(self.data_dir, 0o700, exist_ok=True)
        os.makedirs(self.run_dir, 0o700, exist_ok=True)

    # ---- reading -----------------------------------------------------------------------------

    def load(self):
        """Read every row into a record (adding the columns an older table lacks); returns the records."""
        self._add_missing_columns()
        shutil.rmtree(self.trash_dir, ignore_errors=True)  # what a stopped daemon had yet to delete
        for row in self.db.query("SELECT * FROM containers"):
            container = Container.from_row(row)
            self._containers[container.id] = container
        self._load_unsaved()
        return list(self._containers.values())

    def _load_unsaved(self):
        """What the last daemon could not write (a full disk): applied to the records, and to
        the rows if there is space now."""
        try:
            with open(self._unsaved_path) as f:
                unsaved = json.load(f)
        except (OSError, ValueError):
            return
        for container_id, change in unsaved.items():
            container = self._containers.get(container_id)
            if container is None:
                continue
            if change == _DELETED:
                del self._containers[container_id]
                self._save(container_id, _DELETED)
            else:
                self.write(container, **change)
        self._remember_unsaved()

    def _add_missing_columns(self):
        present = {row["name"] for row in self.db.query("PRAGMA table_info(containers)")}
        with self.db.transaction() as cur:
            for name, declaration in _ADDED_COLUMNS:
                if name not in present:
                    cur.execute(f"ALTER TABLE containers ADD COLUMN {name} {declaration}")

    def get(self, ref):
        """A container by full id, name, or unique id prefix, as Docker resolves them."""
        if ref in self._containers:
            return self._containers[ref]
        name = ref.lstrip("/")
        for container in self._containers.values():
            if container.name == name:
                return container
        matches = [c for c in self._containers.values() if c.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def all(self):
        """Every record, in no particular order."""
        return list(self._containers.values())

    def ids(self):
        return list(self._containers)

    def running_ids(self):
        return {c.id for c in self._containers.values() if c.state.alive}

    def name_of(self, container_id):
        container = self._containers.get(container_id)
        return container.name if container else ""

    def names(self):
        return {c.name for c in self._containers.values()}

    def any_alive(self):
        """Whether any container still runs or waits to restart (its namespaces must stay)."""
        return any(c.state.alive or c.state is State.RESTARTING for c in self._containers.values())

    def uses_image(self, image_id):
        """The id of a container made from the image (truthy), or None: rmi names it as Docker does."""
        return next((c.id for c in self._containers.values() if c.image_id == image_id), None)

    def volume_users(self, name):
        """The ids of the containers that mount volume `name` (the volume service asks)."""
        return [c.id for c in self._containers.values()
                if any(m["type"] == "volume" and m["name"] == name for m in c.mounts)]

    def check_name_free(self, name):
        for other in self._containers.values():
            if other.name == name:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                               f'"{other.id}". You have to remove (or rename) that container to be able to reuse that name.')

    def paths(self, container):
        """Where a container's files are: its directory (`top`), its runtime directory and the
        monitor's files in it, its json log."""
        top = os.path.join(self.data_dir, container.id)
        run = os.path.join(self.run_dir, container.id[:16])
        return {"top": top, "run": run, "attach": os.path.join(run, "attach.sock"),
                "exit": os.path.join(run, "exit"), "config": os.path.join(run, "monitor.conf"),
                "log": os.path.join(top, f"{container.id}-json.log")}

    # ---- writing -----------------------------------------------------------------------------

    def insert(self, container):
        """Write a new container's row (it joins the records with `add`)."""
        try:
            with self.db.transaction() as cur:
                cur.execute(
                    "INSERT INTO containers (id, name, image_id, image_ref, config, host_config, created, state,"
                    " mounts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (container.id, container.name, container.image_id, container.image_ref,
                     json.dumps(container.config), json.dumps(container.host_config), container.created,
                     container.state.value, json.dumps(container.mounts)))
        except Exception as e:
            if is_disk_full(e):
                raise NoSpace(self.db.path) from None  # a new container may wait for space; it is refused
            raise

    def add(self, container):
        self._containers[container.id] = container

    def delete(self, container):
        """Drop the container's row and record."""
        self._containers.pop(container.id, None)
        self._save(container.id, _DELETED)

    def write(self, container, **columns):
        """Set columns of the row and the record's attributes of the same names.

        On a full disk the record changes all the same and the row follows once there is space
        again: an exit, a kill or a removal is never refused because it cannot be recorded yet."""
        self._save(container.id, columns)
        for name, value in columns.items():
            setattr(container, name, State(value) if name == "state" else value)

    def _save(self, container_id, change):
        """Apply CHANGE (columns, or _DELETED) to the row, after what is still unsaved of it."""
        unsaved = self._unsaved.pop(container_id, {})
        if unsaved is _DELETED and change is not _DELETED:
            self._unsaved[container_id] = _DELETED  # a late change to a removed container's row
            return
        if change is not _DELETED:
            change = {**unsaved, **change}
        try:
            self._commit(container_id, change)
        except Exception as e:
            if not is_disk_full(e):
                if unsaved:
                    self._unsaved[container_id] = unsaved
                raise
            # The reserve gives this change (and likely the next few) room now; without one, later.
            if not (self.db.release_reserve() and self._committed(container_id, change)):
                log.warning("%s: recorded in memory only until there is space again", NoSpace(self.db.path))
                self._unsaved[container_id] = change
                self._remember_unsaved()
                self._retry_later()

    def _commit(self, container_id, change):
        with self.db.transaction() as cur:
            if change is _DELETED:
                cur.execute("DELETE FROM containers WHERE id = ?", (container_id,))
                return
            assignments = ", ".join(f"{name} = ?" for name in change)
            values = [json.dumps(v) if name in _JSON_COLUMNS else v for name, v in change.items()]
            cur.execute(f"UPDATE containers SET {assignments} WHERE id = ?", (*values, container_id))

    def _committed(self, container_id, change):
        try:
            self._commit(container_id, change)
            return True
        except Exception as e:
            if is_disk_full(e):
                return False
            raise

    def _retry_later(self):
        if self._retrying is None or self._retrying.done():
            self._retrying = spawn(self._save_unsaved())

    async def _save_unsaved(self):
        while self._unsaved:
            await asyncio.sleep(RETRY_UNSAVED_SECONDS)
            for container_id, change in list(self._unsaved.items()):
                if self._unsaved.get(container_id) is change and self._committed(container_id, change):
                    del self._unsaved[container_id]
            self._remember_unsaved()
        self.db.make_reserve()

    def _remember_unsaved(self):
        try:
            if not self._unsaved:
                os.unlink(self._unsaved_path)
                return
            with open(self._unsaved_path + ".tmp", "w") as f:
                json.dump(self._unsaved, f)
            os.rename(self._unsaved_path + ".tmp", self._unsaved_path)
        except FileNotFoundError:
            pass
        except OSError as e:  # the runtime directory full as well: memory is all there is
            log.warning("cannot keep the unsaved container changes in %s: %s", self._unsaved_path, e.strerror)

    def set_state(self, container, state, **columns):
        """Move the container to `state` (the one place transitions are checked), with `columns`
        written in the same change; wakes its waiters."""
        if state is not container.state:
            check_transition(container.name, container.state, state)
        self.write(container, state=state.value, **columns)
        spawn(self.notify(container))

    async def notify(self, container):
        async with container.changed:
            container.changed.notify_all()

    async def until(self, container, predicate):
        async with container.changed:
            await container.changed.wait_for(predicate)

    def emit(self, container, action, **attributes):
        """An event about this container (GET /events), with Docker's attributes."""
        labels = container.config.get("Labels") or {}
        self.events.emit("container", action, container.id,
                         {**labels, "image": container.image_ref, "name": container.name, **attributes})
