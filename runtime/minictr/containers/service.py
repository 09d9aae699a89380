"""The container service: create, start, attach, wait, inspect, list, kill and remove containers.

The database row is the truth about a container; this module keeps beside it
only what lives as long as the daemon does (locks, waiters, attach clients,
the pidfd of each monitor).
"""

import asyncio
import contextlib
import errno
import json
import logging
import os
import secrets
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field

from minictr import native
from minictr.containers import config as container_config
from minictr.containers import mounts as container_mounts
from minictr.containers import unsupported
from minictr.containers.cgroups import Cgroups, MigrationWarmer, freeze
from minictr.containers.resources import Resources
from minictr.security import Confinement
from minictr.containers.logs import log_settings, monitor_entries as log_entries
from minictr.containers.monitor import Monitor, MonitorError, unwatch, watch_exit, write_config
from minictr.containers.names import check_name, random_name
from minictr.containers.state import State, check_transition
from minictr.containers.users import resolve_user
from minictr.detach_keys import DEFAULT as DEFAULT_DETACH_KEYS
from minictr.detach_keys import Matcher as DetachMatcher
from minictr.detach_keys import parse as detach_keys_parse
from minictr.durations import rfc3339_to_unix
from minictr.errors import CommandNotExecutable, CommandNotFound, Conflict, InvalidArgument, MinictrError, NotFound
from minictr.images.driver import OVERLAY2, StorageDriver
from minictr.tasks import spawn

log = logging.getLogger("minictr.containers")

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
                  ("mounts", "TEXT NOT NULL DEFAULT '[]'"), ("oom_killed", "INTEGER NOT NULL DEFAULT 0")]

DEFAULT_STOP_TIMEOUT = 10
_INIT_IN_CONTAINER = "/sbin/docker-init"  # where Docker puts its init: scripts look for it there
# Docker's restart back-off: 100 ms, doubled after each restart, at most a minute; a container
# that ran for 10 s starts again from the bottom.
_BACKOFF_FIRST, _BACKOFF_MAX, _BACKOFF_RESET_AFTER = 0.1, 60.0, 10.0

_ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(ns=None):
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


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
                   mounts=json.loads(row["mounts"]), oom_killed=bool(row["oom_killed"]))


class ContainerService:
    def __init__(self, db, images, data_root, run_dir, rootless, uid_ranges, gid_ranges, events=None):
        from minictr.events import Events

        self.db = db
        self.events = events or Events()
        self.images = images
        self.driver = StorageDriver(OVERLAY2, rootless, "")  # the daemon sets the one it chose
        self.data_dir = os.path.join(data_root, "containers")
        # A removed container's directory is renamed here and deleted in the background: a removal
        # (and `run --rm`) does not wait for the deletion of its files.
        self.trash_dir = os.path.join(data_root, "trash")
        # Short on purpose: a Unix socket path (the attach socket below) must fit in 108 bytes.
        self.run_dir = os.path.join(run_dir, "c")
        if len(self.run_dir) + len("/0123456789abcdef/attach.sock") >= 108:
            raise InvalidArgument(f"the runtime directory {run_dir} is too long for Unix socket paths; "
                                  "choose a shorter socket path")
        self.rootless = rootless
        self.uid_ranges = uid_ranges
        self.gid_ranges = gid_ranges
        self.cgroups = Cgroups(rootless)
        self._warmer = MigrationWarmer.for_cgroups(self.cgroups)  # None where moves need no warming
        self.confinement = Confinement(data_root, rootless)
        self.resources = Resources(self.cgroups, rootless)
        self.volumes = None  # the volume service (volumes/service.py), set by the daemon
        self.networks = None  # the network service (networks/service.py), set by the daemon
        self.ports = None  # published ports (networks/ports.py ContainerPorts), set by the daemon
        self._containers = {}
        os.makedirs(self.data_dir, 0o700, exist_ok=True)
        os.makedirs(self.run_dir, 0o700, exist_ok=True)

    # ---- lookup ---------------------------------------------------------------------------

    def load(self):
        """Read every container from the database and reconcile it with what still runs: running
        containers carry on under their monitors (live restore); those that ended while no daemon
        watched get their exit recorded; restart policies apply as at a daemon's start in Docker."""
        self._add_missing_columns()
        shutil.rmtree(self.trash_dir, ignore_errors=True)  # what a stopped daemon had yet to delete
        for row in self.db.query("SELECT * FROM containers"):
            container = Container.from_row(row)
            self._containers[container.id] = container
            if container.state in (State.RUNNING, State.PAUSED):
                self._watch_monitor(container)
                continue
            # Groups an earlier daemon was still removing when it stopped (or gave up on).
            self.cgroups.remove(self.cgroups.groups_of(container.id))
            if container.state is State.RESTARTING:
                self._schedule_restart(container, 0)
            elif container.state is State.EXITED and self._restarts_with_daemon(container):
                self._schedule_restart(container, 0)
            elif container.state is State.REMOVING:
                # The daemon died mid-removal: finish the job.
                self._remove_files(container)
                with self.db.transaction() as cur:
                    cur.execute("DELETE FROM containers WHERE id = ?", (container.id,))
                del self._containers[container.id]

    def _add_missing_columns(self):
        present = {row["name"] for row in self.db.query("PRAGMA table_info(containers)")}
        with self.db.transaction() as cur:
            for name, declaration in _ADDED_COLUMNS:
                if name not in present:
                    cur.execute(f"ALTER TABLE containers ADD COLUMN {name} {declaration}")

    @staticmethod
    def _restarts_with_daemon(container):
        """Docker brings back `always` containers when it starts, and `unless-stopped` ones that
        nobody stopped."""
        policy = (container.host_config.get("RestartPolicy") or {}).get("Name") or ""
        return policy == "always" or (policy == "unless-stopped" and not container.manually_stopped)

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

    def ids(self):
        return list(self._containers)

    def running_ids(self):
        return {c.id for c in self._containers.values() if c.state in (State.RUNNING, State.PAUSED)}

    def name_of(self, container_id):
        container = self._containers.get(container_id)
        return container.name if container else ""

    def any_alive(self):
        """Whether any container still runs or waits to restart (its namespaces must stay)."""
        return any(c.state in (State.RUNNING, State.PAUSED, State.RESTARTING) for c in self._containers.values())

    def uses_image(self, image_id):
        """The id of a container made from the image (truthy), or None: rmi names it as Docker does."""
        return next((c.id for c in self._containers.values() if c.image_id == image_id), None)

    # ---- create -----------------------------------------------------------------------------

    async def create(self, body, name=None):
        """Create a container from an API create body; returns its id."""
        self.warm_migration()  # for the start that usually follows at once
        name = check_name(name) if name else random_name({c.name for c in self._containers.values()})
        self._check_name_free(name)
        if not body.get("Image"):
            raise InvalidArgument("No image specified")
        unsupported.check(body)  # a flag minictr would ignore: 400 naming it
        image = await asyncio.to_thread(self.images.resolve, body["Image"])
        container_id = secrets.token_hex(32)
        config, host_config = container_config.merge(body, image.config, container_id)
        log_settings(host_config)  # refuses a logging driver or option minictr does not have
        self.confinement.check(host_config)
        warnings = self.resources.check(host_config)
        if not config["Entrypoint"] and not config["Cmd"]:
            raise InvalidArgument("No command specified")
        mounts = self._check_mounts(config, host_config, image.config or {})
        endpoints = self.networks.plan(container_id, host_config, body.get("NetworkingConfig"))
        container = Container(id=container_id, name=name, image_id=image.id, image_ref=body["Image"],
                              config=config, host_config=host_config, created=rfc3339(), state=State.CREATED)
        container.warnings = warnings  # for the create response
        self._make_dirs(container)
        try:
            seeds = await asyncio.to_thread(self._attach_volumes, container, mounts)
            with self.db.transaction() as cur:
                cur.execute(
                    "INSERT INTO containers (id, name, image_id, image_ref, config, host_config, created, state,"
                    " mounts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (container.id, name, image.id, container.image_ref, json.dumps(config),
                     json.dumps(host_config), container.created, container.state.value,
                     json.dumps(container.mounts)))
            self.networks.record(endpoints)
            self.networks.write_files(container)
        except Exception:
            self._remove_files(container)
            self._remove_anonymous_volumes(container)
            raise
        self._containers[container.id] = container
        if seeds:
            try:
                await self._seed_volumes(container, seeds)
            except (OSError, MinictrError) as e:
                log.warning("seeding the volumes of %s: %s", container.name, e)
        self.emit(container, "create")
        return container.id

    # ---- mounts -----------------------------------------------------------------------------

    def _check_mounts(self, config, host_config, image_config):
        """Every mount of the request, checked and resolved, with volumes-from's and the image's
        VOLUMEs (anonymous volumes where nothing else is mounted); nothing is created yet."""
        volumes = {**(image_config.get("Volumes") or {}), **(config.get("Volumes") or {})}
        config["Volumes"] = volumes or None
        mounts = container_mounts.requested(host_config, volumes)
        taken = {m["destination"] for m in mounts}
        for raw in host_config.get("VolumesFrom") or []:
            ref, mode = container_mounts.parse_volumes_from(raw)
            for mount in self.get(ref).mounts:
                if mount["destination"] in taken:
                    continue
                copied = {**mount, "from": mount.get("from") or True}
                if mode:
                    copied["rw"] = mode == "rw"
                mounts.append(copied)
                taken.add(mount["destination"])
        for mount in mounts:
            if mount["type"] == "bind":
                container_mounts.check_bind_source(mount)
            elif mount["type"] == "volume" and self.volumes is None:
                raise InvalidArgument("volumes are not available in this daemon")
        return container_mounts.by_depth(mounts)

    def _attach_volumes(self, container, mounts):
        """Create bind sources and volumes into `container.mounts` (as it goes: a failure
        midway removes the anonymous ones made so far); returns the volumes to seed as
        (destination, volume)."""
        seeds = []
        for mount in mounts:
            mount = dict(mount)
            if mount["type"] == "bind":
                container_mounts.create_bind_source(mount)
            elif mount["type"] == "volume":
                if mount["anonymous"] and not mount.get("from"):
                    mount["name"] = secrets.token_hex(32)
                volume = self.volumes.ensure(mount["name"], anonymous=mount["anonymous"])
                if not mount.get("from") and not mount.get("nocopy") and self.volumes.needs_seed(volume.name):
                    seeds.append((mount["destination"], volume))
            mount.pop("create_source", None)
            mount.pop("volume_options", None)
            container.mounts.append(mount)
        return seeds

    async def _seed_volumes(self, container, seeds):
        """Docker copies what the image has at a new volume's mount point into it, once."""
        from minictr.containers.files import container_root

        async with container_root(self, container.id) as root_fd:
            for destination, volume in seeds:
                if os.listdir(volume.mountpoint):
                    continue
                await asyncio.to_thread(container_mounts.seed_volume, root_fd, destination,
                                        volume.mountpoint, native.open_in_root)
                self.volumes.mark_seeded(volume.name)

    def _remove_anonymous_volumes(self, container):
        """`rm -v`, `--rm`: the container's own anonymous volumes go with it, unless another
        container (volumes-from) still uses one."""
        if self.volumes is None:
            return
        for mount in container.mounts:
            if mount["type"] != "volume" or not mount["anonymous"] or mount.get("from"):
                continue
            if [c for c in self.volume_users(mount["name"]) if c != container.id]:
                continue
            try:
                self.volumes.remove(mount["name"], force=True)
            except NotFound:
                pass
            except MinictrError as e:
                log.warning("removing volume %s: %s", mount["name"], e)

    def volume_users(self, name):
        """The ids of the containers that mount volume `name` (the volume service asks)."""
        return [c.id for c in self._containers.values()
                if any(m["type"] == "volume" and m["name"] == name for m in c.mounts)]

    def _inspect_mounts(self, container):
        """inspect's Mounts array: Docker's fields, in the order they are mounted."""
        entries = []
        for mount in container.mounts:
            mountpoint = ""
            if mount["type"] == "volume" and self.volumes is not None:
                try:
                    mountpoint = self.volumes.get(mount["name"]).mountpoint
                except MinictrError:
                    pass
            entries.append(container_mounts.inspect_entry(mount, mountpoint))
        return entries

    def _mount_entries(self, container):
        """The monitor's `bind` and `tmpfs` keys for the container's mounts, parents first."""
        entries = []
        for mount in container_mounts.by_depth(container.mounts):
            access = "rw" if mount["rw"] else "ro"
            if mount["type"] == "bind":
                entries.append(("bind", mount["source"], mount["destination"], access))
            elif mount["type"] == "tmpfs":
                options = mount["options"] + ("" if mount["rw"] else ",ro")
                entries.append(("tmpfs", mount["destination"], options or "-"))
            else:
                kind, source, options = self.volumes.mount_source(self.volumes.get(mount["name"]))
                if kind == "tmpfs":
                    options = (options or "") + ("" if mount["rw"] else ",ro")
                    entries.append(("tmpfs", mount["destination"], options.strip(",") or "-"))
                else:
                    entries.append(("bind", source, mount["destination"], access))
        if container.host_config.get("ReadonlyRootfs"):
            entries.append(("readonly_rootfs", "1"))
        return entries

    def _check_name_free(self, name):
        for other in self._containers.values():
            if other.name == name:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                               f'"{other.id}". You have to remove (or rename) that container to be able to reuse that name.')

    def _make_dirs(self, container):
        top = os.path.join(self.data_dir, container.id)
        os.makedirs(top, 0o700)
        for sub in ("diff", "work", "rootfs"):
            os.mkdir(os.path.join(top, sub), 0o755)
        with open(os.path.join(top, "hostname"), "w") as f:
            f.write(container.config["Hostname"] + "\n")
        with open(os.path.join(top, "hosts"), "w") as f:
            f.write(container_config.hosts_file(container.config["Hostname"]))

    def _paths(self, container):
        top = os.path.join(self.data_dir, container.id)
        run = os.path.join(self.run_dir, container.id[:16])
        return {"top": top, "run": run, "attach": os.path.join(run, "attach.sock"),
                "exit": os.path.join(run, "exit"), "config": os.path.join(run, "monitor.conf"),
                "log": os.path.join(top, f"{container.id}-json.log")}

    # ---- start ------------------------------------------------------------------------------

    async def start(self, ref):
        """Start a created or exited container; returns False if it was already running (304)."""
        container = self.get(ref)
        async with container.lock:
            if container.state is State.RUNNING:
                return False
            check_transition(container.name, container.state, State.RUNNING)
            self._cancel_restart(container)
            container.backoff = 0.0
            try:
                await self._start_locked(container)
            except MinictrError:
                if container.host_config.get("AutoRemove"):
                    await self._remove_locked(container)
                raise
        return True

    async def _start_locked(self, container, restart_count=0):
        self.warm_migration()
        image = await asyncio.to_thread(self.images.resolve, container.image_id)
        paths = self._paths(container)
        uid, gid, groups = resolve_user(container.config["User"], [os.path.join(paths["top"], "diff")] + image.layer_dirs)
        os.makedirs(paths["run"], 0o700, exist_ok=True)
        for stale in (paths["exit"], paths["attach"]):
            if os.path.lexists(stale):
                os.unlink(stale)
        await self._cgroups_removed(container)
        container.cgroups = self.resources.create_groups(container.id, container.host_config)
        monitor, network = await self._spawn_monitor(container, image, paths, uid, gid, groups)
        container.pid, container.monitor_pid = monitor.container_pid, monitor.monitor_pid
        await self._connect_network(container, monitor, network)
        try:
            await self._connect_pending_attaches(container, paths["attach"])
            await monitor.start()
        except MonitorError as e:
            # The monitor records 126/127 and leaves. A command that never ran is not restarted
            # by the policy (as in Docker); wait until _on_monitor_exit has marked it exited.
            container.error = str(_start_error(e))
            container.start_failed = True
            exits = container.exits
            self._watch_monitor(container)
            await self._until(container, lambda: container.exits > exits or container.removed)
            raise _start_error(e) from None
        except BaseException:
            self._watch_monitor(container)
            raise
        container.started_at = rfc3339()
        self._set_state(container, State.RUNNING, pid=container.pid, monitor_pid=container.monitor_pid,
                        started_at=container.started_at, error="", restart_count=restart_count,
                        manually_stopped=False, oom_killed=False)
        self.emit(container, "start")
        # Watched only once running: an instant command (`true`) may have ended already, and
        # its exit handled before its start would leave it "running" with no process.
        self._watch_monitor(container)

    async def _spawn_monitor(self, container, image, paths, uid, gid, groups):
        """The container's monitor, once its init is set up and waiting to exec; and the task that
        sets up its network, begun as soon as the init's namespaces exist (or None)."""
        network = None

        def set_up_network(pid):
            # The init's namespaces exist and its command has not run: its network is set up
            # while it sets up the rest (mounts, cgroups).
            nonlocal network
            network = asyncio.ensure_future(asyncio.to_thread(self.networks.container_started, container, pid))

        try:
            root = await asyncio.to_thread(self.driver.prepare, image, paths["top"])
            try:
                write_config(paths["config"], self._monitor_entries(container, image, paths, uid, gid, groups, root))
                await self.migration_ready()
                monitor = await Monitor.spawn(paths["config"], set_up_network)
            finally:
                await asyncio.to_thread(self.driver.created, paths["top"])
        except BaseException as e:
            if network is not None:
                await self._abandon_network(container, network)
            groups, container.cgroups = container.cgroups, []
            await self._remove_cgroups(groups)
            if isinstance(e, MonitorError):
                raise _start_error(e) from None
            raise
        return monitor, network

    async def _connect_network(self, container, monitor, network):
        """Wait for the container's network (set it up, if the monitor did not say `cloned`), then
        publish its ports; on failure the monitor kills the container, and what it got goes."""
        try:
            if network is None:
                network = asyncio.to_thread(self.networks.container_started, container, monitor.container_pid)
            await network
            if self.ports:
                try:  # a taken port fails the start with nothing bound (ports.py)
                    await self.ports.container_started(container, self.networks.settings(container))
                except BaseException:
                    await asyncio.to_thread(self.networks.container_stopped, container.id)
                    raise
        except BaseException as e:
            monitor.close()  # the monitor kills the container and leaves
            container.pid = container.monitor_pid = 0
            groups, container.cgroups = container.cgroups, []
            await self._remove_cgroups(groups)
            if isinstance(e, OSError):
                raise MinictrError(f"setting up the network of {container.name}: {e}") from None
            raise

    async def _abandon_network(self, container, setting_up):
        """The start failed while the container's network was being set up: once that is done
        (or failed: its namespace may be gone), release what it made."""
        with contextlib.suppress(Exception):
            await setting_up
        await asyncio.to_thread(self.networks.container_stopped, container.id)

    def _monitor_entries(self, container, image, paths, uid, gid, groups, root):
        config = container.config
        entries = [("id", container.id)] + root  # rootfs and its layers, as the storage driver makes it
        entries.append(("userns", "1" if self.rootless else "0"))
        if self.rootless:
            entries += [("uidmap", first, first, count) for first, count in self.uid_ranges]
            entries += [("gidmap", first, first, count) for first, count in self.gid_ranges]
        entries += self.networks.monitor_entries(container, lambda other: other.pid if other.state in (
            State.RUNNING, State.PAUSED) else 0)
        entries += [("hostname", config["Hostname"]), ("cwd", config["WorkingDir"] or "/"),
                    ("uid", uid), ("gid", gid)]
        entries += [("group", g) for g in groups]
        argv = (config["Entrypoint"] or []) + (config["Cmd"] or [])
        if container.host_config.get("Init"):
            argv = [_INIT_IN_CONTAINER, "--"] + argv
        entries += [("arg", a) for a in argv]
        entries += [("env", e) for e in config["Env"]]
        entries += [("cgroup", c) for c in container.cgroups]
        entries += self.cgroups.filesystems()
        if container.host_config.get("Init"):
            entries.append(("bind", native.INIT_PATH, _INIT_IN_CONTAINER, "ro"))
        entries += [("bind", os.path.join(paths["top"], "hostname"), "/etc/hostname", "rw"),
                    ("bind", os.path.join(paths["top"], "hosts"), "/etc/hosts", "rw"),
                    ("bind", os.path.join(paths["top"], "resolv.conf"), "/etc/resolv.conf", "rw")]
        entries += self._mount_entries(container)
        entries += self.confinement.monitor_entries(container.host_config)
        entries += self.resources.monitor_entries(container.host_config)
        entries += [("stdin", "1" if config["OpenStdin"] else "0")]
        entries += _tty_entries(config, container.host_config)
        entries += log_entries(log_settings(container.host_config), paths["log"])
        entries += [("exit", paths["exit"]), ("attach", paths["attach"])]
        return entries

    def groups_of(self, container):
        """The container's cgroups: those its start made, or after a daemon restart where they are."""
        return container.cgroups or self.cgroups.groups_of(container.id)

    def warm_migration(self):
        """Keep cgroup moves fast for a start (or an exec, which joins the container's groups) that
        comes next (cgroups.MigrationWarmer); in the event loop's thread."""
        if self._warmer:
            self._warmer.warm()

    async def migration_ready(self):
        """Before a monitor that joins cgroups is spawned: the warm-up's first move is done."""
        if self._warmer:
            await self._warmer.ready()

    # ---- exit -------------------------------------------------------------------------------

    def _watch_monitor(self, container):
        container.pidfd = watch_exit(container.monitor_pid, self._on_monitor_exit, container)

    def _on_monitor_exit(self, container):
        container.pidfd = unwatch(container.pidfd)
        groups, container.cgroups = self.groups_of(container), []
        oom_killed = self.cgroups.oom_killed(groups)  # before the groups go
        container.cgroup_cleanup = spawn(self._remove_cgroups(groups))
        self._release_network(container)
        if container.removed or container.state is State.REMOVING:
            spawn(self._notify(container))
            return
        exit_code, finished_ns = self._read_exit_file(container)
        restart_in = self._restart_delay(container, exit_code, finished_ns)
        state = State.RESTARTING if restart_in is not None else State.EXITED
        container.exits += 1
        self._set_state(container, state, pid=0, monitor_pid=0, exit_code=exit_code,
                        finished_at=rfc3339(finished_ns), error=container.error, oom_killed=oom_killed)
        self.emit(container, "die", exitCode=str(exit_code))
        if restart_in is not None:
            self._schedule_restart(container, restart_in)
        elif container.host_config.get("AutoRemove"):
            spawn(self._auto_remove(container))

    def _release_network(self, container):
        if self.ports:
            self.ports.container_stopped(container.id)  # listeners closed, connections ended
        try:
            self.networks.container_stopped(container.id)
        except Exception as e:  # a link that will not go: reconciled at the next start
            log.warning("releasing the network of %s: %s", container.name, e)

    # ---- restart policies -------------------------------------------------------------------

    def _restart_delay(self, container, exit_code, finished_ns):
        """Seconds until the restart policy brings the container back, or None if it stays down."""
        policy = container.host_config.get("RestartPolicy") or {}
        name, limit = policy.get("Name") or "", policy.get("MaximumRetryCount") or 0
        if container.manually_stopped or container.start_failed or name in ("", "no"):
            container.start_failed = False
            return None
        if name == "on-failure" and (exit_code == 0 or (limit and container.restart_count >= limit)):
            return None
        ran_for = finished_ns / 1e9 - rfc3339_to_unix(container.started_at)
        if ran_for >= _BACKOFF_RESET_AFTER or container.backoff == 0:
            container.backoff = _BACKOFF_FIRST
        else:
            container.backoff = min(container.backoff * 2, _BACKOFF_MAX)
        return container.backoff

    def _schedule_restart(self, container, delay):
        if container.state is not State.RESTARTING:
            self._set_state(container, State.RESTARTING)
        container.restart_task = spawn(self._restart_later(container, delay))

    async def _restart_later(self, container, delay):
        await asyncio.sleep(delay)
        async with container.lock:
            if container.state is not State.RESTARTING or container.removed:
                return
            container.restart_task = None
            try:
                await self._start_locked(container, restart_count=container.restart_count + 1)
            except MinictrError as e:
                log.warning("restart of %s failed: %s", container.name, e)
                if container.state is State.RESTARTING:
                    self._set_state(container, State.EXITED, error=str(e))

    def _cancel_restart(self, container, **columns):
        """A stop, kill or remove ends a pending restart; the container stays exited (with
        `columns` written in the same change)."""
        if container.restart_task is not None:
            container.restart_task.cancel()
            container.restart_task = None
        if container.state is State.RESTARTING:
            self._set_state(container, State.EXITED, **columns)

    def _read_exit_file(self, container):
        try:
            with open(self._paths(container)["exit"]) as f:
                code, finished = f.read().split()[:2]
            return int(code), int(finished)
        except (OSError, ValueError):
            # The monitor died without a word (killed): Docker reports such a container as 255.
            return 255, time.time_ns()

    async def _remove_cgroups(self, groups):
        # The container's last processes may still be leaving their groups for a moment after
        # the monitor has gone; nobody waits on this but a removal or a restart.
        for _ in range(200):
            groups = self.cgroups.remove(groups)
            if not groups:
                return
            await asyncio.sleep(0.005)
        log.warning("cgroups still busy, left in place: %s", ", ".join(groups))

    async def cgroups_settled(self, timeout):
        """At the daemon's stop: wait (at most `timeout` s) for the removals of ended containers' groups."""
        pending = [c.cgroup_cleanup for c in self._containers.values()
                   if c.cgroup_cleanup is not None and not c.cgroup_cleanup.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def _cgroups_removed(self, container):
        if container.cgroup_cleanup is not None:
            await container.cgroup_cleanup
            container.cgroup_cleanup = None

    async def _auto_remove(self, container):
        try:
            async with container.lock:
                if container.state is not State.REMOVING and not container.removed:
                    await self._remove_locked(container, wait_for_links=False)
        except MinictrError as e:
            log.warning("auto-remove of %s failed: %s", container.name, e)

    def _set_state(self, container, state, **columns):
        if state is not container.state:
            check_transition(container.name, container.state, state)
        columns["state"] = state.value
        with self.db.transaction() as cur:
            assignments = ", ".join(f"{name} = ?" for name in columns)
            cur.execute(f"UPDATE containers SET {assignments} WHERE id = ?", (*columns.values(), container.id))
        container.state = state
        for name, value in columns.items():
            if name != "state":
                setattr(container, name, value)
        spawn(self._notify(container))

    async def _notify(self, container):
        async with container.changed:
            container.changed.notify_all()

    async def _until(self, container, predicate):
        async with container.changed:
            await container.changed.wait_for(predicate)

    # ---- wait, kill, remove -----------------------------------------------------------------

    async def wait(self, ref, condition="not-running"):
        """Block until the container meets `condition`; returns its exit code."""
        container = self.get(ref)
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition!r}")
        # Counted, not watched: a container that starts and exits at once may pass through
        # `running` between two wake-ups of this waiter.
        exits_before = container.exits
        async with container.changed:
            while True:
                if condition == "removed" and container.removed:
                    break
                if condition == "not-running" and container.state not in (State.RUNNING, State.PAUSED):
                    break
                if condition == "next-exit" and container.exits > exits_before:
                    break
                await container.changed.wait()
        return container.exit_code

    async def kill(self, ref, signum=signal.SIGKILL):
        """Send a signal to the container's init; the container is then stopped by hand, so its
        restart policy does not bring it back (as in Docker)."""
        container = self.get(ref)
        if container.state is State.RESTARTING:
            self._cancel_restart(container, manually_stopped=True)
            return
        if container.state not in (State.RUNNING, State.PAUSED):
            raise Conflict(f"Cannot kill container: {ref}: container {container.id} is not running")
        self._set_state(container, container.state, manually_stopped=True)
        self.emit(container, "kill", signal=str(int(signum)))
        self._signal(container, signum)

    def _signal(self, container, signum):
        if container.pid <= 0:
            # It ended while we awaited (stop's timeout ran out as it exited): its pid is 0 now,
            # and kill(0) would signal the daemon's own process group.
            return
        try:
            os.kill(container.pid, signum)
        except ProcessLookupError:
            return
        if container.state is State.PAUSED:
            # A frozen process takes its signal only once thawed.
            self._set_freezer(container, False)

    async def stop(self, ref, timeout=None, signal_name=None):
        """Docker's stop: the stop signal, then SIGKILL after `timeout` seconds (the container's
        StopTimeout, else 10; -1 waits forever). Returns False if it was not running (304)."""
        container = self.get(ref)
        if container.state is State.RESTARTING:
            self._cancel_restart(container, manually_stopped=True)
            return True
        if container.state not in (State.RUNNING, State.PAUSED):
            return False
        self._set_state(container, container.state, manually_stopped=True)
        signum = parse_signal(signal_name or container.config.get("StopSignal") or "SIGTERM")
        if timeout is None:
            timeout = container.config.get("StopTimeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        self._signal(container, signum)
        try:
            await asyncio.wait_for(self.wait(container.id), None if timeout < 0 else timeout)
        except asyncio.TimeoutError:
            self._signal(container, signal.SIGKILL)
            await self.wait(container.id)
        self.emit(container, "stop")
        return True

    async def restart(self, ref, timeout=None, signal_name=None):
        """Stop (if running) and start again."""
        container = self.get(ref)
        await self.stop(container.id, timeout, signal_name)
        await self.start(container.id)
        self.emit(container, "restart")

    async def pause(self, ref):
        container = self.get(ref)
        async with container.lock:
            if container.state is State.PAUSED:
                raise Conflict(f"Container {container.id} is already paused")
            if container.state is not State.RUNNING:
                raise Conflict(f"Container {container.id} is not running")
            await asyncio.to_thread(self._set_freezer, container, True)
            self._set_state(container, State.PAUSED)
            self.emit(container, "pause")

    async def unpause(self, ref):
        container = self.get(ref)
        async with container.lock:
            if container.state is not State.PAUSED:
                raise Conflict(f"Container {container.id} is not paused")
            await asyncio.to_thread(self._set_freezer, container, False)
            self._set_state(container, State.RUNNING)
            self.emit(container, "unpause")

    def _set_freezer(self, container, frozen):
        groups = self.groups_of(container)
        freezer_file = self.cgroups.freezer(groups)
        if freezer_file is None:
            raise Conflict("pause is not supported here: the container has no freezer cgroup "
                           "(rootless needs cgroup v2 with delegation; see `minictr info`)")
        if not freeze(freezer_file, frozen):
            raise MinictrError(f"the freezer of container {container.name} did not settle")

    async def update(self, ref, body):
        """POST /containers/{id}/update: new limits (written live when running) and restart policy,
        persisted; returns the warnings."""
        container = self.get(ref)
        async with container.lock:
            host_config = dict(container.host_config)
            running = container.state in (State.RUNNING, State.PAUSED)
            groups = self.groups_of(container) if running else []
            warnings = self.resources.update(host_config, body, groups)
            with self.db.transaction() as cur:
                cur.execute("UPDATE containers SET host_config = ? WHERE id = ?", (json.dumps(host_config), container.id))
            container.host_config = host_config
        self.emit(container, "update")
        return warnings

    async def rename(self, ref, new_name):
        container = self.get(ref)
        new_name = check_name(new_name)
        async with container.lock:
            if new_name == container.name:
                raise Conflict("Renaming a container with the same name as its current name")
            self._check_name_free(new_name)
            old_name = container.name
            with self.db.transaction() as cur:
                cur.execute("UPDATE containers SET name = ? WHERE id = ?", (new_name, container.id))
            container.name = new_name
            self.emit(container, "rename", oldName="/" + old_name)

    async def remove(self, ref, force=False, volumes=False):
        container = self.get(ref)
        if container.state is State.RESTARTING:
            if not force:
                raise Conflict(f"cannot remove container {container.name}: container is restarting: "
                               "stop the container before removing or force remove")
            self._cancel_restart(container)
        if force and container.state in (State.RUNNING, State.PAUSED):
            self._signal(container, signal.SIGKILL)
            await self.wait(container.id, "not-running")
            self._cancel_restart(container)
        async with container.lock:
            if container.removed:
                return
            await self._remove_locked(container, volumes)

    async def _remove_locked(self, container, volumes=False, wait_for_links=True):
        self._set_state(container, State.REMOVING)
        await self._cgroups_removed(container)
        await asyncio.to_thread(self._remove_files, container)
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM containers WHERE id = ?", (container.id,))
        await asyncio.to_thread(self.networks.container_removed, container.id, wait_for_links)
        self._containers.pop(container.id, None)
        if volumes or container.host_config.get("AutoRemove"):
            # Docker's --rm removes the anonymous volumes too.
            await asyncio.to_thread(self._remove_anonymous_volumes, container)
        container.removed = True
        self.emit(container, "destroy")
        await self._notify(container)

    def emit(self, container, action, **attributes):
        """An event about this container (GET /events), with Docker's attributes."""
        labels = container.config.get("Labels") or {}
        self.events.emit("container", action, container.id,
                         {**labels, "image": container.image_ref, "name": container.name, **attributes})

    def _remove_files(self, container):
        paths = self._paths(container)
        self.driver.unmount(paths["top"])  # a fuse mount a crash left: never delete through it
        shutil.rmtree(paths["run"], ignore_errors=True)
        os.makedirs(self.trash_dir, 0o700, exist_ok=True)
        doomed = os.path.join(self.trash_dir, container.id)
        try:
            os.rename(paths["top"], doomed)
        except FileNotFoundError:
            return
        except OSError:
            shutil.rmtree(paths["top"], ignore_errors=True)
            return
        threading.Thread(target=shutil.rmtree, args=(doomed, True), name="remove-files", daemon=True).start()

    # ---- attach -----------------------------------------------------------------------------

    def prepare_attach(self, ref, stdin, stdout, stderr, detach_keys=None):
        """Register an attach client now, before its connection is hijacked, so that a `start`
        arriving meanwhile already connects it to the monitor and no output is lost.
        `detach_keys` (Docker's syntax, default ctrl-p,ctrl-q) end this attach when the
        container has a tty; a bad sequence is InvalidArgument."""
        container = self.get(ref)
        keys = detach_keys_parse(detach_keys or DEFAULT_DETACH_KEYS)
        attach = Attach((1 if stdin else 0) | (2 if stdout else 0) | (4 if stderr else 0),
                        tty=bool(container.config.get("Tty")), detach_keys=keys,
                        stdin_once=bool(container.config.get("StdinOnce")))
        if container.state is State.RUNNING:
            spawn(attach.connect(self._paths(container)["attach"]))
        elif container.state in (State.CREATED, State.EXITED):
            container.pending_attaches.append(attach)
        else:
            attach.done.set()
        return attach

    async def _connect_pending_attaches(self, container, socket_path):
        pending, container.pending_attaches = container.pending_attaches, []
        for attach in pending:
            await attach.connect(socket_path)

    async def resize(self, ref, height, width):
        """POST /containers/{id}/resize: set the size of a running container's pty (a container
        without one ignores it, as in Docker); the monitor's control connection does it."""
        container = self.get(ref)
        if container.state not in (State.RUNNING, State.PAUSED):
            raise Conflict(f"Container {container.id} is not running")
        if not container.config.get("Tty"):
            return
        if not (0 <= height <= 0xFFFF and 0 <= width <= 0xFFFF):
            raise InvalidArgument(f"invalid terminal size {height}x{width}")
        try:
            answer = await monitor_control(self._paths(container)["attach"], f"resize {height} {width}")
        except OSError as e:
            raise Conflict(f"Container {container.id} is not running: {e.strerror or e}") from None
        if answer != "ok":
            raise MinictrError(f"cannot resize container {container.id}: {answer.split(' ', 2)[-1]}")

    # ---- views ------------------------------------------------------------------------------

    def list(self, all=False, filters=None, limit=-1, size=False):
        """GET /containers/json: newest first; `filters` is {key: [values]} as Docker's `ps --filter`
        (an unknown key or a bad value is InvalidArgument); `limit` > 0 keeps the last N created in
        any state; `size` adds SizeRw and SizeRootFs."""
        from minictr.containers.filters import ContainerFilter

        chosen = ContainerFilter(filters or {}, all=all, limit=limit, lookup=self.get,
                                 ancestor_ids=self._image_and_children).select(
            sorted(self._containers.values(), key=lambda c: c.created, reverse=True), container_config.state_string)
        image_sizes = {}
        summaries = []
        for container in chosen:
            summary = container_config.summary(container)
            summary["Mounts"] = self._inspect_mounts(container)
            if self.ports:
                summary["Ports"] = self.ports.list_entry(container)
            if size:
                summary.update(self._sizes(container, image_sizes))
            summaries.append(summary)
        return summaries

    def _image_and_children(self, ref):
        """The ids of image `ref` and of the images of our containers built on top of it (whose
        layers start with all of its layers), for `ancestor=`; none when `ref` names no image."""
        try:
            image = self.images.resolve(ref)
        except (NotFound, InvalidArgument):
            return set()
        ids = {image.id}
        base = list(image.layer_dirs)
        for image_id in {c.image_id for c in self._containers.values()} - ids:
            try:
                layers = list(self.images.resolve(image_id).layer_dirs)
            except MinictrError:
                continue
            if base and len(layers) > len(base) and layers[-len(base):] == base:
                ids.add(image_id)
        return ids

    def _sizes(self, container, image_sizes):
        """SizeRw (the bytes of the container's upper dir) and SizeRootFs (that and its image)."""
        size_rw = container_config.directory_size(os.path.join(self._paths(container)["top"], "diff"))
        if container.image_id not in image_sizes:
            try:
                image_sizes[container.image_id] = self.images.inspect(container.image_id)["Size"]
            except MinictrError:
                image_sizes[container.image_id] = 0
        return {"SizeRw": size_rw, "SizeRootFs": size_rw + image_sizes[container.image_id]}

    def inspect(self, ref, size=False):
        container = self.get(ref)
        document = container_config.inspect(container, self._paths(container))
        document["Mounts"] = self._inspect_mounts(container)
        document["NetworkSettings"].update(self.networks.settings(container))
        if self.ports:
            document["NetworkSettings"].update(self.ports.settings(container))
        if size:
            document.update(self._sizes(container, {}))
        return document


class Attach:
    """One attach client, bridged to the monitor's attach socket.

    The monitor already frames output as Docker does (raw bytes with a tty), so bytes pass
    through as they are. Either side may be ready first: the monitor connection (at `start`)
    or the client's hijacked connection (after the 101 answer).

    With a tty, as in Docker: the client's input is watched for `detach_keys` (bytes), which
    end this attach and leave the container running; the end of its input ends the attach
    too, and never closes the container's stdin (other clients share the pty). Without one,
    the end of its input half-closes the monitor connection: the container's stdin ends — if the
    container has StdinOnce (an exec always does); if not, Docker ends the attach as with a tty
    (`docker run -di` then `docker attach`: the container keeps its stdin)."""

    def __init__(self, mask, tty=False, detach_keys=b"", stdin_once=True):
        self.mask = mask
        self.tty = tty
        self.stdin_once = stdin_once
        self.detach_keys = detach_keys if tty else b""
        self.detached = False
        self._client = asyncio.get_running_loop().create_future()
        self.done = asyncio.Event()

    @property
    def content_type(self):
        return "application/vnd.docker.raw-stream" if self.tty else "application/vnd.docker.multiplexed-stream"

    async def serve(self, reader, writer, early):
        """Hand over the client's connection; returns when the container's output has ended
        or the client detached."""
        self._client.set_result((reader, writer, early))
        await self.done.wait()
        writer.close()

    async def connect(self, socket_path):
        try:
            mon_reader, mon_writer = await asyncio.open_unix_connection(socket_path)
            mon_writer.write(bytes([self.mask]))
            await mon_writer.drain()
        except OSError as e:
            log.warning("attach to %s failed: %s", socket_path, e)
            self.done.set()
            return
        spawn(self._bridge(mon_reader, mon_writer))

    async def _bridge(self, mon_reader, mon_writer):
        reader, writer, early = await self._client
        output = spawn(self._pump_output(mon_reader, writer))
        if self.mask & 1:
            spawn(self._pump_input(reader, early, mon_writer, output))
        try:
            await output
        finally:
            mon_writer.close()
            self.done.set()

    @staticmethod
    async def _pump_output(mon_reader, writer):
        total = 0
        try:
            while data := await mon_reader.read(65536):
                total += len(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        log.debug("attach: %d bytes of output", total)

    async def _pump_input(self, reader, early, mon_writer, output):
        matcher = DetachMatcher(self.detach_keys)
        try:
            data = early or await reader.read(65536)
            while data:
                data, detached = matcher.feed(data)
                if data:
                    mon_writer.write(data)
                    await mon_writer.drain()
                if detached:
                    # A whole close: the monitor drops this client and keeps the container's stdin.
                    log.debug("attach: detached by the client's keys")
                    self.detached = True
                    mon_writer.close()
                    return
                data = await reader.read(65536)
            if output.done():
                return
            if self.tty or not self.stdin_once:
                mon_writer.close()  # Docker: with a tty or without StdinOnce, the end of the input ends the attach
            else:
                mon_writer.write_eof()  # the client half-closed: the container's stdin ends (StdinOnce)
        except (ConnectionError, OSError):
            pass


def _tty_entries(config, host_config):
    """The monitor's `tty` and `tty_size` (HostConfig.ConsoleSize is [height, width], as in Docker)."""
    if not config.get("Tty"):
        return [("tty", "0")]
    entries = [("tty", "1")]
    size = host_config.get("ConsoleSize") or [0, 0]
    if len(size) == 2 and all(isinstance(n, int) and 0 < n <= 0xFFFF for n in size):
        entries.append(("tty_size", size[0], size[1]))
    return entries


async def monitor_control(socket_path, command, timeout=5):
    """One command on a control connection of a monitor's attach socket; returns its answer line."""
    reader, writer = await asyncio.open_unix_connection(socket_path)
    try:
        writer.write(bytes([8]) + command.encode() + b"\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), timeout)
    except asyncio.TimeoutError:
        raise OSError(errno.ETIMEDOUT, "the monitor did not answer") from None
    finally:
        writer.close()
    if not answer:
        raise OSError(errno.ECONNRESET, "the monitor closed the connection")
    return answer.decode(errors="replace").strip()


def parse_signal(name):
    """A signal by number, `KILL` or `SIGKILL`; InvalidArgument otherwise."""
    name = str(name)
    if name.isdigit():
        return int(name)
    upper = name.upper()
    try:
        return signal.Signals[upper if upper.startswith("SIG") else "SIG" + upper]
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {name}") from None


def _start_error(error):
    """A monitor error in the words a Docker user knows, with the class that picks the exit code."""
    message = error.strerror or str(error)
    if error.errno == errno.ENOENT and message.startswith("exec"):
        return CommandNotFound(f"failed to create task for container: {message}: executable file not found in $PATH")
    if error.errno in (errno.EACCES, errno.ENOEXEC) and message.startswith("exec"):
        return CommandNotExecutable(f"failed to create task for container: {message}: permission denied")
    return MinictrError(f"failed to create task for container: {message}")
