"""Rootless mode: the daemon proper runs as "root" of its own user namespace, as under RootlessKit.

A small parent stays in the host's namespaces (published ports will be
listened on there). It clones the daemon into new user + mount + network
namespaces, maps the user's uid to 0 and the subordinate ids to 1..N with
newuidmap/newgidmap, then waits for it and passes signals on.
"""

import logging
import os
import shutil
import signal
import subprocess

from minictr import native
from minictr.daemon.preflight import (CannotStart, check_overlayfs, check_user_namespaces,
                                      subordinate_ids, user_name)

log = logging.getLogger("minictr.rootless")


def id_mappings(subuid_path="/etc/subuid", subgid_path="/etc/subgid"):
    """The (uid map, gid map) to write, each a list of (inside, outside, count), and a warning or None."""
    uid, gid = os.getuid(), os.getgid()
    name = user_name(uid)
    subuids = subordinate_ids(subuid_path, name, uid)
    subgids = subordinate_ids(subgid_path, name, uid)
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


def run_in_namespaces(inner_argv):
    """Run the daemon proper in its namespaces; return its exit status."""
    check_user_namespaces()
    check_overlayfs()
    uid_map, gid_map, warning = id_mappings()
    env = dict(os.environ)
    if warning:
        log.warning("%s", warning)
        env["MINICTR_ROOTLESS_WARNING"] = warning
    env["MINICTR_ROOTLESS"] = "1"
    try:
        pid, sync_fd = native.spawn_in_userns(inner_argv, env)
    except OSError as e:
        raise CannotStart(f"cannot create a user namespace: {e.strerror}") from None
    try:
        _write_maps(pid, uid_map, gid_map)
        native.release_userns(sync_fd)
    except BaseException as e:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        if isinstance(e, OSError):
            raise CannotStart(f"cannot start the daemon in its namespaces: {e.strerror}") from None
        raise
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: os.kill(pid, s))
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
