"""The container service: one facade over the container verbs, for the API handlers and the daemon.

Each family of verbs lives in a module of its own (as moby's daemon/create.go, start.go,
delete.go … and Podman's libpod/container_*.go): the record and its store (store.py),
create (create.py), the run — start, exit, restart policy, wait (lifecycle.py), what a user
does to a container (control.py), the list and inspect (views.py), attach (attach.py),
commit (commit.py). This class builds them from its explicit dependencies and hands each
call to the part that does it.
"""

import logging
import signal
from types import SimpleNamespace

from minictr.containers.attach import Attaching
from minictr.containers.cgroups import Cgroups
from minictr.containers.commit import commit, thaw_after_killed_commit
from minictr.containers.control import Control
from minictr.containers.create import Creator
from minictr.containers.delete import Deleter
from minictr.containers.files import container_root
from minictr.containers.groups import ContainerGroups
from minictr.containers.lifecycle import Lifecycle
from minictr.containers.monitor import find_monitors, stop_monitor
from minictr.containers.monitor_config import MonitorConfig
from minictr.containers.mounting import Mounting
from minictr.containers.resources import Resources
from minictr.containers.views import Views
from minictr.security import Confinement

log = logging.getLogger("minictr.containers")


class ContainerService:
    """`store`: the ContainerStore (containers/store.py); `images`, `volumes` (or None), `networks`,
    `ports` (or None): the services of those kinds; `driver`: the storage driver the daemon chose;
    `data_root`, `rootless`, `uid_ranges`, `gid_ranges` (a rootless container's id maps): the
    daemon's configuration."""

    def __init__(self, store, images, volumes, networks, ports, driver, *, data_root, rootless, uid_ranges, gid_ranges,
                 unavailable_limits="refuse"):
        self.store = store
        self.images = images
        self.driver = driver
        self.rootless = rootless
        self.data_dir = store.data_dir
        self.run_dir = store.run_dir
        self.cgroups = Cgroups(rootless)
        self.confinement = Confinement(data_root, rootless)
        self.resources = Resources(self.cgroups, rootless, unavailable_limits)
        self.groups = ContainerGroups(self.cgroups)
        self.mounting = Mounting(store, volumes)
        self.deleter = Deleter(store, self.groups, self.mounting, networks, driver)
        self.creator = Creator(store, images, networks, self.mounting, self.deleter, self.groups,
                               self.confinement, self.resources, lambda ref: container_root(self, ref))
        monitor_config = MonitorConfig(networks, self.cgroups, self.mounting, self.confinement, self.resources,
                                       rootless, uid_ranges, gid_ranges, store)
        self.lifecycle = Lifecycle(store, images, driver, networks, ports, self.groups, self.resources,
                                   self.deleter, monitor_config)
        self.control = Control(store, self.lifecycle, self.deleter, self.groups, self.resources)
        self.views = Views(store, images, self.mounting, networks, ports)
        self.attaching = Attaching(store)

    def load(self):
        """Read every container and reconcile it with the processes that exist (Lifecycle.reconcile):
        the monitors found in the runtime directory are the truth, whatever point of an operation
        a killed daemon stopped at. A monitor without a record is stopped, directories without
        one removed, and what a killed commit froze thawed."""
        containers = self.store.load()
        monitors = find_monitors(self.run_dir)
        known = {container.id for container in containers}
        for container_id in monitors.keys() - known:
            log.warning("stopping container %s: it runs with no record", container_id[:12])
            stop_monitor(monitors[container_id])
            self.groups.remove_stale(SimpleNamespace(id=container_id))
        self.deleter.sweep(known)
        for container in containers:
            self.lifecycle.reconcile(container, monitors.get(container.id))
            thaw_after_killed_commit(self.store, self.groups, container)

    # ---- the store ------------------------------------------------------------------------

    def get(self, ref):
        return self.store.get(ref)

    def ids(self):
        return self.store.ids()

    def running_ids(self):
        return self.store.running_ids()

    def name_of(self, container_id):
        return self.store.name_of(container_id)

    def any_alive(self):
        return self.store.any_alive()

    def uses_image(self, image_id):
        return self.store.uses_image(image_id)

    def volume_users(self, name):
        return self.store.volume_users(name)

    def emit(self, container, action, **attributes):
        self.store.emit(container, action, **attributes)

    # ---- the verbs --------------------------------------------------------------------------

    async def create(self, body, name=None):
        """Returns the new container's id and the warnings for the create response."""
        return await self.creator.create(body, name)

    async def start(self, ref):
        return await self.lifecycle.start(ref)

    async def wait(self, ref, condition="not-running"):
        return await self.lifecycle.wait(ref, condition)

    async def kill(self, ref, signum=signal.SIGKILL):
        """SIGKILL returns once the container has stopped, as Docker's kill does: clients remove it
        right after (Ansible's force_kill)."""
        await self.control.kill(ref, signum)
        if signum == signal.SIGKILL:
            await self.lifecycle.wait(ref)

    async def stop(self, ref, timeout=None, signal_name=None):
        return await self.control.stop(ref, timeout, signal_name)

    async def restart(self, ref, timeout=None, signal_name=None):
        await self.control.restart(ref, timeout, signal_name)

    async def pause(self, ref):
        await self.control.pause(ref)

    async def unpause(self, ref):
        await self.control.unpause(ref)

    async def update(self, ref, body):
        return await self.control.update(ref, body)

    async def rename(self, ref, new_name):
        await self.control.rename(ref, new_name)

    async def remove(self, ref, force=False, volumes=False):
        await self.control.remove(ref, force, volumes)

    async def commit(self, ref, **options):
        """POST /commit (containers/commit.py); returns the new image's id."""
        return await commit(self.store, self.control, self.images, ref, **options)

    def prepare_attach(self, ref, stdin, stdout, stderr, detach_keys=None):
        return self.attaching.prepare(ref, stdin, stdout, stderr, detach_keys)

    async def resize(self, ref, height, width):
        await self.attaching.resize(ref, height, width)

    def list(self, all=False, filters=None, limit=-1, size=False):
        return self.views.list(all, filters, limit, size)

    def inspect(self, ref, size=False):
        return self.views.inspect(ref, size)

    # ---- cgroups (exec and stats join or read the container's groups) ----------------------

    def groups_of(self, container):
        return self.groups.groups_of(container)

    def warm_migration(self):
        self.groups.warm_migration()

    async def migration_ready(self):
        await self.groups.migration_ready()

    async def cgroups_settled(self, timeout):
        await self.groups.settled(self.store.all(), timeout)
