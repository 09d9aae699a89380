#!/usr/bin/env python3
"""The CPU an engine spends on healthchecks: N idle containers probed every second.

Runs N × `run -d --health-cmd true --health-interval 1s IMAGE sleep …` (or without the
healthcheck, --no-health, for the baseline), waits until every one is healthy (running), then
reads utime+stime of the engine's processes from /proc/PID/stat before and after SECONDS and
prints the CPU they used, as JSON. Each process is counted with its reaped children
(cutime+cstime): a probe's short-lived processes (minictr's exec monitor, runc exec under a
containerd shim) end up there. The probes run meanwhile are counted from the engine's own
`exec_die` events. The containers are removed at the end, whatever happened.

usage: health_cpu.py --cli 'minictr -H unix://SOCK' --image busybox-local --pid DAEMON_PID
                     [--comm-prefix minictr:] [-n 50] [--seconds 60] [--no-health] [--json OUT]
       health_cpu.py --cli 'docker -H unix:///tmp/dockerd.sock' --image bb --pid DOCKERD_PID \\
                     --pid CONTAINERD_PID --comm-prefix containerd-shim

--pid: an engine process (repeatable); --comm-prefix: every process whose name starts with it is
the engine's too (a shim per container, a monitor per container). Standard library only.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def cli(base, *args, check=True):
    result = subprocess.run(base + list(args), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{shlex.join(base + list(args))}: exit {result.returncode}: {result.stderr.strip()[-300:]}")
    return result.stdout


def ticks(pid):
    """(own, reaped children's) CPU ticks of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return utime + stime, cutime + cstime


def engine_pids(pids, prefixes):
    found = set(pids)
    for entry in os.listdir("/proc"):
        if entry.isdigit() and prefixes:
            try:
                with open(f"/proc/{entry}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if any(comm.startswith(p) for p in prefixes):
                found.add(int(entry))
    return found


def snapshot(pids, prefixes):
    return {pid: t for pid in engine_pids(pids, prefixes) if (t := ticks(pid)) is not None}


def used(before, after):
    own = children = 0
    for pid, (a_own, a_children) in after.items():
        b_own, b_children = before.get(pid, (0, 0))
        own += a_own - b_own
        children += a_children - b_children
    return own / TICK, children / TICK


def wait_all(base, names, health, timeout=180):
    deadline = time.monotonic() + timeout
    wanted = ["--filter", "health=healthy"] if health else ["--filter", "status=running"]
    while time.monotonic() < deadline:
        listed = set(cli(base, "ps", *wanted, "--format", "{{.Names}}").split())
        if set(names) <= listed:
            return
        time.sleep(1)
    raise RuntimeError(f"not all {len(names)} containers became {'healthy' if health else 'running'}")


def measure(base, image, n, seconds, pids, prefixes, health):
    names = [f"hcpu-{os.getpid()}-{i}" for i in range(n)]
    probe = ["--health-cmd", "true", "--health-interval", "1s"] if health else []
    made = []
    try:
        for name in names:
            cli(base, "run", "-d", "--name", name, "--network", "none", *probe, image, "sleep", "100000")
            made.append(name)
        wait_all(base, names, health)
        time.sleep(2)
        # To a file, not a pipe: a full pipe would stall the stream and undercount.
        counted = tempfile.TemporaryFile("w+")
        events = subprocess.Popen(base + ["events", "--filter", "event=exec_die", "--format", "{{.ID}}"],
                                  stdout=counted, stderr=subprocess.DEVNULL, text=True)
        before, t0 = snapshot(pids, prefixes), time.monotonic()
        time.sleep(seconds)
        after, elapsed = snapshot(pids, prefixes), time.monotonic() - t0
        events.terminate()
        events.wait()
        counted.seek(0)
        probes = len(counted.read().split())
        log = json.loads(cli(base, "inspect", "--format", "{{json .State.Health.Log}}", names[0]) or "null") \
            if health else None
    finally:
        for i in range(0, len(made), 10):
            cli(base, "rm", "-f", *made[i:i + 10], check=False)
    own, children = used(before, after)
    return {"containers": n, "healthcheck": "true every 1s" if health else "none", "seconds": round(elapsed, 1),
            "probes": probes, "cpu_seconds": {"engine": round(own, 2), "reaped_children": round(children, 2)},
            "cpu_percent_of_one_core": round(100 * (own + children) / elapsed, 1),
            "cpu_ms_per_probe": round(1000 * (own + children) / probes, 2) if probes else None,
            "last_probes_of_one": [{"start": e["Start"], "end": e["End"]} for e in log or []]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cli", required=True, help="the engine's CLI and its options, e.g. 'docker -H unix://…'")
    parser.add_argument("--image", required=True)
    parser.add_argument("--pid", type=int, action="append", default=[], help="an engine process (repeatable)")
    parser.add_argument("--comm-prefix", action="append", default=[],
                        help="processes whose name starts with this are the engine's too (repeatable)")
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--no-health", action="store_true", help="the same containers without a healthcheck")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    if not args.pid:
        parser.error("give the engine's process with --pid")
    result = measure(shlex.split(args.cli), args.image, args.n, args.seconds, args.pid, args.comm_prefix,
                     not args.no_health)
    result["cli"] = args.cli
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
