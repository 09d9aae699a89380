"""Container logs: the json-file log the monitor writes, read back as Docker's `logs` does.

The file is the truth (the monitor writes it while the daemon is down), so
nothing here keeps state between requests. The monitor rotates the log itself
(`<log>` → `<log>.1` → … `<log>.{max-file - 1}`); a reader keeps the files it has
open and finds its way to newer ones by inode, so a rotation between two reads
loses nothing that rotation did not drop.
"""

import asyncio
import calendar
import json
import os
import time
from dataclasses import dataclass

from minictr.errors import InvalidArgument, MinictrError
from minictr.spec.times import rfc3339

JSON_FILE, NONE = "json-file", "none"
# json-file options Docker knows; minictr implements max-size and max-file.
_DOCKER_JSON_FILE_OPTS = {"compress", "labels", "labels-regex", "env", "env-regex", "tag"}
_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_FOLLOW_POLL = 0.05  # seconds between looks at a followed file that has nothing new
_BATCH = 256 * 1024  # bytes read per step: a slow client slows only its own reader


class LogsNotSupported(MinictrError):
    """The container's logging driver keeps nothing to read (Docker answers 501)."""

    status = 501


# ---- the logging driver's settings ---------------------------------------------------------


# The drivers built into Docker 20.10 on Linux (daemon/logdrivers_linux.go).
_DOCKER_LOG_DRIVERS = {"awslogs", "fluentd", "gcplogs", "gelf", "journald", "json-file", "local", "logentries",
                       "none", "splunk", "syslog"}


@dataclass(frozen=True)
class LogSettings:
    driver: str
    max_size: int = 0  # bytes; 0: never rotated
    max_file: int = 1


def log_settings(host_config):
    """The validated HostConfig.LogConfig; raises InvalidArgument for what minictr cannot do."""
    log_config = (host_config or {}).get("LogConfig") or {}
    driver = log_config.get("Type") or JSON_FILE
    options = log_config.get("Config") or {}
    if driver == NONE:
        return LogSettings(NONE)
    if driver not in _DOCKER_LOG_DRIVERS:
        # Docker 20.10 looks an unknown name up as a logging plugin, and words its absence so.
        raise InvalidArgument(f'error looking up logging plugin {driver}: plugin "{driver}" not found')
    if driver != JSON_FILE:
        raise InvalidArgument(f'logging driver "{driver}" is not supported: minictr has json-file and none')
    for key in options:
        if key in _DOCKER_JSON_FILE_OPTS:
            raise InvalidArgument(f"log opt '{key}' of the json-file log driver is not supported by minictr")
        if key not in ("max-size", "max-file"):
            raise InvalidArgument(f"unknown log opt '{key}' for json-file log driver")
    max_size = 0
    if "max-size" in options:
        max_size = parse_size(options["max-size"])
        if max_size <= 0:
            raise InvalidArgument("max-size must be a positive number")
    max_file = 1
    if "max-file" in options:
        try:
            max_file = int(options["max-file"])
        except ValueError:
            raise InvalidArgument(f"max-file: not a number: {options['max-file']!r}") from None
        if max_file < 1:
            raise InvalidArgument("max-file cannot be less than 1")
    return LogSettings(JSON_FILE, max_size, max_file)


def parse_size(text):
    """Docker's max-size (go-units FromHumanSize): a number and an optional decimal unit,
    k m g t p, case-insensitive, with an optional `b` or `ib` after it (10m, 1.5MB, 20KiB)."""
    text = str(text).strip()
    end = len(text)
    while end > 0 and not (text[end - 1].isdigit() or text[end - 1] in ". "):
        end -= 1
    number, suffix = text[:end].strip(), text[end:].lower()
    try:
        size = float(number)
    except ValueError:
        raise InvalidArgument(f"invalid size: '{text}'") from None
    if size < 0 or not number:
        raise InvalidArgument(f"invalid size: '{text}'")
    if not suffix or suffix == "b":
        return int(size)
    if suffix[0] not in _DECIMAL or suffix[1:] not in ("", "b", "ib"):
        raise InvalidArgument(f"invalid suffix: '{suffix}'")
    return int(size * _DECIMAL[suffix[0]])


def monitor_entries(settings, log_path):
    """The monitor's config entries for the log (docs/internals.md)."""
    if settings.driver == NONE:
        return [("log", os.devnull)]  # the monitor writes to nothing; there is no file to read
    entries = [("log", log_path)]
    if settings.max_size:
        entries += [("log_max_size", settings.max_size), ("log_max_file", settings.max_file)]
    return entries


# ---- entries -------------------------------------------------------------------------------


@dataclass
class Entry:
    stream: str  # "stdout" or "stderr"
    time_ns: int
    data: bytes


_seconds_cache = {}


def parse_time(text):
    """Nanoseconds since the epoch of an RFC 3339 time as Go writes it (`…:05.123Z`, `…+01:00`)."""
    seconds = _seconds_cache.get(text[:19])
    if seconds is None:
        seconds = calendar.timegm((int(text[0:4]), int(text[5:7]), int(text[8:10]),
                                   int(text[11:13]), int(text[14:16]), int(text[17:19])))
        if len(_seconds_cache) > 4096:
            _seconds_cache.clear()
        _seconds_cache[text[:19]] = seconds
    rest, frac = text[19:], 0
    if rest.startswith("."):
        digits = len(rest) - len(rest[1:].lstrip("0123456789"))
        frac = int(rest[1:digits].ljust(9, "0")[:9])
        rest = rest[digits:]
    if rest not in ("Z", "z", ""):
        sign = -1 if rest[0] == "-" else 1
        seconds -= sign * (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60)
    return seconds * 1_000_000_000 + frac


def parse_entry(line):
    """One line of a json-file log, or None for a line that is not one (a torn write, garbage)."""
    try:
        obj = json.loads(line)
        return Entry(obj["stream"], parse_time(obj["time"]), obj["log"].encode("utf-8", "surrogatepass"))
    except (ValueError, KeyError, TypeError, IndexError):
        return None


# ---- reading the rotated set ---------------------------------------------------------------


def rotated_paths(path):
    """The log's files, oldest first: <log>.N … <log>.1, <log> (those that exist).

    Listed, not probed one number after the other: while the monitor renames .1 → .2 → …,
    a number is briefly missing, and probing would stop there."""
    directory, name = os.path.split(path)
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return [path]
    prefix = name + "."
    numbers = sorted((int(e[len(prefix):]) for e in entries
                      if e.startswith(prefix) and e[len(prefix):].isdigit()), reverse=True)
    return [f"{path}.{k}" for k in numbers] + [path]


_OPEN_ATTEMPTS = 100


class LogReader:
    """Complete lines of a container's log, oldest first, across its rotated files.

    `read()` returns what is there now and can be called again for what comes later
    (`logs -f`); it never blocks and holds at most one batch in memory."""

    def __init__(self, path, tail=-1):
        self.path = path
        self._files = self._open_set()  # [(fd, inode)], oldest first; the first is being read
        self._offset = 0
        self._pending = b""
        if tail >= 0:
            self._seek_tail(tail)

    def close(self):
        for fd, _ in self._files:
            os.close(fd)
        self._files = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _open_set(self):
        """Open every file of the set, oldest first. A rotation while we open them would shift
        the names under us (and we would skip a file): open again until the names still lead
        to the files we hold."""
        for attempt in range(_OPEN_ATTEMPTS):
            paths = rotated_paths(self.path)
            files = []
            for p in paths:
                try:
                    fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue  # rotated or removed meanwhile
                files.append((fd, os.fstat(fd).st_ino))
            if self._unchanged(paths, files) or attempt == _OPEN_ATTEMPTS - 1:
                return files
            for fd, _ in files:
                os.close(fd)
            time.sleep(0.001)

    def _unchanged(self, paths, files):
        if rotated_paths(self.path) != paths or len(files) != len(paths):
            return False
        try:
            return all(os.stat(p).st_ino == inode for p, (_, inode) in zip(paths, files))
        except FileNotFoundError:
            return False

    def read(self, limit=_BATCH):
        """Entries whose lines are complete now, up to about `limit` bytes of them."""
        entries, budget = [], limit
        while self._files and budget > 0:
            fd, _ = self._files[0]
            data = os.pread(fd, min(budget, _BATCH), self._offset)
            if data:
                self._offset += len(data)
                budget -= len(data)
                entries += self._lines(data)
            elif not self._next_file():
                break
        return entries

    def _lines(self, data):
        *lines, self._pending = (self._pending + data).split(b"\n")
        return [e for e in map(parse_entry, lines) if e is not None]

    def _next_file(self):
        """At the end of the current file: move on if there is a newer one; False if not."""
        fd, inode = self._files[0]
        if len(self._files) > 1:
            os.close(fd)
            self._files.pop(0)
            self._offset, self._pending = 0, b""
            return True
        try:
            live = os.stat(self.path).st_ino
        except FileNotFoundError:
            live = inode  # removed with its container: nothing newer will come
        if live != inode:
            # Rotated: our file is complete now (it was renamed before the new one was made),
            # read it to its end once more, then go on with the files made after it.
            newer = self._open_set()
            inodes = [i for _, i in newer]
            start = inodes.index(inode) + 1 if inode in inodes else 0
            for other_fd, _ in newer[:start]:
                os.close(other_fd)
            self._files += newer[start:]
            return True
        if os.fstat(fd).st_size < self._offset:
            # Truncated in place (max-file 1): start again from its beginning.
            self._offset, self._pending = 0, b""
            return True
        return False

    def _seek_tail(self, n):
        """Start at the last `n` complete lines over the whole set, reading backwards in blocks."""
        found = 0
        for index in range(len(self._files) - 1, -1, -1):
            offset, lines = _start_of_last_lines(self._files[index][0], n - found)
            found += lines
            if found >= n or index == 0:
                for fd, _ in self._files[:index]:
                    os.close(fd)
                self._files = self._files[index:]
                self._offset = offset
                return


def _start_of_last_lines(fd, wanted, block=65536):
    """(offset, count): where the file's last `wanted` complete lines start, and how many it
    has of them (fewer if it holds fewer; the offset is then 0). A line still being written
    (no newline yet) is not counted."""
    end = os.fstat(fd).st_size
    while end > 0 and os.pread(fd, 1, end - 1) != b"\n":
        chunk = os.pread(fd, min(block, end), end - min(block, end))
        i = chunk.rfind(b"\n")
        end = end - len(chunk) + i + 1 if i >= 0 else end - len(chunk)
    if end == 0 or wanted <= 0:
        return end, 0
    pos, seen = end - 1, 0  # the newline ending the last line is not a line start
    while pos > 0:
        size = min(block, pos)
        data = os.pread(fd, size, pos - size)
        i = len(data)
        while (i := data.rfind(b"\n", 0, i)) >= 0:
            seen += 1
            if seen == wanted:
                return pos - size + i + 1, wanted
        pos -= size
    return 0, seen + 1


# ---- what GET /containers/{id}/logs streams ------------------------------------------------


@dataclass
class LogsQuery:
    follow: bool = False
    stdout: bool = True
    stderr: bool = True
    since_ns: int = 0  # entries before it are left out; 0: from the start
    until_ns: int = 0  # entries after it end the stream; 0: no end
    timestamps: bool = False
    details: bool = False
    tail: int = -1  # the last N lines only; -1: all


def open_logs(service, ref, query):
    """Check what must be answered before the headers (no such container, a driver that keeps
    nothing, no stream asked for); returns (tty, async iterator of the body's bytes): Docker's
    multiplexed frames without a TTY, the raw bytes with one."""
    if not (query.stdout or query.stderr):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    container = service.get(ref)
    if log_settings(container.host_config).driver == NONE:
        raise LogsNotSupported("configured logging driver does not support reading")
    tty = bool(container.config.get("Tty"))
    path = service.inspect(container.id)["LogPath"]
    # Docker follows only a running container; a stopped one has all it will ever have.
    follow = query.follow and container.state.value == "running"
    return tty, _stream(service, container.id, path, query, tty, follow)


async def _stream(service, container_id, path, query, tty, follow):
    reader = await asyncio.to_thread(LogReader, path, query.tail)
    ended = asyncio.ensure_future(service.wait(container_id, "not-running")) if follow else None
    try:
        while True:
            # Looked at before reading: whatever the container wrote before its end is read after.
            finished = ended is None or ended.done()
            entries = await asyncio.to_thread(reader.read)
            if entries:
                data, past_until = _encode(entries, query, tty)
                if data:
                    yield data
                if past_until:
                    return
                continue
            if finished or (query.until_ns and time.time_ns() > query.until_ns):
                return
            await asyncio.wait([ended], timeout=_FOLLOW_POLL)
    finally:
        if ended is not None:
            ended.cancel()
        reader.close()


def _encode(entries, query, tty):
    """(bytes, past_until) for a batch of entries, filtered and framed as Docker does."""
    out = bytearray()
    for entry in entries:
        if entry.time_ns < query.since_ns:
            continue
        if query.until_ns and entry.time_ns > query.until_ns:
            return bytes(out), True
        if not (query.stdout if entry.stream == "stdout" else query.stderr):
            continue
        line = entry.data
        if query.details:
            line = b" " + line  # Docker puts the entry's attributes here; minictr records none
        if query.timestamps:
            line = rfc3339(entry.time_ns).encode() + b" " + line
        if not tty:
            out += (2 if entry.stream == "stderr" else 1).to_bytes(4, "little") + len(line).to_bytes(4, "big")
        out += line
    return bytes(out), False
