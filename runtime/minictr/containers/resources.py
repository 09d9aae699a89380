"""A container's resource limits on this host: cgroup limits (memory, cpu, pids, cpuset) on v1 and
v2, rlimits and /dev/shm's size, from a HostConfig that spec/resources.py checked; and what to do
with a limit this machine cannot enforce."""

import os

from minictr.errors import InvalidArgument
from minictr.security import devices
from minictr.spec.resources import DEFAULT_SHM_SIZE, LIMIT_FLAGS, check_values, merge_update, normalize, parse_cpuset

CPU_PERIOD = 100000  # the cfs period --cpus is expressed in (Docker's)

# The cgroup controller that enforces each limit.
_CONTROLLERS = {"Memory": "memory", "MemorySwap": "swap", "NanoCpus": "cpu", "CpuShares": "cpu", "CpuQuota": "cpu",
                "CpuPeriod": "cpu", "CpusetCpus": "cpuset", "PidsLimit": "pids"}
# HostConfig field -> (the flag a user typed, the cgroup controller that enforces it).
CGROUP_FIELDS = tuple((key, flag, _CONTROLLERS[key]) for key, flag in LIMIT_FLAGS.items())

REFUSE, WARN = "refuse", "warn"


def online_cpus(path="/sys/devices/system/cpu/online"):
    try:
        with open(path) as f:
            return parse_cpuset(f.read().strip())
    except (OSError, InvalidArgument):
        return set(range(os.cpu_count() or 1))


def requested_cgroup_limits(hc):
    """(flag, controller) of each cgroup limit HC asks for."""
    wanted = []
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
    keys = set(keys if keys is not None else (k for k, _f, _c in CGROUP_FIELDS if hc.get(k)))
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
        if not update:
            normalize(host_config)
        missing = [(flag, controller) for flag, controller in requested_cgroup_limits(host_config)
                   if controller not in self.cgroups.controllers]
        if not missing:
            return []
        reason = self.cgroups.missing_reason(sorted({c for _f, c in missing}))
        if self.unavailable == REFUSE:
            flags = ", ".join(flag for flag, _c in missing)
            raise InvalidArgument(f"cannot enforce {flags}: {reason}; or start the daemon with "
                                  f"--unavailable-limits=warn (MINICTR_UNAVAILABLE_LIMITS=warn) to run without them")
        return [f"{flag} limit discarded: {reason}" for flag, _c in missing]

    def enforceable(self, limits):
        """LIMITS without those whose controller this machine lacks (the user chose to go on)."""
        needs = {"memory": "memory", "memory_swap": "swap", "cpu_quota": "cpu", "cpu_period": "cpu",
                 "cpu_shares": "cpu", "cpuset_cpus": "cpuset", "pids": "pids"}
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
        """Monitor config entries of the container's init: rlimits and the size of /dev/shm."""
        shm = host_config.get("ShmSize") or DEFAULT_SHM_SIZE
        return self.rlimit_entries(host_config) + [("shm_size", str(shm))]

    @staticmethod
    def rlimit_entries(host_config):
        """`rlimit` entries (--ulimit), for the init and for each exec alike."""
        entries = []
        for ulimit in host_config.get("Ulimits") or []:
            soft, hard = int(ulimit.get("Soft", 0)), int(ulimit.get("Hard", 0))
            entries.append(("rlimit", ulimit["Name"], _rlimit_text(soft), _rlimit_text(hard)))
        return entries


def _rlimit_text(value):
    return "unlimited" if value < 0 else str(value)
