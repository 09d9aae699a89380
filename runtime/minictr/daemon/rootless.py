"""Rootless mode: the daemon proper runs as "root" of its own user namespace, as under RootlessKit.

A small parent stays in the host's namespaces (published ports will be
listened on there). The namespaces are held by minictr-pause (Podman's pause
process): the first daemon clones it into new user + mount + network
namespaces and maps the user's uid to 0 and the subordinate ids to 1..N with
newuidmap/newgidmap; every daemon then joins its namespaces, so that a daemon
restarted after a crash finds its running containers where it left them.
The parent waits for the daemon and passes signals on.
"""

import logging
import os
import shutil
import signal
import subprocess

from minictr import hostsocket, native
from minictr.daemon.preflight import check_overlayfs, check_user_namespaces
from minictr.hostinfo import CannotStart, subordinate_ranges, user_name

log = logging.getLogger("minictr.rootless")


def id_mappings(subuid_path="/etc/subuid", subgid_path="/etc/subgid"):
    """The (uid map, gid map) to write, each a list of (inside, outside, count), and a warning or None."""
    uid, gid = os.getuid(), os.getgid()
    name = user_name(uid)
    subuids = next(iter(subordinate_ranges(subuid_path, name, uid)), None)  # the first range, (start, count)
    subgids = next(iter(subordinate_ranges(subgid_path, name, uid)), None)
    missing_tool = next((t for t in ("newuidmap", "newgidmap") if shutil.which(t) is None), None)
    if subuids and subgids and not missing_tool:
        return [(0, uid, 1), (1, *subuids)], [(0, gid, 1), (1, *subgids)], None
    if not (subuids and subgids):
        why = f"no subordinate ids for {name} in /etc/subuid and /etc/subgid"
    else:
        why = f"{missing_tool} is not installed (Debian package uidmap)"
    warning = (f"{why}: falling back to a single-id mapping, "
               "so containers have only uid 0 and images with other owners cannot be used")
    return [(0, uid, 1)], [(0, gid, 1)], warning


def _write_maps(pid, uid_map, gid_map):
    if len(uid_map) > 1:
        for tool, mapping in (("newuidmap", uid_map), ("newgidmap", gid_map)):
            args = [tool, str(pid)] + [str(n) for entry in mapping for n in entry]
            result = subprocess.run(args, capture_output=True, text=True)
            if result.returncode != 0:
                raise CannotStart(f"{tool} failed: {result.stderr.strip() or result.returncode}")
        return
    # A single id of our own needs no helper, but setgroups must be denied first (user_namespaces(7)).
    with open(f"/proc/{pid}/setgroups", "w") as f:
        f.write("deny")
    for name, mapping in (("uid_map", uid_map), ("gid_map", gid_map)):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(" ".join(str(n) for n in mapping[0]))


HOLDER_PIDFILE = "ns.pid"


def run_in_namespaces(inner_argv, run_dir, environ):
    """Run the daemon proper in its namespaces, in `environ` and what this wrapper adds to it (the
    daemon proper reads those in daemon/config.py); return its exit status."""
    check_user_namespaces()
    check_overlayfs()
    uid_map, gid_map, warning = id_mappings()
    env = dict(environ)
    if warning:
        log.warning("%s", warning)
        env["MINICTR_ROOTLESS_WARNING"] = warning
    env["MINICTR_ROOTLESS"] = "1"
    holder = live_holder(run_dir) or _start_holder(run_dir, uid_map, gid_map)
    env["MINICTR_NS_HOLDER"] = str(holder)
    ensure_slirp(run_dir, holder)
    env["MINICTR_WRAPPER_PID"] = str(os.getpid())
    # The daemon's own network namespace has only a loopback: registries are reached through us.
    hostsocket.serve_in_thread(os.path.join(run_dir, hostsocket.SOCKET_NAME))
    env["MINICTR_CONNECT_SOCKET"] = os.path.join(run_dir, hostsocket.SOCKET_NAME)
    try:
        pid, sync_fd = native.join_userns(holder, inner_argv, env)
    except OSError as e:
        raise CannotStart(f"cannot join the daemon's namespaces: {e.strerror}") from None
    _release_or_kill(pid, sync_fd)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: os.kill(pid, s))
    status = _wait_reaping(pid)
    _reap_stopped_helpers(run_dir)
    return status


def _wait_reaping(pid):
    """Wait for the daemon proper (`pid`), reaping meanwhile any other child of ours that ends (the
    holder, slirp4netns): under a PID 1 that never waits (a CI container) they would stay zombies."""
    while True:
        child, status = os.wait()
        if child == pid:
            return os.waitstatus_to_exitcode(status)


def _reap_stopped_helpers(run_dir, timeout=5.0):
    """The daemon stopped the holder and slirp4netns (and removed their pid files) as it left: if we
    started them, wait for them to end, so that they are not left as zombies to PID 1."""
    import select

    from minictr.daemon.reaper import children_of

    running = {live_holder(run_dir), live_slirp(run_dir)}
    for child in children_of(os.getpid()):
        if child in running:
            continue
        try:
            pidfd = os.pidfd_open(child)
        except ProcessLookupError:
            continue
        try:
            select.select([pidfd], [], [], timeout)
            os.waitpid(child, os.WNOHANG)
        except ChildProcessError:
            pass
        finally:
            os.close(pidfd)


def live_holder(run_dir):
    """The pid of the minictr-pause holding our namespaces, if one is alive."""
    try:
        with open(os.path.join(run_dir, HOLDER_PIDFILE)) as f:
            pid = int(f.read())
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() != "minictr:[ns]":
                return None
        if os.stat(f"/proc/{pid}").st_uid != os.getuid():
            return None
    except (OSError, ValueError):
        return None
    return pid


def _start_holder(run_dir, uid_map, gid_map):
    try:
        pid, sync_fd = native.spawn_in_userns([native.PAUSE_PATH], {})
    except OSError as e:
        raise CannotStart(f"cannot create a user namespace: {e.strerror}") from None
    _write_maps_or_kill(pid, sync_fd, uid_map, gid_map)
    _release_or_kill(pid, sync_fd)
    path = os.path.join(run_dir, HOLDER_PIDFILE)
    with open(path + ".tmp", "w") as f:
        f.write(f"{pid}\n")
    os.rename(path + ".tmp", path)
    return pid


def _write_maps_or_kill(pid, sync_fd, uid_map, gid_map):
    try:
        _write_maps(pid, uid_map, gid_map)
    except BaseException:
        os.close(sync_fd)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise


def _release_or_kill(pid, sync_fd):
    try:
        native.release_userns(sync_fd)
    except OSError as e:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise CannotStart(f"cannot start the daemon in its namespaces: {e.strerror}") from None


def stop_holder(run_dir, holder):
    """Called by a daemon stopping with no container left: the namespaces (held by pid `holder`,
    None when not known) may go."""
    if not holder:
        return
    _terminate(holder, os.path.join(run_dir, HOLDER_PIDFILE))
    stop_slirp(run_dir)


# Outbound traffic of the daemon's network namespace: slirp4netns, started by the wrapper in the
# host's namespaces for the holder's namespace, living as long as the holder (not the wrapper: a
# restarted daemon finds it), stopped with it. SLIRP_PIDFILE holds "SLIRP_PID HOLDER_PID".
SLIRP_PIDFILE = "slirp.pid"
SLIRP_LOG = "slirp4netns.log"


def _slirp_path():
    return shutil.which("slirp4netns") or next(
        (p for p in ("/usr/bin/slirp4netns", "/usr/local/bin/slirp4netns") if os.path.exists(p)), None)


def live_slirp(run_dir, holder=None):
    """The pid of our slirp4netns (for `holder`, if given) if it is alive."""
    try:
        with open(os.path.join(run_dir, SLIRP_PIDFILE)) as f:
            pid, for_holder = (int(n) for n in f.read().split())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        if os.stat(f"/proc/{pid}").st_uid != os.getuid():
            return None
    except (OSError, ValueError):
        return None
    if not argv or os.path.basename(argv[0]) != b"slirp4netns" or str(for_holder).encode() not in argv:
        return None
    if holder is not None and holder != for_holder:
        return None
    return pid


def ensure_slirp(run_dir, holder):
    """Give the holder's network namespace a way out (tap0, 10.0.2.100/24, default route via 10.0.2.2)."""
    if live_slirp(run_dir, holder):
        return
    stop_slirp(run_dir)  # one left for a holder that is gone
    slirp = _slirp_path()
    if slirp is None:
        log.warning("slirp4netns is not installed: containers cannot reach outside (Debian package slirp4netns)")
        return
    ready_r, ready_w = os.pipe()
    try:
        with open(os.path.join(run_dir, SLIRP_LOG), "ab") as out:
            process = subprocess.Popen(
                [slirp, "--configure", "--mtu=65520", "--disable-host-loopback", f"--ready-fd={ready_w}",
                 str(holder), "tap0"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, pass_fds=(ready_w,), start_new_session=True)
        os.close(ready_w)
        ready_w = -1
        ready = _read_ready(ready_r, 10.0)
    finally:
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)
    if not ready:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.warning("slirp4netns did not start (see %s): containers cannot reach outside",
                    os.path.join(run_dir, SLIRP_LOG))
        return
    path = os.path.join(run_dir, SLIRP_PIDFILE)
    with open(path + ".tmp", "w") as f:
        f.write(f"{process.pid} {holder}\n")
    os.rename(path + ".tmp", path)


def _read_ready(fd, timeout):
    import select

    readable, _, _ = select.select([fd], [], [], timeout)
    return bool(readable) and os.read(fd, 1) == b"1"


def stop_slirp(run_dir):
    _terminate(live_slirp(run_dir), os.path.join(run_dir, SLIRP_PIDFILE))


def _terminate(pid, pidfile):
    """SIGTERM to PID (if any, and if still there); its pid file goes either way."""
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        os.unlink(pidfile)
    except FileNotFoundError:
        pass
