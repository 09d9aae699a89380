"""Routes of the Docker Engine API and the small vocabulary handlers answer with."""

import json
import re
from urllib.parse import parse_qs, unquote

from minictr.errors import InvalidArgument
from minictr.spec.schema import decode

_ROUTES = []
_VERSION_PREFIX = re.compile(r"^/v(\d+\.\d+)(?=/)")

# Sections of the Docker Engine API minictr does not implement: any path under them answers 501
# naming the feature (docs/compat.md lists them; tests/unit/test_compat_table.py keeps both true).
# (The swarm's sections answer as a Docker engine in no swarm: api/swarm.py.)
UNSUPPORTED = {
    "plugins": "plugins", "build": "build", "distribution": "distribution", "session": "session", "grpc": "grpc",
}


def api_version(path):
    """The `1.NN` of a `/v1.NN/...` path, or None for an unprefixed one."""
    m = _VERSION_PREFIX.match(path)
    return m.group(1) if m else None


# Single endpoints minictr does not implement, in sections it otherwise has: 501 naming them too.
UNSUPPORTED_ENDPOINTS = [
    ("GET", re.compile(r"^/images/search$"), "image search"),
    ("GET", re.compile(r"^/containers/[^/]+/attach/ws$"), "attach over websocket"),
    ("PUT", re.compile(r"^/volumes/[^/]+$"), "cluster volumes"),
    ("POST", re.compile(r"^/swarm/(init|join)$"), "swarm"),
]


def unsupported(path, method=None):
    """The feature name when `path` (without a version prefix) is in a section or is an endpoint
    minictr does not have, else None."""
    section = path.lstrip("/").split("/", 1)[0]
    if section in UNSUPPORTED:
        return UNSUPPORTED[section]
    for endpoint_method, regex, feature in UNSUPPORTED_ENDPOINTS:
        if method in (None, endpoint_method) and regex.match(path):
            return feature
    return None


def route(method, pattern):
    """Register an async handler for `method` on a path pattern like `/containers/{id}/start`."""
    # `{name}` is one path segment; `{name*}` may span several (image names have slashes).
    regex = re.sub(r"\{(\w+)\*\}", r"(?P<\1>.+)", pattern)
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex) + "$")

    def register(handler):
        # First match wins, so a second handler for the same route would be dead code that only
        # the import order hides: refuse it when the module is imported.
        for known_method, known_regex, known_handler in _ROUTES:
            if known_method == method and known_regex.pattern == regex.pattern:
                raise ValueError(f"duplicate route {method} {pattern}: {known_handler.__module__}."
                                 f"{known_handler.__qualname__} and {handler.__module__}.{handler.__qualname__}")
        _ROUTES.append((method, regex, handler))
        return handler

    return register


def match(method, path):
    """The handler and path parameters for a request, or why there is none: 501 for a section
    minictr does not have, else 404 (Docker answers a wrong method with 404 "page not found" too)."""
    path = _VERSION_PREFIX.sub("", path)
    for route_method, regex, handler in _ROUTES:
        m = regex.match(path)
        if m and (route_method == method or (method == "HEAD" and route_method == "GET")):
            # Clients quote path arguments (docker-py's _url, the docker CLI): decode each one.
            return handler, {name: unquote(value) for name, value in m.groupdict().items()}
    return None, 501 if unsupported(path, method) else 404


class Request:
    def __init__(self, method, target, headers, params, body_reader, services):
        self.method = method
        path, _, query = target.partition("?")
        self.path = path
        self.query = parse_qs(query, keep_blank_values=True)
        self.headers = headers
        self.params = params
        self.services = services
        self._body_reader = body_reader

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default

    def flag(self, name, default=False):
        """Docker's boolean query parameters: 1/true/True, 0/false/False."""
        value = self.arg(name)
        if value is None or value == "":
            return default
        return value.lower() not in ("0", "false", "no")

    def body_chunks(self):
        return self._body_reader()

    async def body(self, limit=None):
        """The whole body; beyond `limit` bytes (announced or sent) a 413, before reading the rest."""
        if limit is not None and _content_length(self.headers) > limit:
            raise BodyTooLarge(limit)
        chunks, size = [], 0
        async for chunk in self._body_reader():
            size += len(chunk)
            if limit is not None and size > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    async def json(self, struct=None):
        """The body as JSON, at most MAX_JSON_BODY bytes and MAX_JSON_DEPTH levels deep; with
        `struct`, decoded as Docker decodes that Engine API type (spec/schema.py): a wrong type
        is a 400 naming the field."""
        data = await self.body(MAX_JSON_BODY)
        if not data:
            return {}
        try:
            body = json.loads(data)
        except RecursionError:  # deeper than the parser goes
            raise _too_deep() from None
        except ValueError as e:
            raise InvalidArgument(f"invalid JSON body: {e}") from None
        _check_depth(body)
        return body if struct is None else decode(body, struct)


# No Engine API body that is JSON comes near these (a create body with every field set is a
# few KB, its deepest field six levels down); the bounds keep a hostile one from costing the
# daemon its memory or its stack.
MAX_JSON_BODY = 4 * 1024 * 1024
MAX_JSON_DEPTH = 64


def _content_length(headers):
    try:
        return int(headers.get("content-length") or 0)
    except ValueError:
        return 0


def _check_depth(value):
    """Refuse a value nested deeper than MAX_JSON_DEPTH (walked level by level, without recursion)."""
    level = [value] if isinstance(value, (list, dict)) else []
    for _ in range(MAX_JSON_DEPTH):
        if not level:
            return
        level = [child for item in level for child in (item.values() if isinstance(item, dict) else item)
                 if isinstance(child, (list, dict))]
    if level:
        raise _too_deep()


def _too_deep():
    return InvalidArgument(f"invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels")


class BodyTooLarge(InvalidArgument):
    """A 413: a body larger than the endpoint takes. The server closes the connection after it
    rather than read the rest."""

    status = 413

    def __init__(self, limit):
        super().__init__(f"request body too large: more than {limit} bytes")


class JSONResponse:
    def __init__(self, obj, status=200):
        self.status = status
        self.body = json.dumps(obj).encode()
        self.content_type = "application/json"


class TextResponse:
    def __init__(self, text, status=200):
        self.status = status
        self.body = text.encode()
        self.content_type = "text/plain; charset=utf-8"


class EmptyResponse:
    def __init__(self, status=204):
        self.status = status
        self.body = b""
        self.content_type = None


class StreamResponse:
    """Headers at once, then the body as the async iterator yields bytes (chunked).

    `wait` depends on this: the docker CLI does not start a container before
    the headers of its wait request have arrived."""

    def __init__(self, chunks, content_type="application/json", status=200):
        self.status = status
        self.chunks = chunks
        self.content_type = content_type


class HijackResponse:
    """Take over the connection (attach, exec): `run(reader, writer, early_bytes)` owns it after
    the 101 UPGRADED (or, for clients that did not ask to upgrade, 200) header."""

    def __init__(self, run, content_type="application/vnd.docker.multiplexed-stream"):
        self.run = run
        self.content_type = content_type


def api_version_before(req, version):
    """Whether the client asked for an API older than `version` (`/v1.41/...` before "1.42"); an
    unprefixed path means the daemon's own version, never older."""
    asked = api_version(req.path)
    return asked is not None and _version_tuple(asked) < _version_tuple(version)


def _version_tuple(version):
    return tuple(int(part) for part in version.split("."))


def stream_content_type(req, tty):
    """The Content-Type of an attach, exec or logs stream, as Docker's: raw-stream with a tty; without
    one the stream is framed (multiplexed), which Docker names from API 1.42 only (older: raw-stream)."""
    if tty or api_version_before(req, "1.42"):
        return "application/vnd.docker.raw-stream"
    return "application/vnd.docker.multiplexed-stream"


def ndjson(obj):
    return json.dumps(obj).encode() + b"\n"


async def spool_body(req):
    """The request body in an unnamed temporary file under the data root (it may be large:
    a layer, an archive for `cp`)."""
    import tempfile

    spool = tempfile.TemporaryFile(dir=req.services.images.tmp_dir)
    try:
        async for chunk in req.body_chunks():
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool
