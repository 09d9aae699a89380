"""A container's resource limits on this host: cgroup limits (memory, cpu, pids, cpuset) on v1 and
v2, rlimits and /dev/shm's size, from a HostConfig that spec/resources.py checked; and what to do
with a limit this machine cannot enforce."""

import os

from minictr.errors import InvalidArgument
from minictr.security import devices
from minictr.spec import sysctls
from minictr.spec.resources import DEFAULT_SHM_SIZE, LIMIT_FLAGS, check_values, merge_update, normalize, parse_cpuset

CPU_PERIOD = 100000  # the cfs period --cpus is expressed in (Docker's)

# The cgroup controller that enforces each limit.
_CONTROLLERS = {"Memory": "memory", "MemorySwap": "swap", "NanoCpus": "cpu", "CpuShares": "cpu", "CpuQuota": "cpu",
                "CpuPeriod": "cpu", "CpusetCpus": "cpuset", "PidsLimit": "pids"}
# HostConfig field -> (the flag a user typed, the cgroup controller that enforces it).
CGROUP_FIELDS = tuple((key, flag, _CONTROLLERS[key]) for key, flag in LIMIT_FLAGS.items())

REFUSE, WARN = "refuse", "warn"

# Settings of the v1 memory controller that cgroup v2 does not have: HostConfig field -> flag.
MEMORY_SETTINGS = {"MemorySwappiness": "--memory-swappiness", "OomKillDisable": "--oom-kill-disable"}
# Docker's warnings when it discards them on cgroup v2 (daemon/daemon_unix.go).
V2_DISCARDED = {
    "MemorySwappiness": "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
                        "Memory swappiness discarded.",
    "OomKillDisable": "Your kernel does not support OomKillDisable. OomKillDisable discarded.",
}
OOM_KILL_WITHOUT_MEMORY = ("OOM killer is disabled for the container, but no memory limit is set, "
                           "this can result in the system running out of resources.")


def _memory_setting(hc, key):
    """HC's value of a MEMORY_SETTINGS field, None when not asked for (-1 and false are Docker's unset)."""
    value = hc.get(key)
    if key == "MemorySwappiness":
        return None if value is None or value == -1 else value
    return True if value else None


def online_cpus(path="/sys/devices/system/cpu/online"):
    try:
        with open(path) as f:
            return parse_cpuset(f.read().strip())
    except (OSError, InvalidArgument):
        return set(range(os.cpu_count() or 1))


def requested_cgroup_limits(hc):
    """(flag, controller) of each cgroup limit HC asks for."""
    wanted = [(flag, "memory") for key, flag in MEMORY_SETTINGS.items() if _memory_setting(hc, key) is not None]
    for key, flag, controller in CGROUP_FIELDS:
        value = hc.get(key)
        if key == "MemorySwap" and (value == -1 or value == 2 * (hc.get("Memory") or 0)):
            continue  # unlimited, or Docker's default: nothing the user must have
        if value and (not isinstance(value, int) or value > 0):
            wanted.append((flag, controller))
    return wanted


def cgroup_limits(hc, keys=None):
    """HC's cgroup limits as cgroups.apply_limits takes them; with KEYS (an update's fields) only
    those, unlimited values as -1 so that they are written back to `max`."""
    all_keys = keys is None
    keys = set(keys if keys is not None else (k for k, _f, _c in CGROUP_FIELDS if hc.get(k)))
    if all_keys:
        keys.update(MEMORY_SETTINGS)
    limits = {}
    memory = hc.get("Memory") or 0
    if "Memory" in keys or "MemorySwap" in keys:
        limits["memory"] = memory or -1
        swap = hc.get("MemorySwap") or 0
        if swap == -1 or swap > 0:
            limits["memory_swap"] = swap
        elif "MemorySwap" in keys or memory == 0:
            limits["memory_swap"] = -1
    if hc.get("NanoCpus") and "NanoCpus" in keys:
        limits["cpu_period"] = CPU_PERIOD
        limits["cpu_quota"] = hc["NanoCpus"] * CPU_PERIOD // 10**9
    elif "NanoCpus" in keys:
        limits["cpu_quota"] = -1
    if "CpuQuota" in keys:
        limits["cpu_quota"] = hc.get("CpuQuota") or -1
    if "CpuPeriod" in keys and hc.get("CpuPeriod"):
        limits["cpu_period"] = hc["CpuPeriod"]
    if "CpuShares" in keys and hc.get("CpuShares"):
        limits["cpu_shares"] = hc["CpuShares"]
    if "CpusetCpus" in keys and hc.get("CpusetCpus"):
        limits["cpuset_cpus"] = hc["CpusetCpus"]
    if "PidsLimit" in keys:
        limits["pids"] = hc.get("PidsLimit") or -1
    if "MemorySwappiness" in keys:
        if _memory_setting(hc, "MemorySwappiness") is not None:
            limits["memory_swappiness"] = hc["MemorySwappiness"]
    if "OomKillDisable" in keys and _memory_setting(hc, "OomKillDisable"):
        limits["oom_kill_disable"] = True
    return limits


class Resources:
    def __init__(self, cgroups, rootless, unavailable=REFUSE):
        self.cgroups = cgroups
        self.rootless = rootless
        self.unavailable = unavailable or REFUSE
        if self.unavailable not in (REFUSE, WARN):
            raise InvalidArgument(f"invalid --unavailable-limits {self.unavailable!r}: refuse or warn")

    def check(self, host_config, update=False):
        """Raise InvalidArgument (Docker's words) for limits that are wrong or that this machine cannot
        enforce (unless the user chose to go on without them: then returns the warnings)."""
        check_values(host_config, online_cpus(), update)
        warnings = [] if update else self._v1_memory_settings(host_config)
        if not update:
            normalize(host_config)
            self._check_namespaced(host_config)
        missing = [(flag, controller) for flag, controller in requested_cgroup_limits(host_config)
                   if controller not in self.cgroups.controllers]
        if not missing:
            return warnings
        reason = self.cgroups.missing_reason(sorted({c for _f, c in missing}))
        if self.unavailable == REFUSE:
            flags = ", ".join(flag for flag, _c in missing)
            raise InvalidArgument(f"cannot enforce {flags}: {reason}; or start the daemon with "
                                  f"--unavailable-limits=warn (MINICTR_UNAVAILABLE_LIMITS=warn) to run without them")
        return warnings + [f"{flag} limit discarded: {reason}" for flag, _c in missing]

    def _check_namespaced(self, hc):
        """--sysctl and --oom-score-adj: what the container's namespaces (and, rootless, the lack of
        CAP_SYS_RESOURCE) let it set; InvalidArgument in one line otherwise."""
        network_mode = hc.get("NetworkMode") or ""
        sysctls.check(hc.get("Sysctls"), network_mode, hc.get("IpcMode") or "", hc.get("UTSMode") or "")
        keys = hc.get("Sysctls") or {}
        if self.rootless and network_mode.startswith("container:") and any(
                key.startswith(sysctls.NET_PREFIX) for key in keys):
            raise InvalidArgument("rootless: net.* sysctls cannot be set in another container's network namespace "
                                  "(it belongs to that container's user namespace)")
        if self.rootless and (hc.get("IpcMode") or "").startswith("container:") and any(
                sysctls.is_ipc_key(key) for key in keys):
            raise InvalidArgument("rootless: IPC sysctls cannot be set in another container's IPC namespace "
                                  "(it belongs to that container's user namespace)")
        # 0 is "not given": nothing is written and the container keeps the daemon's score (a user's
        # systemd runs its services at 200), as Docker's does; only a value asked for is checked.
        adj = hc.get("OomScoreAdj") or 0
        floor = _own_oom_score_adj() if adj else adj
        if adj < floor and (self.rootless or not _has_sys_resource()):
            raise InvalidArgument(f"--oom-score-adj {adj} is below the daemon's own {floor}: lowering it needs "
                                  f"CAP_SYS_RESOURCE of the host, which this daemon does not have")

    def _v1_memory_settings(self, host_config):
        """Docker's handling of --memory-swappiness and --oom-kill-disable: cgroup v2 has neither,
        so they are discarded with a warning (and stored unset); the warnings."""
        warnings = []
        for key in MEMORY_SETTINGS:
            if _memory_setting(host_config, key) is not None and self.cgroups.unified:
                warnings.append(V2_DISCARDED[key])
                host_config[key] = None if key == "MemorySwappiness" else False
        if _memory_setting(host_config, "OomKillDisable") and not host_config.get("Memory"):
            warnings.append(OOM_KILL_WITHOUT_MEMORY)
        return warnings

    def enforceable(self, limits):
        """LIMITS without those whose controller this machine lacks (the user chose to go on)."""
        needs = {"memory": "memory", "memory_swappiness": "memory", "oom_kill_disable": "memory", "memory_swap": "swap",
                 "cpu_quota": "cpu", "cpu_period": "cpu", "cpu_shares": "cpu", "cpuset_cpus": "cpuset", "pids": "pids"}
        return {k: v for k, v in limits.items() if needs[k] in self.cgroups.controllers}

    def create_groups(self, container_id, host_config):
        """The container's cgroups, its limits written (those this machine can enforce)."""
        from minictr.errors import MinictrError

        try:
            return self.cgroups.create(container_id, self.enforceable(cgroup_limits(host_config)),
                                       devices.cgroup_rules(host_config))
        except OSError as e:
            where = f" ({e.filename})" if e.filename else ""  # which file: ENOENT alone says nothing
            raise MinictrError(f"cannot set the container's cgroup limits: {e.strerror or e}{where}") from None

    def update(self, host_config, body, paths):
        """Merge an update body (POST /containers/{id}/update) into HOST_CONFIG (in place), checked as
        Docker does; with PATHS (a running container's groups) the new limits are written there too.
        Returns the warnings."""
        from minictr.errors import MinictrError

        merged, changed = merge_update(host_config, body)
        warnings = self.check(merged, update=True)
        if paths and changed:
            try:
                apply = self.enforceable(cgroup_limits(merged, changed))
                from minictr.containers.cgroups import apply_limits

                apply_limits(paths, apply, self.cgroups.unified)
            except OSError as e:
                raise MinictrError(f"Cannot update container: {e.strerror or e}") from None
        host_config.clear()
        host_config.update(merged)
        return warnings

    def monitor_entries(self, host_config):
        """Monitor config entries of the container's init: rlimits, the OOM score adjustment, the size
        of /dev/shm and the sysctls."""
        shm = host_config.get("ShmSize") or DEFAULT_SHM_SIZE
        entries = self.rlimit_entries(host_config) + [("shm_size", str(shm))]
        return entries + [("sysctl", key, value) for key, value in (host_config.get("Sysctls") or {}).items()]

    @staticmethod
    def rlimit_entries(host_config):
        """`rlimit` entries (--ulimit) and `oom_score_adj`, for the init and for each exec alike
        (an exec's process gets the container's score, as runc gives it)."""
        entries = [("oom_score_adj", str(host_config["OomScoreAdj"]))] if host_config.get("OomScoreAdj") else []
        for ulimit in host_config.get("Ulimits") or []:
            soft, hard = int(ulimit.get("Soft", 0)), int(ulimit.get("Hard", 0))
            entries.append(("rlimit", ulimit["Name"], _rlimit_text(soft), _rlimit_text(hard)))
        return entries


def _own_oom_score_adj():
    try:
        with open("/proc/self/oom_score_adj") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


CAP_SYS_RESOURCE = 24


def _has_sys_resource():
    """Whether this process has CAP_SYS_RESOURCE (in its own user namespace: a rootless daemon's
    does not count, the kernel asks for the initial namespace's)."""
    try:
        with open("/proc/self/status") as f:
            effective = next(line for line in f if line.startswith("CapEff:")).split()[1]
        return bool(int(effective, 16) >> CAP_SYS_RESOURCE & 1)
    except (OSError, StopIteration, ValueError):
        return False


def _rlimit_text(value):
    return "unlimited" if value < 0 else str(value)
