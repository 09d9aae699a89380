#!/usr/bin/env python3
"""Resident memory of groups of processes: RSS (VmRSS) and PSS (smaps_rollup).

usage: memory.py [--json OUT.json] GROUP=SELECTOR [GROUP=SELECTOR ...]

SELECTOR is one of
  pid:PID[,PID…]             these processes
  cmd:NAME:TEXT              every process whose argv[0] has the basename NAME
                             and whose command line contains TEXT
  cmd:NAME:@FILE             … contains any of the lines of FILE (container ids)
A group may end in `#N` (e.g. `monitor=cmd:minictr-monitor:/tmp/x/#100`): the
number of processes it must find; fewer or more is an error.

For each group: the number of processes, and the total, mean, min and max of
RSS and of PSS, in bytes. PSS charges shared pages to each sharer in part, so
it is the fairer figure for many copies of one small binary; RSS is what
`ps` shows. Run as root to read every process's smaps_rollup.
"""

import argparse
import json
import os
import statistics
import sys


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return []


def kib_field(path, name):
    """A `Name:   N kB` line of a /proc file, in bytes, or None."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def select(selector):
    kind, _, rest = selector.partition(":")
    if kind == "pid":
        return [int(p) for p in rest.split(",") if p]
    if kind == "cmd":
        name, _, text = rest.partition(":")
        if text.startswith("@"):
            with open(text[1:]) as f:
                needles = [line.strip() for line in f if line.strip()]
        else:
            needles = [text]
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            argv = cmdline(entry)
            if argv and os.path.basename(argv[0]) == name:
                line = " ".join(argv)
                if any(n in line for n in needles):
                    pids.append(int(entry))
        return sorted(pids)
    raise ValueError(f"unknown selector {selector!r} (pid:… or cmd:NAME:TEXT)")


def stats(xs):
    if not xs:
        return None
    return {"total": sum(xs), "mean": statistics.fmean(xs), "min": min(xs), "max": max(xs)}


def measure(pids):
    rss = [kib_field(f"/proc/{p}/status", "VmRSS") for p in pids]
    pss = [kib_field(f"/proc/{p}/smaps_rollup", "Pss") for p in pids]
    alive = [i for i, r in enumerate(rss) if r is not None]
    return {
        "count": len(alive),
        "pids": [pids[i] for i in alive],
        "rss": stats([rss[i] for i in alive]),
        "pss": stats([pss[i] for i in alive if pss[i] is not None]),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json")
    ap.add_argument("groups", nargs="+", metavar="GROUP=SELECTOR")
    args = ap.parse_args()
    result = {}
    for spec in args.groups:
        name, sep, selector = spec.partition("=")
        if not sep:
            ap.error(f"{spec!r}: expected GROUP=SELECTOR")
        selector, _, expect = selector.partition("#")
        try:
            group = measure(select(selector))
        except (ValueError, OSError) as e:
            print(f"memory: {name}: {e}", file=sys.stderr)
            return 1
        if expect and group["count"] != int(expect):
            print(f"memory: {name}: found {group['count']} processes, expected {expect}", file=sys.stderr)
            return 1
        result[name] = group
    text = json.dumps(result, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(json.dumps({n: {"count": g["count"], "rss_mean_mb": round(g["rss"]["mean"] / 2**20, 2) if g["rss"] else None}
                      for n, g in result.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
