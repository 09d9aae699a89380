"""The API server: HTTP/1.1 on a Unix socket, h11 for the protocol, asyncio for the I/O.

h11 rather than a framework because attach and exec hijack the connection:
after the request we own the raw stream, must answer `101 UPGRADED` ourselves,
and must keep writing after the client half-closes (the docker CLI shuts its
write side when it has no stdin to send). asyncio's stream protocol keeps the
transport open on EOF, which is exactly that.
"""

import asyncio
import logging
import os

import h11

from minictr import API_VERSION, MIN_API_VERSION, __version__
from minictr.api import router
from minictr.db import is_disk_full
from minictr.errors import MinictrError, NoSpace, status_of

log = logging.getLogger("minictr.api")

_COMMON_HEADERS = [
    ("Api-Version", API_VERSION),
    ("Docker-Experimental", "false"),
    ("Ostype", "linux"),
    ("Server", f"minictr/{__version__}"),
]


class Connection:
    def __init__(self, reader, writer, services):
        self.reader = reader
        self.writer = writer
        self.services = services
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)

    async def next_event(self):
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(65536)
            self.h11.receive_data(data)

    async def send(self, *events):
        for event in events:
            data = self.h11.send(event)
            if data:
                self.writer.write(data)
        await self.writer.drain()

    async def serve(self):
        try:
            while True:
                event = await self.next_event()
                if not isinstance(event, h11.Request):
                    return
                if await self.handle(event) == "hijacked":
                    return
                if self.h11.our_state is h11.MUST_CLOSE or self.h11.their_state is h11.MUST_CLOSE:
                    return
                # Read what is left of the request body, if the handler did not.
                while self.h11.their_state is h11.SEND_BODY:
                    if isinstance(await self.next_event(), h11.ConnectionClosed):
                        return
                if self.h11.their_state is h11.DONE and self.h11.our_state is h11.DONE:
                    self.h11.start_next_cycle()
                else:
                    return
        except (h11.RemoteProtocolError, ConnectionError):
            pass
        finally:
            self.writer.close()

    async def body_chunks(self):
        while self.h11.their_state is h11.SEND_BODY:
            event = await self.next_event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return

    async def handle(self, request):
        method = request.method.decode()
        target = request.target.decode()
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        log.debug("%s %s", method, target)
        path = target.partition("?")[0]
        handler, params = router.match(method, path)
        try:
            _check_version(router.api_version(path))
            if handler is None and params == 501:
                bare = router._VERSION_PREFIX.sub("", path)
                raise _RouteError(501, f"minictr does not support {router.unsupported(bare, method)}: {bare}")
            if handler is None:
                raise _RouteError(params, f"page not found: {method} {path}")
            req = router.Request(method, target, headers, params, self.body_chunks, self.services)
            response = await handler(req)
        except MinictrError as e:
            response = router.JSONResponse({"message": str(e)}, status_of(e))
        except _RouteError as e:
            response = router.JSONResponse({"message": str(e)}, e.status)
        except Exception as e:
            response = self.unexpected(method, target, e)
        if isinstance(response, router.HijackResponse):
            await self.hijack(headers, response)
            return "hijacked"
        if method == "HEAD":
            response.body = b""
        await self.respond(response)
        return None

    def unexpected(self, method, target, error):
        """An error no service turned into a MinictrError: a full disk is the user's to fix, told
        plainly; anything else is a bug: 500, and the trace in the log."""
        if is_disk_full(error):
            path = getattr(error, "filename", None) or self.services.db.path
            log.warning("%s %s: %s", method, target, error)
            return router.JSONResponse({"message": str(NoSpace(path))}, 500)
        log.exception("%s %s failed", method, target)
        return router.JSONResponse({"message": f"internal error: {error}"}, 500)

    async def respond(self, response):
        headers = list(_COMMON_HEADERS)
        if response.content_type:
            headers.append(("Content-Type", response.content_type))
        headers += getattr(response, "headers", [])  # e.g. X-Docker-Container-Path-Stat
        if response.status == 413:
            # The rest of a body too large is not read: closing is the only way to skip it.
            headers.append(("Connection", "close"))
        if isinstance(response, router.StreamResponse):
            try:
                await self.send(h11.Response(status_code=response.status, headers=headers))
                async for chunk in response.chunks:
                    if chunk:
                        await self.send(h11.Data(data=chunk))
            finally:
                # A client gone mid-stream: the generator releases what it holds now (a
                # container's mount, its lock), not whenever it is collected.
                if hasattr(response.chunks, "aclose"):
                    await response.chunks.aclose()
            await self.send(h11.EndOfMessage())
            return
        headers.append(("Content-Length", str(len(response.body))))
        await self.send(h11.Response(status_code=response.status, headers=headers))
        if response.body:
            await self.send(h11.Data(data=response.body))
        await self.send(h11.EndOfMessage())

    async def hijack(self, headers, response):
        upgrade = "upgrade" in headers.get("connection", "").lower()
        if upgrade:
            head = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        else:
            head = "HTTP/1.1 200 OK\r\n"
        head += f"Content-Type: {response.content_type}\r\nApi-Version: {API_VERSION}\r\n\r\n"
        self.writer.write(head.encode())
        await self.writer.drain()
        early, _ = self.h11.trailing_data
        await response.run(self.reader, self.writer, bytes(early))


def _version_tuple(version):
    return tuple(int(part) for part in version.split("."))


def _check_version(version):
    """Docker's version middleware: a /v1.NN/ prefix outside [MIN_API_VERSION, API_VERSION] is a 400."""
    if version is None:
        return
    if _version_tuple(version) > _version_tuple(API_VERSION):
        raise _RouteError(400, f"client version {version} is too new. Maximum supported API version is {API_VERSION}")
    if _version_tuple(version) < _version_tuple(MIN_API_VERSION):
        raise _RouteError(400, f"client version {version} is too old. Minimum supported API version is "
                               f"{MIN_API_VERSION}, please upgrade your client to a newer version")


class _RouteError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


async def serve(socket_path, services):
    """Listen on the Unix socket (mode 0600) until cancelled."""
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(
            lambda r, w: Connection(r, w, services).serve(), path=socket_path)
    finally:
        os.umask(old_umask)
    return server

