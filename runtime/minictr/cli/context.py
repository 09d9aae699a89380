"""The object every command gets: the daemon connection, started on first use (and the daemon too).

No click here: the CLI's fast path (cli/fast.py) uses it without importing click."""

import os
import sys
import time

from minictr.errors import DaemonUnavailable
from minictr.spec import paths

_START_TIMEOUT = 20.0


class Context:
    def __init__(self, host):
        self.host = host
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from minictr.client import Client

            if self.host:
                self._client = Client(paths.socket_from_host(self.host))
            else:
                self._client = Client(paths.default_socket(os.geteuid(), os.environ))
                if not _answers(self._client.socket_path):
                    _start_daemon(self._client.socket_path)
        return self._client


def error_line(error):
    """The line the CLI prints for an error: the daemon's answers in the docker CLI's words
    (`Error response from daemon: No such container: x`), the CLI's own after `minictr:`."""
    if error.from_daemon:
        return f"Error response from daemon: {error}"
    return f"minictr: {error}"


def each(names, action):
    """Docker's way with several names: act on each, report a failure in one line and go on.
    Returns whether all of them went well (the caller exits 1 if not)."""
    from minictr.errors import MinictrError

    failed = False
    for name in names:
        try:
            action(name)
        except MinictrError as e:
            echo(error_line(e), err=True)
            failed = True
    return not failed


def inspect_each(names, fetch):
    """`… inspect NAME…` as Docker does it: a line for each name not found, then the JSON list
    of the objects that were (`fetch(name)` gets one); exit 1 if any was missing."""
    from minictr.cli.format import dump

    found = []
    all_found = each(names, lambda name: found.append(fetch(name)))
    echo(dump(found))
    if not all_found:
        sys.exit(1)


def echo(text, err=False):
    """click.echo's job for a line of text, without click: a reader that went away is not ours."""
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{text}\n")
    stream.flush()


def _answers(socket_path):
    import _socket  # not socket: its enum and selectors would cost every CLI start ~4 ms

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
        return True
    except OSError:
        return False
    finally:
        sock.close()


def _start_daemon(socket_path):
    """No daemon answers on the default socket: start one for this user, as Podman's socket activation would."""
    import subprocess

    run_dir = os.path.dirname(socket_path)
    try:
        os.makedirs(run_dir, 0o700, exist_ok=True)
    except OSError as e:
        raise DaemonUnavailable(f"cannot start the daemon: cannot create {run_dir}: {e.strerror}") from None
    log_path = os.path.join(run_dir, "daemon.log")
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "minictr.daemon"], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if _answers(socket_path):
            return
        if process.poll() is not None and not _pid_file_locked(run_dir):
            raise DaemonUnavailable(f"cannot start the daemon: {_last_line(log_path)}")
        time.sleep(0.02)
    raise DaemonUnavailable(f"the daemon did not answer within {_START_TIMEOUT:.0f}s (see {log_path})")


def _pid_file_locked(run_dir):
    """Whether a daemon holds the lock on the pid file: when two commands found no daemon and both
    started one, the one whose daemon lost waits for the winner's socket. Read from /proc/locks, as
    trying the lock would itself keep a starting daemon out."""
    try:
        st = os.stat(os.path.join(run_dir, "minictrd.pid"))
        with open("/proc/locks") as f:
            locks = f.read()
    except OSError:
        return False
    inode = f" {os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino} "
    return any(line.split()[1:2] == ["FLOCK"] and inode in line for line in locks.splitlines())


def _last_line(path):
    with open(path, errors="replace") as f:
        lines = [line.strip() for line in f if line.strip()]
    if not lines:
        return "it exited without a word"
    last = lines[-1]
    return last[len("minictrd: "):] if last.startswith("minictrd: ") else last
