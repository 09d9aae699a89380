"""Docker's resource limits as users type them (`--memory 64m`, `--cpus 1.5`, `--ulimit nofile=10:20`)
and as the daemon checks the HostConfig fields that carry them, in create and update bodies.

No heavy import here: the CLI's fast path parses `--memory`, `--ulimit`, … with these functions too.
"""

from minictr.errors import InvalidArgument
from minictr.spec import restart

MIN_MEMORY = 6 * 1024 * 1024  # Docker's linuxMinMemory
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

# Docker's --ulimit names (the monitor's `rlimit` key knows the same).
ULIMIT_NAMES = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                "rss", "rtprio", "rttime", "sigpending", "stack")

# The limits a container's cgroups enforce: HostConfig field -> the flag a user types for it.
LIMIT_FLAGS = {"Memory": "--memory", "MemorySwap": "--memory-swap", "NanoCpus": "--cpus",
               "CpuShares": "--cpu-shares", "CpuQuota": "--cpu-quota", "CpuPeriod": "--cpu-period",
               "CpusetCpus": "--cpuset-cpus", "PidsLimit": "--pids-limit"}


# ---- what users type ----------------------------------------------------------------------------

# A pattern, compiled (and cached by re) at the first size parsed: the CLI imports this module on
# every `run` with a limit, and re would cost it ~7 ms.
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
                               ("shm_size", "ShmSize", parse_bytes), ("oom_score_adj", "OomScoreAdj", int),
                               ("memory_swappiness", "MemorySwappiness", int)):
        value = options.get(option)
        if value is not None and value != "":
            fields[key] = parse(value) if isinstance(value, str) and parse is not str else value
    if options.get("ulimit"):
        fields["Ulimits"] = [parse_ulimit(u) for u in options["ulimit"]]
    return fields


# ---- what the daemon gets -----------------------------------------------------------------------

def parse_cpuset(text):
    """`0-2,4` -> {0, 1, 2, 4}; InvalidArgument in Docker's words for anything else."""
    cpus = set()
    for part in text.split(","):
        first, sep, last = part.partition("-")
        if not first.isdigit() or (sep and not last.isdigit()) or (sep and int(last) < int(first)):
            raise InvalidArgument(f"Invalid value {text} for cpuset cpus")
        cpus.update(range(int(first), int(last if sep else first) + 1))
    return cpus


def check_values(hc, online_cpus, update=False):
    """Docker's checks of the resource fields of a HostConfig (or of an update body); ONLINE_CPUS is
    the set of the host's CPUs (cpuset and --cpus are checked against them)."""
    memory, swap = hc.get("Memory") or 0, hc.get("MemorySwap") or 0
    if memory and memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if memory < 0:
        raise InvalidArgument("Invalid value: memory limit can not be negative")
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if not update and memory == 0 and swap > 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    nano, ncpu = hc.get("NanoCpus") or 0, len(online_cpus)
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
        requested = parse_cpuset(hc["CpusetCpus"])
        if not requested <= online_cpus:
            raise InvalidArgument(f"Requested CPUs are not available - requested {hc['CpusetCpus']}, "
                                  f"available: {_cpuset_text(online_cpus)}")
    if (hc.get("ShmSize") or 0) < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    swappiness = hc.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1 and not 0 <= swappiness <= 100:
        raise InvalidArgument(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    if not -1000 <= (hc.get("OomScoreAdj") or 0) <= 1000:
        raise InvalidArgument(f"Invalid value {hc['OomScoreAdj']}, range for oom score adj is [-1000, 1000]")
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


def merge_update(host_config, body):
    """An update body (POST /containers/{id}/update) merged into a copy of HOST_CONFIG as Docker
    merges it: (the merged HostConfig, the limit fields the body changes). Checks what depends on
    both; the merged HostConfig still needs check_values(…, update=True)."""
    changed = {key for key in LIMIT_FLAGS if body.get(key) not in (None, 0, "")}
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
    policy = restart.updated(host_config, body.get("RestartPolicy"))
    if policy is not None:
        merged["RestartPolicy"] = policy
    return merged, changed
