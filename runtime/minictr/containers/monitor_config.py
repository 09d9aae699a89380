"""What a container's monitor is told (its config keys, docs/internals.md), gathered from
the parts that own each: storage, user ids, network, cgroups, mounts, confinement, limits,
the tty and the log."""

import os

from minictr import native
from minictr.containers import namespaces
from minictr.containers.config import process_env
from minictr.containers.logs import log_settings, monitor_entries as log_entries
from minictr.security import devices

INIT_IN_CONTAINER = "/sbin/docker-init"  # where Docker puts its init: scripts look for it there


class MonitorConfig:
    def __init__(self, networks, cgroups, mounting, confinement, resources, rootless, uid_ranges, gid_ranges,
                 containers):
        self.containers = containers  # the store: the containers whose namespaces one joins
        self.networks = networks
        self.cgroups = cgroups
        self.mounting = mounting
        self.confinement = confinement
        self.resources = resources
        self.rootless = rootless
        self.uid_ranges = uid_ranges
        self.gid_ranges = gid_ranges

    def entries(self, container, paths, user, root, pid_of):
        """The entries for `container`: `user` is (uid, gid, groups), `root` the storage
        driver's rootfs entries, `pid_of(other)` a running container's pid (joined namespaces)."""
        config = container.config
        uid, gid, groups = user
        entries = [("id", container.id)] + root  # rootfs and its layers, as the storage driver makes it
        entries += self._user_namespace(container.host_config)
        entries += self.networks.monitor_entries(container, pid_of)
        entries += namespaces.monitor_entries(container.host_config, self.containers, pid_of, self.rootless)
        entries += [("hostname", config["Hostname"]), ("cwd", config["WorkingDir"] or "/"),
                    ("uid", uid), ("gid", gid)]
        entries += [("group", g) for g in groups]
        entries += [("arg", a) for a in self._argv(container)]
        env = _with_link_variables(self.networks.link_environment(container), config["Env"])
        env = process_env(env)
        entries += [("env", e) for e in env]
        entries += [("cgroup", c) for c in container.cgroups]
        entries += self.cgroups.filesystems(bool(container.host_config.get("Privileged")))
        if container.host_config.get("Init"):
            entries.append(("bind", native.INIT_PATH, INIT_IN_CONTAINER, "ro"))
        entries += [("bind", os.path.join(paths["top"], name), f"/etc/{name}", "rw")
                    for name in ("hostname", "hosts", "resolv.conf")]
        if os.path.exists(os.path.join(paths["top"], "dockerenv")):  # not for containers made before it
            entries.append(("bind", os.path.join(paths["top"], "dockerenv"), "/.dockerenv", "ro"))
        entries += self.mounting.monitor_entries(container)
        entries += namespaces.shm_entries(container, paths["top"], self.containers)
        entries += devices.monitor_entries(container.host_config)
        entries += self.confinement.monitor_entries(container.host_config)
        entries += self.resources.monitor_entries(container.host_config)
        entries += [("stdin", "1" if config["OpenStdin"] else "0")]
        entries += tty_entries(config, container.host_config)
        entries += log_entries(log_settings(container.host_config), paths["log"])
        entries += [("exit", paths["exit"]), ("attach", paths["attach"])]
        return entries

    def _user_namespace(self, host_config):
        entries = [("userns", "1" if self.rootless else "0")]
        if self.rootless and host_config.get("UsernsMode") == "host":
            return entries + [("userns_host", "1")]  # the daemon's user namespace: still not the host's
        if self.rootless and not namespaces.in_user_namespace(host_config, self.rootless):
            return entries  # another container's (namespaces.monitor_entries: `userns_join`)
        if self.rootless:
            entries += [("uidmap", first, first, count) for first, count in self.uid_ranges]
            entries += [("gidmap", first, first, count) for first, count in self.gid_ranges]
        return entries

    @staticmethod
    def _argv(container):
        argv = (container.config["Entrypoint"] or []) + (container.config["Cmd"] or [])
        if container.host_config.get("Init"):
            argv = [INIT_IN_CONTAINER, "--"] + argv
        return argv


def _with_link_variables(link_env, env):
    """The links' variables first, then the container's own: one of these wins over a link's of
    the same name, as in Docker."""
    own = {entry.partition("=")[0] for entry in env}
    return [entry for entry in link_env if entry.partition("=")[0] not in own] + list(env)


def tty_entries(config, host_config):
    """The monitor's `tty` and `tty_size` (HostConfig.ConsoleSize is [height, width], as in Docker)."""
    if not config.get("Tty"):
        return [("tty", "0")]
    entries = [("tty", "1")]
    size = host_config.get("ConsoleSize") or [0, 0]
    if len(size) == 2 and all(isinstance(n, int) and 0 < n <= 0xFFFF for n in size):
        entries.append(("tty_size", size[0], size[1]))
    return entries
