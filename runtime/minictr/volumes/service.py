"""The volume service: Docker's local-driver volumes, their rows in SQLite and their dirs on disk.

On disk a volume is `<data root>/volumes/<name>/_data`, Docker's layout. Creating one makes the
dir first and then commits its row; removing one deletes the row first and then the dir. So a crash
can leave only a dir without a row, which `load` removes at the next start (and a row whose dir
went missing gets an empty dir again).
"""

import asyncio
import json
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field

from minictr.errors import Conflict, InvalidArgument, NotFound
from minictr.spec.names import check_volume_name

SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    driver TEXT NOT NULL DEFAULT 'local',
    labels TEXT NOT NULL DEFAULT '{}',
    options TEXT NOT NULL DEFAULT '{}',
    anonymous INTEGER NOT NULL DEFAULT 0,
    seeded INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
)
"""

DRIVER = "local"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"  # Docker marks anonymous volumes so, and prunes by it
_OPTION_KEYS = ("type", "device", "o", "size")  # what Docker's local driver accepts
_TMPFS_OPTIONS = ("size", "mode", "nr_inodes", "uid", "gid")
_TRASH_PREFIX = ".removing-"


@dataclass
class Volume:
    name: str
    mountpoint: str
    driver: str = DRIVER
    labels: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    anonymous: bool = False
    seeded: bool = False
    created: str = ""
    created_now: bool = False

    def to_api(self):
        """Docker's Volume object (GET /volumes/{name}, the items of GET /volumes)."""
        return {"CreatedAt": self.created, "Driver": self.driver, "Labels": self.labels or None,
                "Mountpoint": self.mountpoint, "Name": self.name, "Options": self.options or None,
                "Scope": "local"}


class VolumeService:
    def __init__(self, db, data_root, events, users=lambda name: []):
        """`users(name) -> [container ids]`: the containers that reference a volume, running or
        not. `remove` refuses and `prune` skips a volume that has any."""
        self.db = db
        self.root = os.path.join(str(data_root), "volumes")
        self.events = events
        self._users = users
        self._lock = threading.RLock()  # one create or remove at a time: a name is checked then taken
        self._loop = None
        os.makedirs(self.root, 0o700, exist_ok=True)

    def load(self):
        """Reconcile disk with the table after a start: a dir without a row (a crash mid-create
        or mid-remove) is removed, a row without its dir gets an empty one."""
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        names = {row["name"] for row in self.db.query("SELECT name FROM volumes")}
        for entry in os.listdir(self.root):
            if entry not in names:
                shutil.rmtree(os.path.join(self.root, entry), ignore_errors=True)
        for name in names:
            if not os.path.isdir(self._data_dir(name)):
                self._make_dirs(name)

    # ---- the interface of the container side ------------------------------------------------

    def ensure(self, name, anonymous=False):
        """Get or create a volume for a container's mount: `name` None makes a random anonymous one."""
        if name is None:
            return self.create(None, anonymous=True)
        return self.create(name, anonymous=anonymous)

    def get(self, name):
        """The volume called `name`; NotFound("get NAME: no such volume", Docker's words) if there is none."""
        row = self.db.query_one("SELECT * FROM volumes WHERE name = ?", (name,))
        if row is None:
            raise NotFound(f"get {name}: no such volume")
        return self._from_row(row)

    def mount_source(self, volume):
        """(kind, source, options) to mount for a volume (a Volume or a name): a bind of its
        `_data`, a fresh tmpfs (type=tmpfs), or a bind of its device (type=none,o=bind)."""
        if isinstance(volume, str):
            volume = self.get(volume)
        kind = volume.options.get("type")
        if kind == "tmpfs":
            return ("tmpfs", "", _tmpfs_options(volume.options))
        if kind == "none":
            return ("bind", volume.options["device"], "")
        return ("bind", volume.mountpoint, "")

    def needs_seed(self, name):
        """Whether a volume still waits for its first copy of the image's files. Only plain
        local volumes are seeded (Docker copies into neither a tmpfs nor a bound device)."""
        volume = self.get(name)
        return not volume.seeded and not volume.options.get("type")

    def mark_seeded(self, name):
        with self.db.transaction() as cur:
            cur.execute("UPDATE volumes SET seeded = 1 WHERE name = ?", (name,))

    # ---- the API's operations -----------------------------------------------------------------

    def create(self, name=None, driver=DRIVER, labels=None, options=None, anonymous=False):
        """POST /volumes/create: a new volume, or the existing one of that name (as Docker does).
        No name: a random 64-hex one."""
        driver = driver or DRIVER
        if driver != DRIVER:
            raise NotFound(f"error looking up volume plugin {driver}: plugin \"{driver}\" not found")
        labels, options = dict(labels or {}), {k: str(v) for k, v in (options or {}).items()}
        if name is None or name == "":
            name = secrets.token_hex(32)
        check_volume_name(name)
        _check_options(name, options)
        # Docker knows an anonymous volume by this label alone (an API client may set it).
        anonymous = anonymous or ANONYMOUS_LABEL in labels
        if anonymous:
            labels.setdefault(ANONYMOUS_LABEL, "")
        with self._lock:
            row = self.db.query_one("SELECT * FROM volumes WHERE name = ?", (name,))
            if row is not None:
                return self._from_row(row)
            self._make_dirs(name)
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            try:
                with self.db.transaction() as cur:
                    cur.execute("INSERT INTO volumes (name, driver, labels, options, anonymous, created) "
                                "VALUES (?, ?, ?, ?, ?, ?)",
                                (name, driver, json.dumps(labels), json.dumps(options), int(anonymous), created))
            except BaseException:
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
                raise
        self._emit("create", name)
        volume = self.get(name)
        volume.created_now = True
        return volume

    def list(self, filters=None):
        """GET /volumes: every volume that passes Docker's filters (dangling, name, label, driver)."""
        filters = filters or {}
        unknown = set(filters) - {"dangling", "name", "label", "label!", "driver"}
        if unknown:
            raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        dangling = _bool_filter(filters, "dangling")
        volumes = [self._from_row(row) for row in self.db.query("SELECT * FROM volumes ORDER BY name")]
        return [v for v in volumes if self._matches(v, filters, dangling)]

    def _matches(self, volume, filters, dangling):
        from minictr.spec.filters import labels_match, regex_match

        if dangling is not None and bool(self._users(volume.name)) == dangling:
            return False
        if filters.get("driver") and volume.driver not in filters["driver"]:
            return False
        if filters.get("name") and not regex_match(filters["name"], volume.name):
            return False
        if not labels_match(filters.get("label"), volume.labels):
            return False
        if filters.get("label!") and any(labels_match([item], volume.labels) for item in filters["label!"]):
            return False
        return True

    def remove(self, name, force=False):
        """DELETE /volumes/{name}: refused while any container uses the volume, even with
        `force` (as Docker does); `force` only makes a missing volume no error."""
        with self._lock:
            try:
                volume = self.get(name)
            except NotFound:
                if force:
                    return 0
                raise
            users = self._users(volume.name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            size = self._size(volume)
            with self.db.transaction() as cur:
                cur.execute("DELETE FROM volumes WHERE name = ?", (volume.name,))
            self._remove_dirs(volume.name)
        self._emit("destroy", volume.name)
        return size

    def prune(self, filters=None):
        """POST /volumes/prune: unused volumes — only anonymous ones unless `all=true` —
        that pass the label filters. Returns (names removed, bytes reclaimed)."""
        filters = dict(filters or {})
        unknown = set(filters) - {"label", "label!", "all"}
        if unknown:
            raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        prune_all = _bool_filter(filters, "all") or False
        deleted, reclaimed = [], 0
        for volume in self.list({k: v for k, v in filters.items() if k != "all"}):
            if not prune_all and not volume.anonymous:
                continue
            try:
                reclaimed += self.remove(volume.name)
            except (Conflict, NotFound):
                continue  # in use, or gone meanwhile
            deleted.append(volume.name)
        return deleted, reclaimed

    # ---- helpers ------------------------------------------------------------------------------

    def _data_dir(self, name):
        return os.path.join(self.root, name, "_data")

    def _make_dirs(self, name):
        # 0755 whatever the umask, owned by the daemon's root (in rootless mode: the user).
        for path in (os.path.join(self.root, name), self._data_dir(name)):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o755)

    def _remove_dirs(self, name):
        # Out of the way first, in one rename: a crash mid-delete leaves a dir no row names,
        # which load() removes. A bound device is never inside it: only our dir goes.
        path = os.path.join(self.root, name)
        trash = os.path.join(self.root, f"{_TRASH_PREFIX}{name}-{secrets.token_hex(4)}")
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def _size(self, volume):
        if volume.options.get("type"):
            return 0  # a tmpfs holds nothing once unmounted; a bound device is not ours to count
        total = 0
        for top, dirs, files in os.walk(self._data_dir(volume.name)):
            for name in files:
                try:
                    total += os.lstat(os.path.join(top, name)).st_size
                except OSError:
                    pass
        return total

    def _from_row(self, row):
        return Volume(name=row["name"], mountpoint=self._data_dir(row["name"]), driver=row["driver"],
                      labels=json.loads(row["labels"]), options=json.loads(row["options"]),
                      anonymous=bool(row["anonymous"]), seeded=bool(row["seeded"]), created=row["created"])

    def _emit(self, action, name):
        """Events go out from the event loop's thread; remove and prune may run in another."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._loop is not None and self._loop.is_running():
                self._loop.call_soon_threadsafe(self.events.emit, "volume", action, name, {"driver": DRIVER})
                return
        self.events.emit("volume", action, name, {"driver": DRIVER})




def _check_options(name, options):
    """Docker's local driver options; minictr mounts type=tmpfs and type=none,o=bind,device=/dir."""
    for key in options:
        if key not in _OPTION_KEYS:
            raise InvalidArgument(f'create {name}: invalid option key: "{key}"')
    if not options:
        return
    kind = options.get("type")
    if kind == "tmpfs":
        _tmpfs_options(options)
    elif kind == "none":
        flags = [o.strip() for o in options.get("o", "").split(",") if o.strip()]
        device = options.get("device", "")
        if "bind" not in flags and "rbind" not in flags:
            raise InvalidArgument(f"create {name}: type=none needs o=bind (a bind of device=/absolute/dir)")
        if not device.startswith("/"):
            raise InvalidArgument(f"create {name}: device must be an absolute path: {device!r}")
        if not os.path.isdir(device):
            raise InvalidArgument(f"create {name}: device {device}: no such directory")
    elif kind is None:
        raise InvalidArgument(f"create {name}: missing required option \"type\"")
    else:
        raise InvalidArgument(f'create {name}: volume type "{kind}" is not supported by minictr\'s local '
                              'driver (supported: type=tmpfs, type=none with o=bind)')


def _tmpfs_options(options):
    """The mount data of a tmpfs volume: the `o=` list (size=…, mode=…) and `size=`, checked."""
    parts = [o.strip() for o in options.get("o", "").split(",") if o.strip()]
    if options.get("size"):
        parts.append(f"size={options['size']}")
    for part in parts:
        key, _, value = part.partition("=")
        if key not in _TMPFS_OPTIONS or not value:
            raise InvalidArgument(f"invalid tmpfs option {part!r} (supported: {', '.join(_TMPFS_OPTIONS)})")
        if key == "size" and not re.match(r"^\d+[kKmMgG%]?$", value):
            raise InvalidArgument(f"invalid tmpfs size {value!r}: a number of bytes, with k, m or g")
    return ",".join(parts)


def _bool_filter(filters, key):
    values = filters.get(key)
    if not values:
        return None
    value = values[-1].lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid filter '{key}={values[-1]}'")
