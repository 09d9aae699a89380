"""A container's resource limits: cgroup limits (memory, cpu, pids, cpuset) on v1 and v2, rlimits and
/dev/shm's size, from HostConfig as Docker reads them.

No heavy import here: the CLI's fast path parses `--memory`, `--ulimit`, … with these functions too.
"""

import os

from minictr.errors import InvalidArgument

MIN_MEMORY = 6 * 1024 * 1024  # Docker's linuxMinMemory
CPU_PERIOD = 100000  # the cfs period --cpus is expressed in (Docker's)
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

# Docker's --ulimit names (the monitor's `rlimit` key knows the same).
ULIMIT_NAMES = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                "rss", "rtprio", "rttime", "sigpending", "stack")

# HostConfig field -> (the flag a user typed, the cgroup controller that enforces it).
CGROUP_FIELDS = (("Memory", "--memory", "memory"), ("MemorySwap", "--memory-swap", "swap"),
                 ("NanoCpus", "--cpus", "cpu"), ("CpuShares", "--cpu-shares", "cpu"),
                 ("CpuQuota", "--cpu-quota", "cpu"), ("CpuPeriod", "--cpu-period", "cpu"),
                 ("CpusetCpus", "--cpuset-cpus", "cpuset"), ("PidsLimit", "--pids-limit", "pids"))

REFUSE, WARN = "refuse", "warn"

# ---- parsing what users type (CLI) ---------------------------------------------------------------

# A pattern, compiled (and cached by re) at the first size parsed: the CLI imports this module on
# every `run`, and re would cost it ~7 ms.
_SIZE = r"^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$"
_UNITS = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(text):
    """Docker's RAMInBytes: `512`, `6m`, `1.5g`, `64MiB` (binary units)."""
    import re

    match = re.match(_SIZE, text.strip(), re.IGNORECASE)
    if not match:
        raise InvalidArgument(f"invalid size: '{text}'")
    unit = match.group(2).lower() if match.group(2) else None
    return int(float(match.group(1)) * _UNITS[unit])


def parse_swap(text):
    """--memory-swap: a size, or -1 for unlimited swap."""
    return -1 if text.strip() == "-1" else parse_bytes(text)


def parse_cpus(text):
    """--cpus 1.5 -> NanoCpus."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(f'invalid argument "{text}" for "--cpus" flag: failed to parse {text} as a rational number') from None
    return int(round(value * 1e9))


def parse_ulimit(text):
    """--ulimit name=soft[:hard] -> {Name, Soft, Hard} (go-units' ParseUlimit)."""
    name, sep, values = text.partition("=")
    if not sep:
        raise InvalidArgument(f"invalid ulimit argument: {text}")
    if name not in ULIMIT_NAMES:
        raise InvalidArgument(f"invalid ulimit type: {name}")
    soft, _, hard = values.partition(":")
    try:
        soft = int(soft)
        hard = int(hard) if hard else soft
    except ValueError:
        raise InvalidArgument(f"invalid ulimit argument: {text}") from None
    if _limit(soft) > _limit(hard):
        raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return {"Name": name, "Soft": soft, "Hard": hard}


def _limit(value):
    return float("inf") if value < 0 else value


def host_config_fields(options):
    """The HostConfig fields of `run`/`create`'s resource options (a dict of parsed options)."""
    fields = {}
    for option, key, parse in (("memory", "Memory", parse_bytes), ("memory_swap", "MemorySwap", parse_swap),
                               ("cpus", "NanoCpus", parse_cpus), ("cpu_shares", "CpuShares", int),
                               ("cpu_quota", "CpuQuota", int), ("cpu_period", "CpuPeriod", int),
                               ("cpuset_cpus", "CpusetCpus", str), ("pids_limit", "PidsLimit", int),
                               ("shm_size", "ShmSize", parse_bytes)):
        value = options.get(option)
        if value is not None and value != "":
            fields[key] = parse(value) if isinstance(value, str) and parse is not str else value
    if options.get("ulimit"):
        fields["Ulimits"] = [parse_ulimit(u) for u in options["ulimit"]]
    return fields


# ---- checking what the daemon gets (API) ---------------------------------------------------------

def online_cpus(path="/sys/devices/system/cpu/online"):
    try:
        with open(path) as f:
            return parse_cpuset(f.read().strip())
    except (OSError, InvalidArgument):
        return set(range(os.cpu_count() or 1))


def parse_cpuset(text):
    """`0-2,4` -> {0, 1, 2, 4}; InvalidArgument in Docker's words for anything else."""
    cpus = set()
    for part in text.split(","):
        first, sep, last = part.partition("-")
        if not first.isdigit() or (sep and not last.isdigit()) or (sep and int(last) < int(first)):
            raise InvalidArgument(f"Invalid value {text} for cpuset cpus")
        cpus.update(range(int(first), int(last if sep else first) + 1))
    return cpus


def check_values(hc, update=False):
    """Docker's checks of the resource fields of a HostConfig (or of an update body)."""
    memory, swap = hc.get("Memory") or 0, hc.get("MemorySwap") or 0
    if memory and memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if memory < 0:
        raise InvalidArgument("Invalid value: memory limit can not be negative")
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if not update and memory == 0 and swap > 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    nano, ncpu = hc.get("NanoCpus") or 0, len(online_cpus())
    if nano and (hc.get("CpuQuota") or hc.get("CpuPeriod")):
        which = "Quota" if hc.get("CpuQuota") else "Period"
        raise InvalidArgument(f"Conflicting options: Nano CPUs and CPU {which} cannot both be set")
    if nano < 0 or nano > ncpu * 10**9:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    period, quota = hc.get("CpuPeriod") or 0, hc.get("CpuQuota") or 0
    if period and not 1000 <= period <= 1000000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if quota > 0 and quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if (hc.get("CpuShares") or 0) < 0:
        raise InvalidArgument("Invalid value: CPU shares can not be negative")
    if hc.get("CpusetCpus"):
        requested, online = parse_cpuset(hc["CpusetCpus"]), online_cpus()
        if not requested <= online:
            raise InvalidArgument(f"Requested CPUs are not available - requested {hc['CpusetCpus']}, "
                                  f"available: {_cpuset_text(online)}")
    if (hc.get("ShmSize") or 0) < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    for ulimit in hc.get("Ulimits") or []:
        if not isinstance(ulimit, dict) or ulimit.get("Name") not in ULIMIT_NAMES:
            raise InvalidArgument(f"invalid ulimit type: {ulimit.get('Name') if isinstance(ulimit, dict) else ulimit}")
        if _limit(int(ulimit.get("Soft", 0))) > _limit(int(ulimit.get("Hard", 0))):
            raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: "
                                  f"{ulimit['Soft']} > {ulimit['Hard']}")


def _cpuset_text(cpus):
    cpus, ranges = sorted(cpus), []
    for cpu in cpus:
        if ranges and ranges[-1][1] == cpu - 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def normalize(hc):
    """What Docker stores: swap twice the memory when only memory was given, no pids limit for 0/-1."""
    if (hc.get("Memory") or 0) > 0 and not hc.get("MemorySwap"):
        hc["MemorySwap"] = hc["Memory"] * 2
    if hc.get("PidsLimit") is not None and hc["PidsLimit"] <= 0:
        hc["PidsLimit"] = None


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
    def __init__(self, cgroups, rootless, unavailable=None):
        self.cgroups = cgroups
        self.rootless = rootless
        self.unavailable = unavailable or os.environ.get("MINICTR_UNAVAILABLE_LIMITS") or REFUSE
        if self.unavailable not in (REFUSE, WARN):
            raise InvalidArgument(f"invalid --unavailable-limits {self.unavailable!r}: refuse or warn")

    def check(self, host_config, update=False):
        """Raise InvalidArgument (Docker's words) for limits that are wrong or that this machine cannot
        enforce (unless the user chose to go on without them: then returns the warnings)."""
        check_values(host_config, update)
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
            return self.cgroups.create(container_id, self.enforceable(cgroup_limits(host_config)))
        except OSError as e:
            raise MinictrError(f"cannot set the container's cgroup limits: {e.strerror or e}") from None

    def update(self, host_config, body, paths):
        """Merge an update body (POST /containers/{id}/update) into HOST_CONFIG (in place), checked as
        Docker does; with PATHS (a running container's groups) the new limits are written there too.
        Returns the warnings."""
        from minictr.errors import MinictrError

        changed = {key for key, _f, _c in CGROUP_FIELDS if body.get(key) not in (None, 0, "")}
        if "PidsLimit" in body and body["PidsLimit"] is not None:
            changed.add("PidsLimit")
        merged = dict(host_config)
        merged.update({key: body[key] for key in changed})
        memory, swap = merged.get("Memory") or 0, merged.get("MemorySwap") or 0
        if "Memory" in changed and "MemorySwap" not in changed and swap > 0 and memory > swap:
            raise InvalidArgument("Memory limit should be smaller than already set memoryswap limit, "
                                  "update the memoryswap at the same time")
        if "NanoCpus" in changed:
            merged["CpuQuota"], merged["CpuPeriod"] = 0, 0
        if changed & {"CpuQuota", "CpuPeriod"}:
            merged["NanoCpus"] = 0
        if merged.get("PidsLimit") is not None and merged["PidsLimit"] <= 0:
            merged["PidsLimit"] = None
        policy = body.get("RestartPolicy") or {}
        if policy.get("Name"):
            if host_config.get("AutoRemove") and policy["Name"] != "no":
                raise InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container")
            merged["RestartPolicy"] = {"Name": policy["Name"], "MaximumRetryCount": policy.get("MaximumRetryCount") or 0}
            from minictr.containers.config import _check_restart_policy

            _check_restart_policy(merged)
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
