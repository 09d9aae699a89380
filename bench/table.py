#!/usr/bin/env python3
"""Print bench/run's results (hyperfine JSON exports in DIR) as a Markdown table.

usage: table.py DIR
"""

import json
import os
import sys

D = sys.argv[1]


def load(name):
    p = os.path.join(D, name + ".json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def hf(name):
    """(mean, stddev) in seconds of a hyperfine export, or None."""
    r = load(name)
    if r is None:
        return None
    r = r["results"][0]
    return r["mean"], r["stddev"] or 0.0


def ds(name):
    r = load(name)
    if r is None:
        return None
    return r


def ms(x):
    return f"{x * 1000:.1f} ms"


def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "–"


rows = []  # (what, mean, sd, ratio text)


def row(what, m, ref=None, refname=""):
    if m is None:
        return
    mean, sd = m
    rows.append((what, f"{ms(mean)} ± {sd * 1000:.1f}", ratio(mean, ref) + (f" of {refname}" if ref and refname else "")))


mc = hf("minictr-run")
mc_mean = mc[0] if mc else None
docker, podman = hf("docker-run"), hf("podman-run")
crun = hf("crun")
side = ds("daemon-side")

row("`minictr run --rm --network none busybox-local true`", mc, mc_mean)
row("`minictr run …` without bytecode caches (PYTHONDONTWRITEBYTECODE=1)", hf("minictr-run-nopyc"), mc_mean)
row("`docker run --rm --network none IMG true`", docker, mc_mean)
row("`podman run --rm --network none IMG true` (root)", podman, mc_mean)
row("`unshare -Urpmnui --fork /bin/true` (floor)", hf("unshare"), mc_mean)
row("`crun run` OCI bundle, `true`", crun, mc_mean)
row("`runc run` OCI bundle, `true`", hf("runc"), mc_mean)
if side:
    t = side["total"]
    row("minictr daemon side: create+start+wait+remove over the API, per container", (t["mean"], t["stddev"]), mc_mean)
    for step, s in side["steps"].items():
        row(f"  … {step}", (s["mean"], s["stddev"]), mc_mean)
mcps = hf("minictr-ps")
mcps_mean = mcps[0] if mcps else None
row("`python -c pass` (venv python)", hf("python-pass"), mcps_mean, "minictr ps")
row("`minictr ps`", mcps, mcps_mean, "minictr ps")
row("`docker ps`", hf("docker-ps"), mcps_mean, "minictr ps")
row("`podman ps` (root)", hf("podman-ps"), mcps_mean, "minictr ps")
rl = hf("minictr-run-rootless")
row("rootless `minictr run --rm --network none busybox-local true`", rl, mc_mean)
rl_side = ds("daemon-side-rootless")
if rl_side:
    t = rl_side["total"]
    row("rootless minictr daemon side, per container", (t["mean"], t["stddev"]), mc_mean)
row("rootless `podman run --rm --network none IMG true`", hf("podman-run-rootless"), mc_mean)

print("| what | mean ± σ | ratio (to `minictr run` unless said) |")
print("| --- | ---: | ---: |")
for what, m, r in rows:
    print(f"| {what} | {m} | {r} |")
print()

# Headline ratios against the targets.
peers = [(n, v[0]) for n, v in (("docker", docker), ("podman", podman)) if v]
if mc and peers:
    name, best = min(peers, key=lambda p: p[1])
    print(f"- minictr run / faster of docker, podman ({name}): **{mc_mean / best:.2f}×** (target ≤ 0.25×)")
if side and crun:
    print(f"- minictr daemon side / crun run: **{side['total']['mean'] / crun[0]:.2f}×** (target ≤ 2×)")
if rl and hf("podman-run-rootless"):
    print(f"- rootless: minictr run / podman run: **{rl[0] / hf('podman-run-rootless')[0]:.2f}×**")

# Import time of the CLI.
p = os.path.join(D, "importtime.txt")
if os.path.exists(p):
    total, top = 0, []
    with open(p) as f:
        for line in f:
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            selfus, cum, name = (x.strip() if i < 2 else x for i, x in enumerate(line[len("import time:"):].split("|")))
            total += int(selfus)
            if not name.startswith("  "):  # top-level imports (one leading space)
                top.append((int(cum), name.strip()))
    top.sort(reverse=True)
    print(f"- `python -X importtime -m minictr ps`: {total / 1000:.1f} ms of imports in all; "
          "largest top-level: " + ", ".join(f"{n} {c / 1000:.1f} ms" for c, n in top[:6]))

p = os.path.join(D, "notes.txt")
if os.path.exists(p):
    for line in open(p):
        if line.strip():
            print(f"- {line.strip()}")
