"""Attach clients and the monitor's control connection (docs/internals.md).

A client is registered before its connection is hijacked, so that a `start` arriving
meanwhile already connects it to the monitor's attach socket and no output is lost.
"""

import asyncio
import errno
import logging
import struct

from minictr.containers.state import State
from minictr.spec.detach_keys import DEFAULT as DEFAULT_DETACH_KEYS
from minictr.spec.detach_keys import Matcher as DetachMatcher
from minictr.spec.detach_keys import parse as detach_keys_parse
from minictr.errors import Conflict, InvalidArgument, MinictrError
from minictr.tasks import spawn

log = logging.getLogger("minictr.containers")


class Attaching:
    """attach and resize of containers (exec has its own, containers/exec.py)."""

    def __init__(self, store):
        self.store = store

    def prepare(self, ref, stdin, stdout, stderr, detach_keys=None):
        """Register an attach client now, before its connection is hijacked, so that a `start`
        arriving meanwhile already connects it to the monitor and no output is lost.
        `detach_keys` (Docker's syntax, default ctrl-p,ctrl-q) end this attach when the
        container has a tty; a bad sequence is InvalidArgument."""
        container = self.store.get(ref)
        keys = detach_keys_parse(detach_keys or DEFAULT_DETACH_KEYS)
        attach = Attach((1 if stdin else 0) | (2 if stdout else 0) | (4 if stderr else 0),
                        tty=bool(container.config.get("Tty")), detach_keys=keys,
                        stdin_once=bool(container.config.get("StdinOnce")),
                        on_detach=lambda: self.store.emit(container, "detach"))
        if container.state is State.RUNNING:
            spawn(attach.connect(self.store.paths(container)["attach"]))
        elif container.state in (State.CREATED, State.EXITED):
            container.pending_attaches.append(attach)
        else:
            attach.done.set()
        # Docker's event for every attach, `run -a`/`-it` included: there it comes before the start.
        self.store.emit(container, "attach")
        return attach

    async def resize(self, ref, height, width):
        """POST /containers/{id}/resize: set the size of a running container's pty (a container
        without one ignores it, as in Docker); the monitor's control connection does it."""
        container = self.store.get(ref)
        if not container.state.alive:
            raise Conflict(f"Container {container.id} is not running")
        if not container.config.get("Tty"):
            return
        if not (0 <= height <= 0xFFFF and 0 <= width <= 0xFFFF):
            raise InvalidArgument(f"invalid terminal size {height}x{width}")
        try:
            answer = await monitor_control(self.store.paths(container)["attach"], f"resize {height} {width}")
        except OSError as e:
            raise Conflict(f"Container {container.id} is not running: {e.strerror or e}") from None
        if answer != "ok":
            raise MinictrError(f"cannot resize container {container.id}: {answer.split(' ', 2)[-1]}")


async def connect_pending(container, socket_path):
    """At a start: connect the clients that attached while the container was not running."""
    pending, container.pending_attaches = container.pending_attaches, []
    for attach in pending:
        await attach.connect(socket_path)


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

    def __init__(self, mask, tty=False, detach_keys=b"", stdin_once=True, on_detach=None,
                 frame_tty_output=False):
        self.mask = mask
        # An exec with a tty started with {"Tty": false}: its raw output goes out as stdout frames.
        self.frame_tty_output = frame_tty_output
        self.on_detach = on_detach  # called when the client's detach keys end this attach
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

    async def _pump_output(self, mon_reader, writer):
        total = 0
        try:
            while data := await mon_reader.read(65536):
                total += len(data)
                if self.frame_tty_output:
                    writer.write(struct.pack(">BxxxI", 1, len(data)))
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
                    if self.on_detach is not None:
                        self.on_detach()
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
