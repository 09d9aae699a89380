"""One daemon per data root and per socket, and a data root no other user can read.

Two daemons on one data root would each believe its own view of the containers (one restarting
what the other watches), and the CLI's auto-start can race a manual start: the first daemon takes
an exclusive flock on a file in the data root and on its pid file beside the socket, and holds
both until it exits (the kernel drops them with the process, even on kill -9). The files keep the
holder's pid, so the daemon that loses says which process to stop.

The database, its WAL and the engine id hold containers' environments (passwords, tokens): the data
root is 0700 and those files 0600, also when an older minictr (or an admin) made them wider.
"""

import fcntl
import os

from minictr.errors import Conflict

LOCK_NAME = "minictrd.lock"
PID_NAME = "minictrd.pid"
DATA_ROOT_MODE = 0o700
# The state files at the data root's top besides the database (db.py keeps its own files 0600).
STATE_FILES = ("engine-id",)


def claim(path, what):
    """Hold an exclusive lock on `path` for this process's life and write our pid in it. Returns the
    open fd (close-on-exec: a container's monitor must never inherit it, or the lock would outlive
    the daemon). Another holder is a Conflict naming its pid."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        raise Conflict(f"{what} is in use by another minictrd (pid {holder or 'unknown'}): "
                       f"stop it first, or give this one another --data-root and -H") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    os.fchmod(fd, 0o600)
    return fd


def _read_pid(fd):
    # The holder writes its pid right after it locks: a loser that reads in between sees nothing.
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def claim_data_root(data_root, run_dir):
    """Lock the socket's directory and the data root for this daemon; returns the fds to keep open.
    The pid file first: two commands that both auto-start a daemon race there, and the one whose
    daemon lost finds the winner's lock on it (cli/context.py)."""
    fds = [claim(os.path.join(run_dir, PID_NAME), f"the socket directory {run_dir}")]
    try:
        fds.append(claim(os.path.join(data_root, LOCK_NAME), f"the data root {data_root}"))
    except Conflict:
        os.close(fds[0])
        raise
    return fds


def make_private(data_root):
    """The data root 0700 and its state files 0600, whatever they were."""
    os.chmod(data_root, DATA_ROOT_MODE)
    for name in STATE_FILES:
        try:
            os.chmod(os.path.join(data_root, name), 0o600)
        except FileNotFoundError:
            pass
