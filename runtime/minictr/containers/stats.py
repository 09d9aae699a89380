"""One sample of a container's resource use, as Docker's GET /containers/{id}/stats shows it.

From the container's cgroups (v1 or v2) when it has them; without (rootless on cgroup v1, or v2
without delegation) from /proc: the sum over the processes of the container's PID namespace, so
that cpu, memory and pids still show.
"""

import os
import time

from minictr.containers.cgroups import read_or_empty
from minictr.spec.times import rfc3339

_TICKS = os.sysconf("SC_CLK_TCK")
_NS_PER_TICK = 10**9 // _TICKS


def _int(text, default=0):
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else default


def _keyed(text):
    """`key value` lines -> {key: int}."""
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def host_memory():
    for line in read_or_empty("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def system_cpu_usage():
    """Nanoseconds of cpu time of the host since boot (Docker: the first seven fields of /proc/stat's cpu line)."""
    for line in read_or_empty("/proc/stat").splitlines():
        if line.startswith("cpu "):
            return sum(int(v) for v in line.split()[1:8]) * _NS_PER_TICK
    return 0


def online_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


def networks(pid):
    """{interface: Docker's counters} from the container's /proc/<pid>/net/dev."""
    result = {}
    for line in read_or_empty(f"/proc/{pid}/net/dev").splitlines()[2:]:
        name, _, counters = line.partition(":")
        fields = [int(v) for v in counters.split()]
        if len(fields) < 12:
            continue
        result[name.strip()] = {"rx_bytes": fields[0], "rx_packets": fields[1], "rx_errors": fields[2],
                                "rx_dropped": fields[3], "tx_bytes": fields[8], "tx_packets": fields[9],
                                "tx_errors": fields[10], "tx_dropped": fields[11]}
    return result


def _file(paths, name):
    for path in paths:
        if os.path.exists(os.path.join(path, name)):
            return os.path.join(path, name)
    return None


def _cgroup_sample(paths):
    """(cpu, memory, pids, blkio) from the container's groups; None when they have no cpu accounting."""
    cpu_stat = _file(paths, "cpu.stat")
    usage_file = _file(paths, "cpuacct.usage")
    if usage_file:  # v1
        ticks = _keyed(read_or_empty(_file(paths, "cpuacct.stat") or "/nonexistent"))
        percpu = [int(v) for v in read_or_empty(_file(paths, "cpuacct.usage_percpu") or "/nonexistent").split()]
        cpu = {"total_usage": _int(read_or_empty(usage_file)), "percpu_usage": percpu or None,
               "usage_in_kernelmode": ticks.get("system", 0) * _NS_PER_TICK,
               "usage_in_usermode": ticks.get("user", 0) * _NS_PER_TICK}
        memory_dir = os.path.dirname(_file(paths, "memory.usage_in_bytes") or "/x/x")
        memory = {"usage": _int(read_or_empty(os.path.join(memory_dir, "memory.usage_in_bytes"))),
                  "max_usage": _int(read_or_empty(os.path.join(memory_dir, "memory.max_usage_in_bytes"))),
                  "stats": _keyed(read_or_empty(os.path.join(memory_dir, "memory.stat"))),
                  "limit": _int(read_or_empty(os.path.join(memory_dir, "memory.limit_in_bytes")))}
        blkio = _blkio_v1(read_or_empty(_file(paths, "blkio.throttle.io_service_bytes_recursive") or "/nonexistent"))
    elif cpu_stat and _file(paths, "memory.current"):  # v2
        usec = _keyed(read_or_empty(cpu_stat))
        cpu = {"total_usage": usec.get("usage_usec", 0) * 1000, "usage_in_kernelmode": usec.get("system_usec", 0) * 1000,
               "usage_in_usermode": usec.get("user_usec", 0) * 1000}
        limit = read_or_empty(_file(paths, "memory.max")).strip()
        memory = {"usage": _int(read_or_empty(_file(paths, "memory.current"))),
                  "stats": _keyed(read_or_empty(_file(paths, "memory.stat") or "/nonexistent")),
                  "limit": _int(limit) if limit != "max" else 0}
        blkio = _blkio_v2(read_or_empty(_file(paths, "io.stat") or "/nonexistent"))
    else:
        return None
    pids_max = read_or_empty(_file(paths, "pids.max") or "/nonexistent").strip()
    pids = {"current": _int(read_or_empty(_file(paths, "pids.current") or "/nonexistent")),
            "limit": _int(pids_max) if pids_max.isdigit() else 0}
    return cpu, memory, pids, blkio


def _blkio_v1(text):
    entries = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, minor = parts[0].split(":")
            entries.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
    return entries


def _blkio_v2(text):
    entries = []
    for line in text.splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        values = dict(p.split("=", 1) for p in pairs if "=" in p)
        for key, op in (("rbytes", "read"), ("wbytes", "write")):
            if key in values:
                entries.append({"major": int(major), "minor": int(minor), "op": op, "value": int(values[key])})
    return entries


def namespace_pids(init_pid):
    """The pids (as the daemon sees them) of the processes in INIT_PID's PID namespace."""
    try:
        namespace = os.readlink(f"/proc/{init_pid}/ns/pid")
    except OSError:
        return []
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/pid") == namespace:
                    pids.append(int(name))
            except OSError:
                continue
    return pids


def _proc_sample(init_pid):
    """(cpu, memory, pids, blkio) summed over the container's processes (no cgroups here)."""
    user = system = rss = tasks = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in namespace_pids(init_pid):
        stat = read_or_empty(f"/proc/{pid}/stat")
        fields = stat[stat.rfind(")") + 2:].split()  # after the command name, which may hold spaces
        if len(fields) < 20:
            continue
        user, system = user + int(fields[11]), system + int(fields[12])
        tasks += int(fields[17])
        statm = read_or_empty(f"/proc/{pid}/statm").split()
        rss += int(statm[1]) * page if len(statm) > 1 else 0
    cpu = {"total_usage": (user + system) * _NS_PER_TICK, "usage_in_kernelmode": system * _NS_PER_TICK,
           "usage_in_usermode": user * _NS_PER_TICK}
    memory = {"usage": rss, "stats": {}, "limit": host_memory()}
    return cpu, memory, {"current": tasks, "limit": 0}, []


def sample(container, paths):
    """One stats object (no precpu_stats yet) of CONTAINER, its cgroups at PATHS."""
    now = time.time_ns()
    running = container.pid > 0
    measured = (_cgroup_sample(paths) if paths else None) if running else None
    if running and measured is None:
        measured = _proc_sample(container.pid)
    if measured is None:  # not running: Docker's zeros
        measured = ({"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, {}, {}, [])
    cpu, memory, pids, blkio = measured
    if memory:
        machine = host_memory()
        if not memory.get("limit") or memory["limit"] > machine:
            memory["limit"] = machine  # no limit: the machine's memory, as Docker shows it
    return {
        "read": rfc3339(now), "preread": "0001-01-01T00:00:00Z",
        "pids_stats": pids,
        "blkio_stats": {"io_service_bytes_recursive": blkio, "io_serviced_recursive": None,
                        "io_queue_recursive": None, "io_service_time_recursive": None,
                        "io_wait_time_recursive": None, "io_merged_recursive": None,
                        "io_time_recursive": None, "sectors_recursive": None},
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": {"cpu_usage": cpu, "system_cpu_usage": system_cpu_usage() if running else 0,
                      "online_cpus": online_cpus() if running else 0,
                      "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
        "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                         "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
        "memory_stats": memory,
        "name": "/" + container.name, "id": container.id,
        "networks": networks(container.pid) if running else {},
    }


def with_previous(current, previous):
    """CURRENT with PREVIOUS's cpu as its precpu_stats (Docker's cpu % is the difference)."""
    if previous is not None:
        current["precpu_stats"] = previous["cpu_stats"]
        current["preread"] = previous["read"]
    return current


def collect(containers, ref):
    """One sample of the container REF of the container service CONTAINERS."""
    container = containers.get(ref)
    paths = []
    if container.pid > 0:
        paths = containers.groups_of(container)
    return sample(container, paths)
