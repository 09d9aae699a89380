"""Removing a container: its groups, files, row, network endpoints and anonymous volumes.

The verb (`rm`, with its checks and `--force`) is in containers/control.py; this is the
machinery that it, `--rm` (AutoRemove) and a daemon's start share."""

import asyncio
import logging
import os
import shutil
import threading
from types import SimpleNamespace

from minictr.containers.state import State
from minictr.db import is_disk_full
from minictr.errors import MinictrError

log = logging.getLogger("minictr.containers")


class Deleter:
    def __init__(self, store, groups, mounting, networks, driver):
        self.store = store
        self.groups = groups
        self.mounting = mounting
        self.networks = networks
        self.driver = driver

    async def remove_locked(self, container, volumes=False, wait_for_links=True):
        """Remove the container (its lock held): `volumes` takes its anonymous volumes too."""
        self.store.set_state(container, State.REMOVING)
        await self.groups.removed(container)
        await asyncio.to_thread(self.remove_files, container)
        self.store.delete(container)
        await _despite_full_disk(container, "network leases", self.networks.container_removed, container.id,
                                 wait_for_links)
        if volumes or container.host_config.get("AutoRemove"):
            # Docker's --rm removes the anonymous volumes too.
            await _despite_full_disk(container, "anonymous volumes", self.mounting.remove_anonymous, container)
        container.removed = True
        self.store.emit(container, "destroy")
        await self.store.notify(container)

    async def auto_remove(self, container):
        """--rm: the container has exited and goes (unless a removal is under way)."""
        try:
            async with container.lock:
                if container.state is not State.REMOVING and not container.removed:
                    await self.remove_locked(container, wait_for_links=False)
        except MinictrError as e:
            log.warning("auto-remove of %s failed: %s", container.name, e)

    def finish(self, container):
        """At load: a daemon died while removing this container; finish the job."""
        self.remove_files(container)
        self.store.delete(container)
        # At a start on a full disk too: the daemon must come up (daemon/__init__.py).
        _release_despite_full_disk(container, "network leases", self.networks.container_removed, container.id)

    def sweep(self, known_ids):
        """At load: the directories of containers that have no record (a daemon killed during a
        create, before its row was written) go, in the data root and in the runtime directory."""
        known_runs = {container_id[:16] for container_id in known_ids}
        for name in _entries(self.store.data_dir):
            if name not in known_ids:
                log.info("removing %s: no container of that id", os.path.join(self.store.data_dir, name))
                self._remove_dirs(name, self.store.paths(SimpleNamespace(id=name)))
        for name in _entries(self.store.run_dir):
            if name not in known_runs:
                shutil.rmtree(os.path.join(self.store.run_dir, name), ignore_errors=True)

    def remove_files(self, container):
        """The container's directories: renamed into the trash at once, deleted in the background."""
        self._remove_dirs(container.id, self.store.paths(container))

    def _remove_dirs(self, container_id, paths):
        self.driver.unmount(paths["top"])  # a fuse mount a crash left: never delete through it
        shutil.rmtree(paths["run"], ignore_errors=True)
        doomed = os.path.join(self.store.trash_dir, container_id)
        try:
            os.makedirs(self.store.trash_dir, 0o700, exist_ok=True)  # ENOSPC on a full disk: rmtree below
            os.rename(paths["top"], doomed)
        except FileNotFoundError:
            return
        except OSError:
            shutil.rmtree(paths["top"], ignore_errors=True)
            return
        threading.Thread(target=shutil.rmtree, args=(doomed, True), name="remove-files", daemon=True).start()


async def _despite_full_disk(container, what, release, *args):
    """_release_despite_full_disk in a thread."""
    await asyncio.to_thread(_release_despite_full_disk, container, what, release, *args)


def _release_despite_full_disk(container, what, release, *args):
    """RELEASE(*ARGS); a removal goes on when a full disk refuses it: what it would have freed in
    the database (WHAT) is freed by the next daemon's start."""
    try:
        release(*args)
    except Exception as e:
        if not is_disk_full(e):
            raise
        log.warning("removing %s: its %s stay until the daemon restarts: %s", container.name, what, e)


def _entries(directory):
    """The names of the directories in DIRECTORY: a container's own are directories; the files
    beside them (the store's unsaved.json in the runtime directory) are not the sweep's."""
    try:
        return [entry.name for entry in os.scandir(directory) if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
