"""The transport: HTTP/1.1 over a Unix socket, just enough of it for the Docker Engine API.

Written on `_socket` and `wire` (JSON on `_json`) alone because the CLI's start-up
time is a large share of `minictr run`: http.client and friends would cost more to
import than this whole module does to run, and even the socket and json modules
above those C modules import enum, re, selectors, … (~12 ms of every CLI start).
"""

import _socket

from minictr import API_VERSION, wire
from minictr.errors import DaemonUnavailable, MinictrError, from_status


class Response:
    def __init__(self, status, headers, sock, buffered):
        self.status = status
        self.headers = headers
        self._sock = sock
        self._buf = buffered
        self._chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        length = headers.get("content-length")
        self._remaining = int(length) if length is not None else None
        self._body = None

    def _fill(self):
        data = self._recv()
        if not data:
            raise MinictrError("the daemon closed the connection mid-response")
        self._buf += data

    def _recv(self):
        try:
            return self._sock.recv(65536)
        except ConnectionError:
            raise MinictrError("the daemon closed the connection mid-response") from None

    def _read_line(self):
        while b"\r\n" not in self._buf:
            self._fill()
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line

    def _read_exact(self, n):
        while len(self._buf) < n:
            self._fill()
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def chunks(self):
        """The body as it arrives (chunked or not)."""
        if self._chunked:
            while True:
                size = int(self._read_line().split(b";")[0], 16)
                if size == 0:
                    self._read_line()
                    return
                yield self._read_exact(size)
                self._read_line()
        elif self._remaining is not None:
            while self._remaining > 0:
                if not self._buf:
                    self._fill()
                data, self._buf = self._buf[: self._remaining], self._buf[self._remaining:]
                self._remaining -= len(data)
                yield data
        else:
            if self._buf:
                yield self._buf
                self._buf = b""
            while data := self._recv():
                yield data

    def read(self):
        if self._body is None:
            self._body = b"".join(self.chunks())
        return self._body

    def json(self):
        return wire.loads(self.read() or b"null")

    def json_lines(self):
        """Newline-delimited JSON objects as they stream in (pulls, loads, imports)."""
        pending = b""
        for chunk in self.chunks():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield wire.loads(line)
        if pending.strip():
            yield wire.loads(pending)


class Client:
    """Talks to one daemon socket; keeps one connection alive for plain requests."""

    def __init__(self, socket_path):
        self.socket_path = socket_path
        self._sock = None

    def _connect(self):
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.connect(self.socket_path)
        except OSError as e:
            sock.close()
            raise DaemonUnavailable(f"cannot connect to the minictr daemon at unix://{self.socket_path}: {e.strerror}") from None
        return sock

    @staticmethod
    def _url(path, query):
        url = f"/v{API_VERSION}{path}"
        if query:
            url += "?" + urlencode(query)
        return url

    def _send(self, sock, method, path, query, body, headers):
        head = [f"{method} {self._url(path, query)} HTTP/1.1", "Host: minictr"]
        if isinstance(body, (dict, list)):
            body = wire.dumps(body).encode()
            head.append("Content-Type: application/json")
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}")
        if hasattr(body, "read"):
            head.append("Transfer-Encoding: chunked")
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            while chunk := body.read(1 << 20):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
            return
        body = body or b""
        if body or method in ("POST", "PUT"):
            head.append(f"Content-Length: {len(body)}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    @staticmethod
    def _read_head(sock):
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                raise MinictrError("the daemon closed the connection without an answer")
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, rest

    def _open(self, method, path, query=None, body=None, headers=None, fresh=False):
        """Send one request and read its status line and headers; the body is left to the caller."""
        reuse = not fresh and self._sock is not None
        if reuse and _closed_by_peer(self._sock):
            # The daemon closed the kept-alive connection while it was idle (it stopped, or
            # restarted): nothing of this request has gone, a fresh connection carries it.
            self._sock.close()
            self._sock = None
            reuse = False
        sock = self._sock if reuse else self._connect()
        try:
            self._send(sock, method, path, query, body, headers)
            status, hdrs, rest = self._read_head(sock)
        except (ConnectionError, MinictrError):
            sock.close()
            self._sock = None
            # The daemon may have received the request and acted on it before the connection
            # broke: only a request that changes nothing is sent again (a second POST /create
            # would make a second container).
            if reuse and method in _IDEMPOTENT:
                return self._open(method, path, query, body, headers, fresh=True)
            raise _lost(method, path) from None
        response = Response(status, hdrs, sock, rest)
        if status >= 400:
            raise from_status(status, _error_message(response.read()))
        return response

    def request(self, method, path, query=None, body=None, headers=None):
        """A whole request and response on the kept-alive connection."""
        if self._sock is None:
            self._sock = self._connect()
        response = self._open(method, path, query, body, headers)
        self._sock = response._sock
        response.read()  # the whole body, so that the connection is free for the next request
        return response

    def stream(self, method, path, query=None, body=None, headers=None):
        """A request whose response is read as it arrives, on a connection of its own."""
        return self._open(method, path, query, body, headers, fresh=True)

    def hijack(self, path, query=None):
        """POST with `Upgrade: tcp`: returns the raw socket and bytes already read past the headers."""
        response = self._open("POST", path, query, None,
                              {"Connection": "Upgrade", "Upgrade": "tcp"}, fresh=True)
        return response._sock, response._buf

    def get(self, path, query=None):
        return self.request("GET", path, query).json()

    def post(self, path, query=None, body=None):
        return self.request("POST", path, query, body)

    def delete(self, path, query=None):
        return self.request("DELETE", path, query)


# Methods that change nothing on the daemon: sent again when a kept-alive connection broke.
_IDEMPOTENT = frozenset({"GET", "HEAD"})


def _closed_by_peer(sock):
    """Whether the other end has closed the (idle) connection: it reads as end-of-file, or fails."""
    try:
        return sock.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _lost(method, path):
    return DaemonUnavailable(f"the daemon closed the connection before answering {method} {path} "
                             "(it may have stopped); the request may or may not have been carried out")


def _error_message(body):
    try:
        return wire.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip() or "unknown error"


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def quote_path(text):
    """Percent-encode everything but RFC 3986's unreserved characters (urllib.parse costs a few ms to import)."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in str(text).encode())


def api_path(template, *args):
    """TEMPLATE (`/containers/{}/json`) with each argument quoted as one path segment, as docker-py's
    `_url`: every path with a name or an id in it is built here, so none can forget the quoting."""
    return template.format(*(quote_path(arg) for arg in args))


def urlencode(query):
    """`k=v&…` for a dict whose values may be lists (repeated keys); None values are left out."""
    pairs = []
    for key, value in query.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None:
                pairs.append(f"{quote_path(key)}={quote_path(item)}")
    return "&".join(pairs)
