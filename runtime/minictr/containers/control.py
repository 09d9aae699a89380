"""What a user does to an existing container: kill, stop, restart, pause, unpause, update,
rename, remove."""

import asyncio
import os
import signal

from minictr.containers.state import State
from minictr.errors import Conflict
from minictr.spec.names import check_name
from minictr.spec.signals import parse_signal

DEFAULT_STOP_TIMEOUT = 10


class Control:
    def __init__(self, store, lifecycle, deleter, groups, resources):
        self.store = store
        self.lifecycle = lifecycle
        self.deleter = deleter
        self.groups = groups
        self.resources = resources

    async def kill(self, ref, signum=signal.SIGKILL):
        """Send a signal to the container's init; the container is then stopped by hand, so its
        restart policy does not bring it back (as in Docker)."""
        container = self.store.get(ref)
        if container.state is State.RESTARTING:
            self.lifecycle.cancel_restart(container, manually_stopped=True)
            return
        if not container.state.alive:
            raise Conflict(f"Cannot kill container: {ref}: container {container.id} is not running")
        self.store.set_state(container, container.state, manually_stopped=True)
        self.signal_with_event(container, signum)

    def signal_with_event(self, container, signum):
        """Docker's `kill` event, then the signal: `stop` and `rm -f` signal through this as they
        do in Docker (its killWithSignal), so their events say kill before die."""
        self.store.emit(container, "kill", signal=str(int(signum)))
        self.send_signal(container, signum)

    def send_signal(self, container, signum):
        """Signal the container's init (thawing it if paused: a frozen process takes its signal
        only once thawed); nothing when it has ended meanwhile."""
        if container.pid <= 0:
            # It ended while we awaited (stop's timeout ran out as it exited): its pid is 0 now,
            # and kill(0) would signal the daemon's own process group.
            return
        try:
            os.kill(container.pid, signum)
        except ProcessLookupError:
            return
        if container.state is State.PAUSED:
            self.groups.set_freezer(container, False)

    async def stop(self, ref, timeout=None, signal_name=None):
        """Docker's stop: the stop signal, then SIGKILL after `timeout` seconds (the container's
        StopTimeout, else 10; -1 waits forever). Returns False if it was not running (304)."""
        container = self.store.get(ref)
        if container.state is State.RESTARTING:
            self.lifecycle.cancel_restart(container, manually_stopped=True)
            return True
        if not container.state.alive:
            return False
        self.store.set_state(container, container.state, manually_stopped=True)
        signum = parse_signal(signal_name or container.config.get("StopSignal") or "SIGTERM")
        if timeout is None:
            timeout = container.config.get("StopTimeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        self.signal_with_event(container, signum)
        try:
            await asyncio.wait_for(self.lifecycle.wait(container.id), None if timeout < 0 else timeout)
        except asyncio.TimeoutError:
            self.signal_with_event(container, signal.SIGKILL)
            await self.lifecycle.wait(container.id)
        self.store.emit(container, "stop")
        return True

    async def restart(self, ref, timeout=None, signal_name=None):
        """Stop (if running) and start again."""
        container = self.store.get(ref)
        await self.stop(container.id, timeout, signal_name)
        await self.lifecycle.start(container.id)
        self.store.emit(container, "restart")

    async def pause(self, ref):
        """Freeze the container's processes."""
        container = self.store.get(ref)
        async with container.lock:
            if container.state is State.PAUSED:
                raise Conflict(f"Container {container.id} is already paused")
            if container.state is not State.RUNNING:
                raise Conflict(f"Container {container.id} is not running")
            await asyncio.to_thread(self.groups.set_freezer, container, True)
            self.store.set_state(container, State.PAUSED)
            self.store.emit(container, "pause")

    async def unpause(self, ref):
        """Thaw a paused container."""
        container = self.store.get(ref)
        async with container.lock:
            if container.state is not State.PAUSED:
                raise Conflict(f"Container {container.id} is not paused")
            await asyncio.to_thread(self.groups.set_freezer, container, False)
            self.store.set_state(container, State.RUNNING)
            self.store.emit(container, "unpause")

    async def update(self, ref, body):
        """POST /containers/{id}/update: new limits (written live when running) and restart policy,
        persisted; returns the warnings."""
        container = self.store.get(ref)
        async with container.lock:
            host_config = dict(container.host_config)
            groups = self.groups.groups_of(container) if container.state.alive else []
            warnings = self.resources.update(host_config, body, groups)
            self.store.write(container, host_config=host_config)
        self.store.emit(container, "update")
        return warnings

    async def rename(self, ref, new_name):
        """Give the container another name (free, and valid as Docker checks names)."""
        container = self.store.get(ref)
        new_name = check_name(new_name)
        async with container.lock:
            if new_name == container.name:
                raise Conflict("Renaming a container with the same name as its current name")
            self.store.check_name_free(new_name)
            old_name = container.name
            self.store.write(container, name=new_name)
            self.store.emit(container, "rename", oldName="/" + old_name)

    async def remove(self, ref, force=False, volumes=False):
        """`rm`: a running container only with `force` (killed first); `volumes` takes its
        anonymous volumes with it."""
        container = self.store.get(ref)
        if container.state is State.RESTARTING:
            if not force:
                raise Conflict(f"cannot remove container {container.name}: container is restarting: "
                               "stop the container before removing or force remove")
            self.lifecycle.cancel_restart(container)
        if force and container.state.alive:
            self.signal_with_event(container, signal.SIGKILL)
            await self.lifecycle.wait(container.id, "not-running")
            self.lifecycle.cancel_restart(container)
        async with container.lock:
            if container.removed:
                return
            await self.deleter.remove_locked(container, volumes)
