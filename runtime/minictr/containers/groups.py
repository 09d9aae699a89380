"""A container's cgroups over its life: where they are, their removal once it has ended,
its freezer (pause), and keeping moves into new groups fast (cgroups.MigrationWarmer)."""

import asyncio
import logging

from minictr.containers.cgroups import MigrationWarmer, freeze
from minictr.errors import Conflict, MinictrError
from minictr.tasks import spawn

log = logging.getLogger("minictr.containers")


class ContainerGroups:
    def __init__(self, cgroups):
        self.cgroups = cgroups
        self._warmer = MigrationWarmer.for_cgroups(cgroups)  # None where moves need no warming

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

    def release(self, container):
        """The container's monitor has gone: its groups are removed in the background
        (`removed` awaits that); returns whether the kernel OOM-killed in them."""
        groups, container.cgroups = self.groups_of(container), []
        oom_killed = self.cgroups.oom_killed(groups)  # before the groups go
        container.cgroup_cleanup = spawn(self.remove(groups))
        return oom_killed

    async def remove(self, groups):
        """Remove `groups` once their last processes have left."""
        # The container's last processes may still be leaving their groups for a moment after
        # the monitor has gone; nobody waits on this but a removal or a restart.
        for _ in range(200):
            groups = self.cgroups.remove(groups)
            if not groups:
                return
            await asyncio.sleep(0.005)
        log.warning("cgroups still busy, left in place: %s", ", ".join(groups))

    async def abandon(self, container):
        """A start failed: the groups it made for the container go at once."""
        groups, container.cgroups = container.cgroups, []
        await self.remove(groups)

    def remove_stale(self, container):
        """Groups an earlier daemon was still removing when it stopped (or gave up on)."""
        self.cgroups.remove(self.cgroups.groups_of(container.id))

    async def removed(self, container):
        """Wait until the groups of the container's last run are gone."""
        if container.cgroup_cleanup is not None:
            await container.cgroup_cleanup
            container.cgroup_cleanup = None

    async def settled(self, containers, timeout):
        """At the daemon's stop: wait (at most `timeout` s) for the removals of ended containers' groups."""
        pending = [c.cgroup_cleanup for c in containers if c.cgroup_cleanup is not None and not c.cgroup_cleanup.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def set_freezer(self, container, frozen):
        """Freeze or thaw the container's processes; Conflict where it has no freezer."""
        freezer_file = self.cgroups.freezer(self.groups_of(container))
        if freezer_file is None:
            raise Conflict("pause is not supported here: the container has no freezer cgroup "
                           "(rootless needs cgroup v2 with delegation; see `minictr info`)")
        try:
            settled = freeze(freezer_file, frozen)
        except FileNotFoundError:
            # Its group went away between the look-up and the write: the container has just exited.
            raise Conflict(f"Container {container.id} is not running") from None
        if not settled:
            raise MinictrError(f"the freezer of container {container.name} did not settle")
