"""A container's run: start (its monitor spawned, its network hooked up), its exit, its
restart policy's back-off, and waiting for any of these."""

import asyncio
import contextlib
import errno
import logging
import os
import time

from minictr.containers.attach import connect_pending
from minictr.containers.monitor import Monitor, MonitorError, stop_monitor, unwatch, watch_exit, write_config
from minictr.containers.restart_policy import restart_delay, restarts_with_daemon
from minictr.containers.state import State, check_transition
from minictr.containers.users import resolve_user
from minictr.spec.times import rfc3339
from minictr.errors import CommandNotExecutable, CommandNotFound, InvalidArgument, MinictrError
from minictr.tasks import spawn

log = logging.getLogger("minictr.containers")


class Lifecycle:
    def __init__(self, store, images, driver, networks, ports, groups, resources, deleter, monitor_config):
        self.store = store
        self.images = images
        self.driver = driver
        self.networks = networks
        self.ports = ports  # published ports (networks/ports.py ContainerPorts), or None
        self.groups = groups
        self.resources = resources
        self.deleter = deleter
        self.monitor_config = monitor_config

    def reconcile(self, container, monitor):
        """At the daemon's start, with the container's live monitor (monitor.find_monitors) or
        None: the monitor is the truth, whatever the row says. A container whose monitor lives
        carries on under it (live restore), even one a killed daemon had not yet recorded as
        started; one that ended while no daemon watched gets its exit recorded; restart
        policies apply as at a daemon's start in Docker."""
        if monitor is not None and container.state is not State.REMOVING:
            self._adopt(container, monitor)
            return
        if monitor is not None:
            stop_monitor(monitor)  # a removal was under way: it is finished below
        if container.state.alive:
            self.watch_monitor(container)  # by its recorded pid (a run dir that moved); else its exit
            return
        self.groups.remove_stale(container)
        if container.state is State.RESTARTING:
            self._schedule_restart(container, 0)
        elif container.state is State.EXITED and restarts_with_daemon(container):
            self._schedule_restart(container, 0)
        elif container.state is State.REMOVING:
            self.deleter.finish(container)

    def _adopt(self, container, monitor):
        """Watch the container's live monitor; a row that does not say so yet (the daemon died
        between the monitor's `start` and its record) is brought up to date."""
        pids = {"pid": monitor.container_pid, "monitor_pid": monitor.monitor_pid}
        if not container.state.alive:
            log.warning("container %s runs, though its record said %s: recorded as running",
                        container.name, container.state.value)
            self.store.set_state(container, State.RUNNING, started_at=rfc3339(), error="",
                                 manually_stopped=False, **pids)
        elif (container.pid, container.monitor_pid) != tuple(pids.values()):
            self.store.write(container, **pids)
        self.watch_monitor(container)

    # ---- start ------------------------------------------------------------------------------

    async def start(self, ref):
        """Start a created or exited container; returns False if it was already running (304)."""
        container = self.store.get(ref)
        async with container.lock:
            if container.state is State.RUNNING:
                return False
            check_transition(container.name, container.state, State.RUNNING)
            self.cancel_restart(container)
            container.backoff = 0.0
            try:
                await self._start_locked(container)
            except MinictrError:
                if container.host_config.get("AutoRemove"):
                    await self.deleter.remove_locked(container)
                raise
        return True

    async def _start_locked(self, container, restart_count=0):
        self.groups.warm_migration()
        image = await asyncio.to_thread(self.images.resolve, container.image_id)
        paths = self.store.paths(container)
        user = resolve_user(container.config["User"], [os.path.join(paths["top"], "diff")] + image.layer_dirs,
                            container.host_config.get("GroupAdd"))
        os.makedirs(paths["run"], 0o700, exist_ok=True)
        for stale in (paths["exit"], paths["attach"]):
            if os.path.lexists(stale):
                os.unlink(stale)
        await self.groups.removed(container)
        container.cgroups = self.resources.create_groups(container.id, container.host_config)
        monitor, network = await self._spawn_monitor(container, image, paths, user)
        container.pid, container.monitor_pid = monitor.container_pid, monitor.monitor_pid
        await self._connect_network(container, monitor, network)
        try:
            await connect_pending(container, paths["attach"])
            await monitor.start()
        except MonitorError as e:
            # The monitor records 126/127 and leaves. A command that never ran is not restarted
            # by the policy (as in Docker); wait until _on_monitor_exit has marked it exited.
            container.error = str(_start_error(e))
            container.start_failed = True
            exits = container.exits
            self.watch_monitor(container)
            await self.store.until(container, lambda: container.exits > exits or container.removed)
            raise _start_error(e) from None
        except BaseException:
            self.watch_monitor(container)
            raise
        self.store.set_state(container, State.RUNNING, pid=container.pid, monitor_pid=container.monitor_pid,
                             started_at=rfc3339(), error="", restart_count=restart_count,
                             manually_stopped=False, oom_killed=False)
        self.store.emit(container, "start")
        # Watched only once running: an instant command (`true`) may have ended already, and
        # its exit handled before its start would leave it "running" with no process.
        self.watch_monitor(container)

    async def _spawn_monitor(self, container, image, paths, user):
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
                write_config(paths["config"], self.monitor_config.entries(container, paths, user, root, _pid_if_alive))
                await self.groups.migration_ready()
                monitor = await Monitor.spawn(paths["config"], set_up_network)
            finally:
                await asyncio.to_thread(self.driver.created, paths["top"])
        except BaseException as e:
            if network is not None:
                await self._abandon_network(container, network)
            await self.groups.abandon(container)
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
            await self.groups.abandon(container)
            if isinstance(e, OSError):
                raise MinictrError(f"setting up the network of {container.name}: {e}") from None
            raise

    async def _abandon_network(self, container, setting_up):
        """The start failed while the container's network was being set up: once that is done
        (or failed: its namespace may be gone), release what it made."""
        with contextlib.suppress(Exception):
            await setting_up
        await asyncio.to_thread(self.networks.container_stopped, container.id)

    # ---- exit -------------------------------------------------------------------------------

    def watch_monitor(self, container):
        container.pidfd = watch_exit(container.monitor_pid, self._on_monitor_exit, container)

    def _on_monitor_exit(self, container):
        container.pidfd = unwatch(container.pidfd)
        oom_killed = self.groups.release(container)
        if container.removed or container.state is State.REMOVING:
            self._release_network(container)
            spawn(self.store.notify(container))
            return
        exit_code, finished_ns = self._read_exit_file(container)
        restart_in = restart_delay(container, exit_code, finished_ns)
        state = State.RESTARTING if restart_in is not None else State.EXITED
        container.exits += 1
        self.store.set_state(container, state, pid=0, monitor_pid=0, exit_code=exit_code,
                             finished_at=rfc3339(finished_ns), error=container.error, oom_killed=oom_killed)
        self.store.emit(container, "die", exitCode=str(exit_code))
        # After `die`, as Docker 20.10 logs them (daemon/monitor.go: die, then Cleanup's network
        # disconnects); still before any waiter runs, so a `wait` finds the ports and addresses freed.
        self._release_network(container)
        if restart_in is not None:
            self._schedule_restart(container, restart_in)
        elif container.host_config.get("AutoRemove"):
            spawn(self.deleter.auto_remove(container))

    def _release_network(self, container):
        if self.ports:
            self.ports.container_stopped(container.id)  # listeners closed, connections ended
        try:
            self.networks.container_stopped(container.id)
        except Exception as e:  # a link that will not go: reconciled at the next start
            log.warning("releasing the network of %s: %s", container.name, e)

    def _read_exit_file(self, container):
        try:
            with open(self.store.paths(container)["exit"]) as f:
                code, finished = f.read().split()[:2]
            return int(code), int(finished)
        except (OSError, ValueError):
            # The monitor died without a word (killed): Docker reports such a container as 255.
            return 255, time.time_ns()

    # ---- restart policies -------------------------------------------------------------------

    def _schedule_restart(self, container, delay):
        if container.state is not State.RESTARTING:
            self.store.set_state(container, State.RESTARTING)
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
                    self.store.set_state(container, State.EXITED, error=str(e))

    def cancel_restart(self, container, **columns):
        """A stop, kill or remove ends a pending restart; the container stays exited (with
        `columns` written in the same change)."""
        if container.restart_task is not None:
            container.restart_task.cancel()
            container.restart_task = None
        if container.state is State.RESTARTING:
            self.store.set_state(container, State.EXITED, **columns)

    # ---- wait -------------------------------------------------------------------------------

    async def wait(self, ref, condition="not-running"):
        """Block until the container meets `condition`; returns its exit code."""
        container = self.store.get(ref)
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition!r}")
        # Counted, not watched: a container that starts and exits at once may pass through
        # `running` between two wake-ups of this waiter.
        exits_before = container.exits
        async with container.changed:
            while True:
                if condition == "removed" and container.removed:
                    break
                if condition == "not-running" and not container.state.alive:
                    break
                if condition == "next-exit" and container.exits > exits_before:
                    break
                await container.changed.wait()
        return container.exit_code


def _pid_if_alive(container):
    """The pid of a container whose namespaces another one joins, or 0 when it is not running."""
    return container.pid if container.state.alive else 0


def _start_error(error):
    """A monitor error in the words a Docker user knows, with the class that picks the exit code."""
    message = error.strerror or str(error)
    if error.errno == errno.ENOENT and message.startswith("exec"):
        return CommandNotFound(f"failed to create task for container: {message}: executable file not found in $PATH")
    if error.errno in (errno.EACCES, errno.ENOEXEC) and message.startswith("exec"):
        return CommandNotExecutable(f"failed to create task for container: {message}: permission denied")
    return MinictrError(f"failed to create task for container: {message}")
