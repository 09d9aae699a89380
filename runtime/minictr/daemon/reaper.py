"""The daemon reaps what it starts: it is a child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER).

Monitors and fuse-overlayfs daemonize (fork, setsid, fork), so their parent exits and they are
re-parented to the nearest living subreaper, else to PID 1. Inside a CI job container PID 1 is
often `sleep infinity`, which never waits: every monitor that ended stayed a zombie. As a
subreaper the daemon adopts them instead, and reaps them on SIGCHLD.

It must not steal the exit status of a child it waits for itself (subprocess, asyncio's child
watcher, the monitor's first process): those are all in the daemon's session, while everything
that daemonized called setsid. So only zombie children of another session are reaped, one pid at
a time (never wait(-1)). A monitor still outlives the daemon: if the daemon is killed, its
orphans go on to the next subreaper or PID 1, as before; a restarted daemon cannot adopt them.
"""

import glob
import logging
import os
import signal

log = logging.getLogger("minictr.reaper")


def become_subreaper():
    import prctl

    prctl.set_child_subreaper(1)


def install(loop):
    """Become a subreaper and reap adopted orphans on every SIGCHLD of `loop`'s process."""
    become_subreaper()
    loop.add_signal_handler(signal.SIGCHLD, reap_orphans)
    reap_orphans()


def reap_orphans():
    """Reap the ended children that are not of this process's session; returns their pids.

    The first zombie is peeked at (waitid WNOWAIT) rather than every child's stat read: a daemon
    with many containers (each monitor is its child) gets a SIGCHLD for every exec and probe."""
    session = os.getsid(0)
    reaped = []
    while (pid := _first_zombie()) is not None:
        try:
            if pid in reaped or os.getsid(pid) == session or os.waitpid(pid, os.WNOHANG)[0] != pid:
                break  # one the daemon waits for itself (or a surprise): the others are found by a scan
        except (ChildProcessError, ProcessLookupError):
            break
        reaped.append(pid)
    else:
        return _logged(reaped)
    return _logged(reaped + _reap_scanning(session))


def _first_zombie():
    try:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None
    return info.si_pid if info is not None else None


def _logged(reaped):
    if reaped:
        log.debug("reaped %s", " ".join(map(str, reaped)))
    return reaped


def _reap_scanning(session):
    reaped = []
    for pid in children_of("self"):
        stat = _stat(pid)
        if stat is None or stat[0] != "Z" or stat[1] == session:
            continue
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                reaped.append(pid)
        except ChildProcessError:
            pass
    return reaped


def children_of(pid):
    """The children of every thread of `pid` (an orphan is re-parented to any thread of its reaper)."""
    pids = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(path) as f:
                pids.extend(int(p) for p in f.read().split())
        except OSError:
            pass  # a thread that ended meanwhile
    return pids


def _stat(pid):
    """(state, session id) of `pid`, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[3])
