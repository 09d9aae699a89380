"""The exec service: processes started in running containers (`docker exec`).

Each exec is run by a minictr-monitor of its own in exec mode (config key
`exec_pid`, docs/internals.md): it joins the namespaces and cgroups of the
container's init, serves the exec's stdio on its attach socket and records its
exit status, and it is no child of the daemon, so an exec outlives a daemon
restart as a container does. Exec instances themselves live in memory only,
as in Docker, until their container is removed.
"""

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import shutil
import signal
import struct
from dataclasses import dataclass, field

from minictr.containers.config import merge_env, process_env
from minictr.containers.monitor import Monitor, MonitorError, unwatch, watch_exit, write_config
from minictr.containers.attach import Attach, monitor_control
from minictr.containers.state import State
from minictr.containers.users import resolve_user
from minictr.spec.detach_keys import DEFAULT as DEFAULT_DETACH_KEYS, parse as parse_detach_keys
from minictr.errors import CommandNotExecutable, CommandNotFound, Conflict, InvalidArgument, MinictrError, NotFound
from minictr.tasks import spawn

log = logging.getLogger("minictr.exec")

_FINISHED_KEPT = 256

# Docker's words for an exec that could not start; its CLI shows them as they are.
_OCI_PREFIX = "OCI runtime exec failed: exec failed: unable to start container process: "
_SUN_PATH_MAX = 108
_RESIZE_WAIT = 10  # seconds, as Docker's daemon waits for an exec to start before resizing it


@dataclass
class ExecInstance:
    id: str
    container: object  # minictr.containers.store.Container
    argv: list
    env: list
    user: str  # as requested ("" for the container's)
    working_dir: str
    tty: bool
    attach_stdin: bool
    attach_stdout: bool
    attach_stderr: bool
    console_size: list = None
    detach_keys: str = ""
    privileged: bool = False
    framed: bool = None  # the output in Docker's 8-byte frames; set by the start request
    started: bool = False
    running: bool = False
    never_ran: bool = False  # its command could not be executed: Docker logs no exec_die then
    exit_code: int = None
    pid: int = 0
    monitor_pid: int = 0
    pidfd: int = -1
    run_dir: str = ""
    dir_fd: int = -1  # run_dir, kept open when its socket path is too long to connect to
    process_fd: int = -1  # a pidfd of the exec's process, for a probe that may have to be killed
    finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    ready: asyncio.Event = field(default_factory=asyncio.Event, repr=False)  # running, or failed to

    @property
    def mask(self):
        return (1 if self.attach_stdin else 0) | (2 if self.attach_stdout else 0) | (4 if self.attach_stderr else 0)


class ExecService:
    def __init__(self, containers):
        self.containers = containers
        self._execs = {}
        self._layers = {}  # image id -> its layer directories

    # ---- create, inspect --------------------------------------------------------------------

    def create(self, ref, body, warm=True):
        """POST /containers/{id}/exec: a new exec instance for a running container; returns its id.
        WARM: keep cgroup moves fast for the start that usually follows at once (not for a probe:
        no user waits for it, and the warmer costs CPU while it runs)."""
        container = self.containers.get(ref)
        self._check_running(container)
        if warm:
            self.containers.warm_migration()
        self._forget_removed()
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd:
            raise InvalidArgument("No exec command specified")
        instance = ExecInstance(
            id=secrets.token_hex(32), container=container, argv=list(cmd),
            env=merge_env(container.config["Env"] or [], body.get("Env") or [], container.config["Hostname"]),
            user=body.get("User") or "",
            working_dir=body.get("WorkingDir") or container.config["WorkingDir"] or "/",
            tty=bool(body.get("Tty")), attach_stdin=bool(body.get("AttachStdin")),
            attach_stdout=bool(body.get("AttachStdout")), attach_stderr=bool(body.get("AttachStderr")),
            console_size=body.get("ConsoleSize"), detach_keys=body.get("DetachKeys") or "",
            privileged=bool(body.get("Privileged")))
        if instance.tty and "TERM" not in {e.partition("=")[0] for e in instance.env}:
            instance.env.append("TERM=xterm")  # Docker sets it for a tty too
        instance.env = process_env(instance.env)
        parse_detach_keys(instance.detach_keys or DEFAULT_DETACH_KEYS)  # InvalidArgument now, not at start
        if not instance.working_dir.startswith("/"):
            raise InvalidArgument(f"the working directory '{instance.working_dir}' is invalid, "
                                  "it needs to be an absolute path")
        self._execs[instance.id] = instance
        self.containers.emit(container, "exec_create: " + _event_command(instance.argv), execID=instance.id)
        return instance.id

    def create_probe(self, container, argv):
        """A health probe's exec (moby's daemon/health.go), claimed: the container's user, working
        directory and environment, stdout and stderr for the daemon, no stdin."""
        body = {"Cmd": argv, "AttachStdout": True, "AttachStderr": True}
        return self.claim(self.create(container.id, body, warm=False))

    def get(self, exec_id):
        instance = self._execs.get(exec_id)
        if instance is None or instance.container.removed:
            self._execs.pop(exec_id, None)
            raise NotFound(f"No such exec instance: {exec_id}")
        return instance

    def inspect(self, exec_id):
        """GET /exec/{id}/json, in Docker's shape."""
        instance = self.get(exec_id)
        self._read_exit(instance)
        return {
            "ID": instance.id, "Running": instance.running, "ExitCode": instance.exit_code,
            "ProcessConfig": {"tty": instance.tty, "entrypoint": instance.argv[0],
                              "arguments": instance.argv[1:], "privileged": instance.privileged,
                              "user": instance.user},
            "OpenStdin": instance.attach_stdin, "OpenStderr": instance.attach_stderr,
            "OpenStdout": instance.attach_stdout, "CanRemove": False,
            "ContainerID": instance.container.id, "DetachKeys": instance.detach_keys, "Pid": instance.pid,
        }

    def running_ids(self, container_id):
        """The ids of the container's running execs (its inspect's ExecIDs)."""
        return [i for i, e in self._execs.items() if e.container.id == container_id and e.running]

    def _forget_removed(self):
        for exec_id in [i for i, e in self._execs.items() if e.container.removed]:
            del self._execs[exec_id]
        # Finished execs stay inspectable for a while, as in Docker, but not forever: a
        # container exec'd into every second must not grow the daemon.
        finished = [i for i, e in self._execs.items() if e.started and not e.running]
        for exec_id in finished[:max(0, len(finished) - _FINISHED_KEPT)]:
            del self._execs[exec_id]

    @staticmethod
    def _check_running(container):
        if container.state is State.PAUSED:
            raise Conflict(f"Container {container.id} is paused, unpause the container before exec")
        if container.state is State.RESTARTING:
            raise Conflict(f"Container {container.id} is restarting, wait until the container is running")
        if container.state is not State.RUNNING or container.removed:
            raise Conflict(f"container {container.id} is not running")

    # ---- start ------------------------------------------------------------------------------

    def claim(self, exec_id):
        """Check that an exec may start now, and mark it started: POST /exec/{id}/start answers
        these errors as JSON, before the connection is hijacked."""
        instance = self.get(exec_id)
        if instance.running:
            raise Conflict(f"Error: Exec command {exec_id} is already running")
        if instance.started:
            raise Conflict(f"Error: Exec command {exec_id} has already run")
        self._check_running(instance.container)
        instance.started = True
        return instance

    async def start_detached(self, instance):
        """Run a claimed exec with no client attached; raises if its command cannot start."""
        await self._run(instance, None)

    async def start_captured(self, instance, capture):
        """Run a claimed exec whose output goes to `capture` (an OutputCapture) rather than to a
        client; raises if its command cannot start."""
        await self._run(instance, capture)

    def kill(self, instance):
        """SIGKILL a running exec's process (a health probe past its timeout), through the pidfd
        taken while it waited for its start: never another process that got its pid."""
        if instance.process_fd >= 0 and instance.running:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(instance.process_fd, signal.SIGKILL)

    async def serve(self, instance, reader, writer, early):
        """Run a claimed exec with the hijacked client connection as its stdio (Docker's frames
        when `instance.framed`, raw bytes if not); returns when its output has ended."""
        framed = not instance.tty if instance.framed is None else instance.framed
        attach = Attach(instance.mask, tty=instance.tty, frame_tty_output=framed and instance.tty,
                        detach_keys=parse_detach_keys(instance.detach_keys or DEFAULT_DETACH_KEYS),
                        on_detach=lambda: self.containers.emit(instance.container, "exec_detach",
                                                               execID=instance.id))
        try:
            await self._run(instance, attach)
        except MinictrError as e:
            # Docker writes the reason into the stream (the CLI prints it), then ends it.
            message = f"{e}\r\n".encode()
            writer.write(struct.pack(">BxxxI", 2, len(message)) + message if framed else message)
            await writer.drain()
            writer.close()
            return
        await attach.serve(reader, writer, early)

    async def _run(self, instance, attach):
        container = instance.container
        try:
            paths = await asyncio.to_thread(self._prepare, instance)
            await self.containers.migration_ready()
            monitor = await Monitor.spawn(paths["config"])
        except MonitorError as e:
            self._fail(instance, 126)
            raise MinictrError(_OCI_PREFIX + f"{e.strerror}: unknown") from None
        except BaseException:
            self._fail(instance, 126)
            raise
        instance.pid, instance.monitor_pid, instance.running = monitor.container_pid, monitor.monitor_pid, True
        if isinstance(attach, OutputCapture):
            instance.process_fd = os.pidfd_open(instance.pid)  # it waits for `start`: it is this process
        instance.ready.set()
        try:
            if attach is not None:
                await attach.connect(self._connectable(instance, paths["attach"]))
            # Docker logs exec_start before its runtime executes the command, whether it then runs or not.
            self.containers.emit(container, "exec_start: " + _event_command(instance.argv), execID=instance.id)
            await monitor.start()
        except MonitorError as e:
            # The monitor records 126/127 in the exit file and leaves.
            instance.never_ran = True
            self._watch_monitor(instance)
            await instance.finished.wait()
            raise _exec_error(instance.argv[0], e) from None
        except BaseException:
            self._watch_monitor(instance)
            raise
        # Watched only once started, so that a command that ends at once dies after its start.
        self._watch_monitor(instance)
        log.debug("exec %s started in %s: pid %d", instance.id[:12], container.id[:12], instance.pid)

    def _prepare(self, instance):
        """The exec's run dir and monitor config; raises MinictrError for what a user got wrong."""
        container = instance.container
        self._check_running(container)
        top = os.path.join(self.containers.data_dir, container.id)
        user = instance.user or container.config["User"]
        uid, gid, groups = resolve_user(user, [os.path.join(top, "diff")] + self._layer_dirs(container.image_id),
                                        container.host_config.get("GroupAdd"))
        instance.run_dir = os.path.join(self.containers.run_dir, container.id[:16], "e", instance.id[:12])
        os.makedirs(instance.run_dir, 0o700, exist_ok=True)
        paths = {"config": os.path.join(instance.run_dir, "monitor.conf"),
                 "attach": os.path.join(instance.run_dir, "attach.sock"),
                 "exit": os.path.join(instance.run_dir, "exit")}
        entries = [("id", container.id), ("exec_pid", container.pid), ("cwd", instance.working_dir),
                   ("uid", uid), ("gid", gid)]
        entries += [("group", g) for g in groups]
        entries += [("arg", a) for a in instance.argv] + [("env", e) for e in instance.env]
        entries += [("cgroup", group) for group in self.containers.cgroups.groups_of(container.id)]
        entries += self.containers.confinement.monitor_entries(container.host_config, instance.privileged)
        entries += self.containers.resources.rlimit_entries(container.host_config)
        entries.append(("stdin", "1" if instance.attach_stdin else "0"))
        if instance.tty:
            entries.append(("tty", "1"))
            if instance.console_size and len(instance.console_size) == 2 and all(instance.console_size):
                entries.append(("tty_size", *instance.console_size))
        entries += [("exit", paths["exit"]), ("attach", paths["attach"])]
        write_config(paths["config"], entries)
        return paths

    def _layer_dirs(self, image_id):
        """An image's layer directories, which never change for its id: looked up once, not at every
        exec (a container probed every second execs every second)."""
        if image_id not in self._layers:
            if len(self._layers) > 256:
                self._layers.clear()
            self._layers[image_id] = list(self.containers.images.resolve(image_id).layer_dirs)
        return self._layers[image_id]

    def _fail(self, instance, code):
        instance.running = False
        instance.exit_code = code
        instance.ready.set()
        instance.finished.set()
        self._remove_run_dir(instance)

    # ---- exit -------------------------------------------------------------------------------

    def _watch_monitor(self, instance):
        instance.pidfd = watch_exit(instance.monitor_pid, self._on_monitor_exit, instance)

    def _on_monitor_exit(self, instance):
        instance.pidfd = unwatch(instance.pidfd)
        self._read_exit(instance)
        if instance.running:  # the monitor died without a word (killed): Docker's 255 then
            instance.running, instance.exit_code = False, 255
        if not instance.container.removed and not instance.never_ran:
            self.containers.emit(instance.container, "exec_die", execID=instance.id,
                                 exitCode=str(instance.exit_code))
        instance.finished.set()
        self._remove_run_dir(instance)

    def _read_exit(self, instance):
        """The monitor writes the exit file before it ends the output streams: a client that saw
        the end of the stream finds the exit code here at once, with no race with the pidfd."""
        if not instance.running:
            return
        try:
            with open(os.path.join(instance.run_dir, "exit")) as f:
                code = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return
        instance.running, instance.exit_code = False, code

    @staticmethod
    def _remove_run_dir(instance):
        if instance.process_fd >= 0:
            os.close(instance.process_fd)
            instance.process_fd = -1
        if instance.dir_fd >= 0:
            os.close(instance.dir_fd)
            instance.dir_fd = -1
        if instance.run_dir:
            _remove_run_dir(instance.run_dir)

    @staticmethod
    def _connectable(instance, path):
        """PATH, or the same socket through /proc/self/fd of its directory when PATH is too long
        for sun_path (as the monitor binds it)."""
        if len(path) < _SUN_PATH_MAX:
            return path
        if instance.dir_fd < 0:
            instance.dir_fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return f"/proc/self/fd/{instance.dir_fd}/{os.path.basename(path)}"

    # ---- resize -----------------------------------------------------------------------------

    async def resize(self, exec_id, height, width):
        """POST /exec/{id}/resize: the monitor's control channel sets the exec's pty size."""
        instance = self.get(exec_id)
        if not instance.ready.is_set():
            # A client resizes right after its start request, which may still be setting the
            # exec up: Docker waits up to 10 s for the exec to run rather than refuse the size.
            try:
                await asyncio.wait_for(instance.ready.wait(), _RESIZE_WAIT)
            except TimeoutError:
                raise Conflict(f"Exec {exec_id} is not running: timeout waiting for exec session ready") from None
        if not instance.running:
            raise Conflict(f"Exec {exec_id} is not running")
        if not instance.tty:
            return
        path = self._connectable(instance, os.path.join(instance.run_dir, "attach.sock"))
        try:
            answer = await monitor_control(path, f"resize {height} {width}")
        except OSError:
            raise Conflict(f"Exec {exec_id} is not running") from None
        if answer.startswith("error"):
            raise MinictrError(f"cannot resize exec {exec_id}: {answer.split(' ', 2)[-1]}")


class OutputCapture:
    """An exec's stdout and stderr as the daemon keeps a health probe's: combined, the first
    `limit` bytes (moby's limitedBuffer), `...` appended when more came. Connected to the exec's
    monitor before its start, as an attach client is, so that nothing is missed."""

    mask = 2 | 4  # stdout and stderr, no stdin

    def __init__(self, limit):
        self.limit = limit
        self.kept = bytearray()
        self.truncated = False
        self.done = asyncio.Event()  # the output has ended

    async def connect(self, socket_path):
        try:
            reader, writer = await asyncio.open_unix_connection(socket_path)
            writer.write(bytes([self.mask]))
            await writer.drain()
        except OSError as e:
            log.warning("capturing the output of an exec at %s: %s", socket_path, e)
            self.done.set()
            return
        spawn(self._read(reader, writer))

    async def _read(self, reader, writer):
        try:
            while True:
                header = await reader.readexactly(8)  # Docker's frame: stream, 0, 0, 0, length
                self._keep(await reader.readexactly(int.from_bytes(header[4:], "big")))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.done.set()

    def _keep(self, data):
        room = self.limit - len(self.kept)
        self.kept += data[:max(room, 0)]
        self.truncated = self.truncated or len(data) > room

    def text(self):
        return self.kept.decode(errors="replace") + ("..." if self.truncated else "")


def _remove_run_dir(path):
    """An exec's run dir holds the monitor's files only: unlinked by name, cheaper than rmtree's walk."""
    for name in ("monitor.conf", "attach.sock", "exit"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(path, name))
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def _exec_error(command, error):
    """A failed execve in Docker's words, with the class that picks the CLI's exit code."""
    if error.errno == errno.ENOENT:
        return CommandNotFound(_OCI_PREFIX + f'exec: "{command}": executable file not found in $PATH: unknown')
    if error.errno in (errno.EACCES, errno.ENOEXEC):
        return CommandNotExecutable(_OCI_PREFIX + f'exec: "{command}": permission denied: unknown')
    return MinictrError(_OCI_PREFIX + f"{error.strerror}: unknown")


def _event_command(argv):
    """The command in an exec event's Action as Docker's daemon writes it: the program, a space, the
    arguments joined (so `exec_create: ls ` ends with a space when there are none)."""
    return argv[0] + " " + " ".join(argv[1:])
