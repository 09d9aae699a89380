#!/usr/bin/env python3
"""Container churn through an engine's CLI: N × `run -d …`, then N × `rm -f ID`.

Each CLI invocation is timed on its own (perf_counter around the whole child
process, as a user's shell would see it). The result is the time per container
of the run phase, of the rm phase and of both, as JSON (written to --json).

usage: churn.py --run 'minictr run -d --network none busybox-local sleep 1000'
                --rm 'minictr rm -f' [-n 30] [--json OUT.json]

The --run command must print the new container's id on its last line of
stdout (docker, podman and minictr all do); --rm gets one id appended. If
anything fails, every container created so far is removed before exiting
non-zero, so nothing is left running.

Needs only the standard library (it runs as the rootless user too).
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time


def timed(argv):
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
    return elapsed, p.stdout


def summary(xs):
    return {
        "mean": statistics.fmean(xs),
        "median": statistics.median(xs),
        "stddev": statistics.stdev(xs) if len(xs) > 1 else 0.0,
        "min": min(xs),
        "max": max(xs),
        "sum": sum(xs),
    }


def churn(run_argv, rm_argv, n):
    ids, run_times, rm_times = [], [], []
    try:
        t_run = time.perf_counter()
        for _ in range(n):
            elapsed, out = timed(run_argv)
            lines = out.split()
            if not lines:
                raise RuntimeError(f"{shlex.join(run_argv)} printed no id")
            ids.append(lines[-1])
            run_times.append(elapsed)
        t_run = time.perf_counter() - t_run
        t_rm = time.perf_counter()
        while ids:
            elapsed, _ = timed(rm_argv + [ids[0]])
            ids.pop(0)
            rm_times.append(elapsed)
        t_rm = time.perf_counter() - t_rm
    finally:
        if ids:  # a failure: leave nothing behind
            subprocess.run(rm_argv + ids, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {
        "n": n,
        "run_cmd": shlex.join(run_argv),
        "rm_cmd": shlex.join(rm_argv) + " ID",
        # wall time of each phase divided by N (what the target is about)
        "per_container": {"run": t_run / n, "rm": t_rm / n, "total": (t_run + t_rm) / n},
        "run": summary(run_times),
        "rm": summary(rm_times),
        "samples": {"run": run_times, "rm": rm_times},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="the run command, without an id")
    ap.add_argument("--rm", required=True, help="the remove command; the id is appended")
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.n < 2:
        ap.error("-n must be at least 2")
    try:
        result = churn(shlex.split(args.run), shlex.split(args.rm), args.n)
    except RuntimeError as e:
        print(f"churn: {e}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(json.dumps(result["per_container"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
