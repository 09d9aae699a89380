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

if rows:
    print("| what | mean ± σ | ratio (to `minictr run` unless said) |")
    print("| --- | ---: | ---: |")
    for what, m, r in rows:
        print(f"| {what} | {m} | {r} |")
    print()

headlines = []  # the new sections' ratios against the issue's targets, printed with the others


def times(x):
    return f"{x:.2f}×"


def churn_table():
    """Per-container times of N × run -d, then N × rm -f (bench/churn.py)."""
    engines = [("minictr (root)", "churn-minictr", "churn-minictr"),
               ("docker (root)", "churn-docker", "churn-minictr"),
               ("podman (root, `rm -f -t 0`)", "churn-podman", "churn-minictr"),
               ("minictr rootless", "churn-minictr-rootless", "churn-minictr-rootless"),
               ("podman rootless (`rm -f -t 0`)", "churn-podman-rootless", "churn-minictr-rootless")]
    found = [(what, dict(load(name), _name=name), load(ref), ref) for what, name, ref in engines if load(name)]
    if not found:
        return
    n = found[0][1]["n"]
    print(f"Churn: {n} × `run -d --network none IMG sleep 1000`, then {n} × `rm -f ID` "
          "(one CLI invocation each, mean ± σ; per container = wall time of both phases / N)")
    print()
    print("| engine | `run -d` | `rm -f` | per container | ratio to minictr (same mode) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for what, r, ref, refname in found:
        pc = r["per_container"]
        cell = lambda ph: f"{ms(r[ph]['mean'])} ± {r[ph]['stddev'] * 1000:.1f}"
        print(f"| {what} | {cell('run')} | {cell('rm')} | {ms(pc['total'])} | "
              f"{ratio(pc['total'], ref['per_container']['total'] if ref else None)} |")
        side = ds("daemon-side-churn" + ("-rootless" if refname.endswith("-rootless") else ""))
        if side and refname == r.get("_name"):
            st = side["steps"]
            cell = lambda m, sd: f"{ms(m)} ± {sd * 1000:.1f}"
            run_mean = st["create"]["mean"] + st["start"]["mean"]
            print(f"| … its daemon side alone (API: create+start; DELETE ?force=1) | "
                  f"{cell(run_mean, (st['create']['stddev'] ** 2 + st['start']['stddev'] ** 2) ** 0.5)} | "
                  f"{cell(st['remove']['mean'], st['remove']['stddev'])} | {ms(side['total']['mean'])} | "
                  f"{ratio(side['total']['mean'], pc['total'])} |")
    print()
    for mc_name, mode in (("churn-minictr", "root"), ("churn-minictr-rootless", "rootless")):
        mc = load(mc_name)
        if not mc:
            continue
        peers = ["docker", "podman"] if mode == "root" else ["podman"]
        for peer in peers:
            r = load(f"churn-{peer}" + ("-rootless" if mode == "rootless" else ""))
            if r:
                x = r["per_container"]["total"] / mc["per_container"]["total"]
                headlines.append(f"churn ({mode}): {peer} / minictr per container: **{times(x)}** (target ≥ 3×)")


def exec_table():
    def side(name):
        r = ds(name)
        return (r["total"]["mean"], r["total"]["stddev"]) if r else None

    rows = [("`minictr exec CTR true`", hf("minictr-exec"), "minictr-exec"),
            ("… its daemon side alone (API: exec create, start to end of stream, inspect)",
             side("daemon-side-exec"), "minictr-exec"),
            ("`docker exec CTR true`", hf("docker-exec"), "minictr-exec"),
            ("`podman exec CTR true` (root)", hf("podman-exec"), "minictr-exec"),
            ("rootless `minictr exec CTR true`", hf("minictr-exec-rootless"), "minictr-exec-rootless"),
            ("… its daemon side alone", side("daemon-side-exec-rootless"), "minictr-exec-rootless"),
            ("rootless `podman exec CTR true`", hf("podman-exec-rootless"), "minictr-exec-rootless")]
    rows = [r for r in rows if r[1]]
    if not rows:
        return
    print("Exec into a running `sleep 1000` container")
    print()
    print("| what | mean ± σ | ratio to minictr exec (same mode) |")
    print("| --- | ---: | ---: |")
    for what, m, ref in rows:
        refm = hf(ref)
        print(f"| {what} | {ms(m[0])} ± {m[1] * 1000:.1f} | {ratio(m[0], refm[0] if refm else None)} |")
    print()
    for ref, peer, mode in (("minictr-exec", "docker-exec", "root"), ("minictr-exec", "podman-exec", "root"),
                            ("minictr-exec-rootless", "podman-exec-rootless", "rootless")):
        a, b = hf(peer), hf(ref)
        if a and b:
            target = " (target ≥ 3×)" if peer == "docker-exec" else ""
            headlines.append(f"exec ({mode}): {peer.split('-')[0]} exec / minictr exec: **{times(a[0] / b[0])}**{target}")


def mb(x):
    return f"{x / 2**20:.2f} MB" if x is not None else "–"


def memory_table():
    mc, mc_idle = load("memory-minictr"), load("memory-minictr-idle")
    dk, dk_idle = load("memory-docker"), load("memory-docker-idle")
    pm = load("memory-podman")
    if not any((mc, mc_idle, dk, dk_idle, pm)):
        return
    n = next((g["monitor"]["count"] for g in (mc,) if g and "monitor" in g), None) \
        or next((g["shim"]["count"] for g in (dk,) if g and "shim" in g), None) \
        or next((g["conmon"]["count"] for g in (pm,) if g and "conmon" in g), None)
    print(f"Memory with {n} idle containers (`sleep 1000`): RSS (VmRSS) and PSS (smaps_rollup)")
    print()
    print("| what | processes | RSS mean (max) | PSS mean | RSS total | ratio of RSS to minictr's |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")

    def group(what, g, ref=None):
        if not g or not g["rss"]:
            return
        pss = g["pss"]["mean"] if g["pss"] else None
        mx = f" ({mb(g['rss']['max'])})" if g["rss"]["max"] is not None else ""
        print(f"| {what} | {g['count']} | {mb(g['rss']['mean'])}{mx} | {mb(pss)} | "
              f"{mb(g['rss']['total'])} | {ratio(g['rss']['mean'], ref) if ref else '–'} |")

    def total(*gs):
        gs = [g for g in gs if g and g["rss"]]
        if not gs:
            return None
        pss = [g["pss"]["total"] for g in gs if g["pss"]]
        return {"count": sum(g["count"] for g in gs),
                # one row for all of them together: its "mean" is their sum
                "rss": {"total": sum(g["rss"]["total"] for g in gs), "mean": sum(g["rss"]["total"] for g in gs),
                        "max": None},
                "pss": {"mean": sum(pss)} if len(pss) == len(gs) else None}

    mon = mc["monitor"]["rss"]["mean"] if mc and mc.get("monitor", {}).get("rss") else None
    daemon = mc["daemon"]["rss"]["mean"] if mc else None
    idle = mc_idle["daemon"]["rss"]["mean"] if mc_idle else None
    group("minictr-monitor, per container", mc and mc.get("monitor"), mon)
    group("conmon (podman root), per container", pm and pm.get("conmon"), mon)
    group("containerd-shim-runc-v2 (docker), per container", dk and dk.get("shim"), mon)
    group("minictr daemon, no container", mc_idle and mc_idle.get("daemon"), idle)
    group(f"minictr daemon, {n} containers", mc and mc.get("daemon"), daemon)
    group("dockerd + containerd, no container", total(dk_idle and dk_idle.get("dockerd"),
                                                       dk_idle and dk_idle.get("containerd")), idle)
    group(f"dockerd + containerd, {n} containers", total(dk and dk.get("dockerd"), dk and dk.get("containerd")), daemon)
    group(f"  … dockerd, {n} containers", dk and dk.get("dockerd"), daemon)
    group(f"  … containerd, {n} containers", dk and dk.get("containerd"), daemon)
    print()
    # Everything an engine holds per container: its per-container process plus its daemons' growth.
    per = {}
    if mc and mc_idle and mon is not None:
        per["minictr"] = mon + (mc["daemon"]["rss"]["total"] - mc_idle["daemon"]["rss"]["total"]) / n
    if dk and dk_idle and dk.get("shim"):
        grow = sum(dk[k]["rss"]["total"] - dk_idle[k]["rss"]["total"] for k in ("dockerd", "containerd"))
        per["docker"] = dk["shim"]["rss"]["mean"] + grow / n
    if pm and pm.get("conmon"):
        per["podman"] = pm["conmon"]["rss"]["mean"]  # no daemon
    if per:
        print("- RSS per container, all included (the per-container process + the daemons' growth / N): "
              + ", ".join(f"{k} {mb(v)}" + (f" ({times(v / per['minictr'])})" if "minictr" in per and k != "minictr" else "")
                          for k, v in per.items()))
    if mon is not None:
        headlines.append(f"memory: minictr-monitor RSS **{mb(mon)}** per container (target < 1.5 MB)"
                         + (f"; PSS {mb(mc['monitor']['pss']['mean'])}" if mc["monitor"]["pss"] else ""))
    if daemon is not None:
        headlines.append(f"memory: minictr daemon RSS with {n} containers **{mb(daemon)}** (target < 60 MB)"
                         + (f"; dockerd + containerd {mb(total(dk['dockerd'], dk['containerd'])['rss']['total'])}"
                            if dk and dk.get("dockerd") and dk.get("containerd") else ""))
    if mon is not None and pm and pm.get("conmon"):
        headlines.append(f"memory: conmon / minictr-monitor RSS: **{times(pm['conmon']['rss']['mean'] / mon)}**")
    if mon is not None and dk and dk.get("shim"):
        headlines.append(f"memory: containerd-shim / minictr-monitor RSS: **{times(dk['shim']['rss']['mean'] / mon)}**")


def pull_table():
    """Pulls from a loopback registry into an empty store, and extraction of a cached blob (bench/run's `pull`)."""
    def secs(m):
        return f"{m[0]:.2f} s ± {m[1]:.2f}"

    images = [("big", "a ~200 MB one-layer image"), ("multi", "a 10-layer image (~100 MB)")]
    rows = []
    for img, what in images:
        ref = hf(f"pull-{img}-minictr")
        for engine, cmd in (("minictr", "`minictr pull`"), ("docker", "`docker pull`"),
                            ("podman", "`podman pull` (root)")):
            m = hf(f"pull-{img}-{engine}")
            if m:
                rows.append((f"{cmd} of {what}", secs(m), ratio(m[0], ref[0] if ref else None)))
        for engine in ("docker", "podman"):
            m = hf(f"pull-{img}-{engine}")
            if ref and m:
                headlines.append(f"pull ({img}): minictr / {engine}: **{times(ref[0] / m[0])}** (target ≤ 0.6×)")
    for kind, what in (("gz", "the gzip layer blob"), ("plain", "the same tar uncompressed")):
        ref = hf(f"extract-{kind}-tar")
        mc = hf(f"extract-{kind}-minictr")
        if ref:
            rows.append((f"`tar -x` of {what} (~200 MB)", secs(ref), "1.00× of tar -x"))
        if mc:
            rows.append((f"minictr's extractor (bench/extract.py) of {what}", secs(mc), ratio(mc[0], ref[0] if ref else None)
                         + (" of tar -x" if ref else "")))
        if ref and mc:
            headlines.append(f"extraction of a cached blob ({kind}): minictr / tar -x: **{times(mc[0] / ref[0])}** "
                             "(target: near tar -x)")
    m, ref = hf("extract-plain-sha256"), hf("extract-plain-tar")
    if m:
        rows.append(("sha256 (hashlib, `extract.py --hash`) of the uncompressed tar: what checking a diff id costs",
                     secs(m),
                     ratio(m[0], ref[0] if ref else None) + (" of tar -x" if ref else "")))
    if not rows:
        return
    print("Pull from a loopback registry into an empty store (hyperfine, the image removed before each run), "
          "and extraction of a cached blob")
    print()
    print("| what | mean ± σ | ratio to minictr pull (same image) |")
    print("| --- | ---: | ---: |")
    for what, m, r in rows:
        print(f"| {what} | {m} | {r} |")
    print()


churn_table()
exec_table()
memory_table()
pull_table()


def ports_table():
    """1000 MB through a published port into a container's nc -l (bench/run's `ports`)."""
    mc, rl = hf("ports-minictr"), hf("ports-minictr-rootless")
    entries = [("minictr (root)", mc, mc), ("docker (root)", hf("ports-docker"), mc),
               ("podman (root)", hf("ports-podman"), mc), ("minictr rootless", rl, rl),
               ("podman rootless", hf("ports-podman-rootless"), rl)]
    if not any(m for _, m, _ in entries):
        return
    print()
    print("| 1000 MB through a published port | mean ± σ | ratio to minictr (same mode) |")
    print("| --- | --- | --- |")
    for what, m, ref in entries:
        if m:
            print(f"| {what} | {m[0]:.2f} s ± {m[1]:.2f} | {ratio(m[0], ref[0] if ref else None)} |")
    for peer, ref, target in (("docker", mc, "ports-docker"), ("podman", mc, "ports-podman"),
                              ("podman rootless", rl, "ports-podman-rootless")):
        m = hf(target)
        if ref and m:
            headlines.append(f"published port, 1000 MB: minictr{' rootless' if 'rootless' in peer else ''} / "
                             f"{peer}: **{times(ref[0] / m[0])}** (target ≤ 1×)")


def bridge_table():
    """`run --rm IMG true` on each engine's default network (bench/run's `run-bridge`)."""
    mc, rl = hf("minictr-run-bridge"), hf("minictr-run-bridge-rootless")
    entries = [("`minictr run --rm busybox-local true` (root, default bridge)", mc, mc),
               ("`docker run --rm IMG true` (bridge)", hf("docker-run-bridge"), mc),
               ("`podman run --rm IMG true` (root, bridge)", hf("podman-run-bridge"), mc),
               ("rootless `minictr run --rm busybox-local true` (default bridge)", rl, rl),
               ("rootless `podman run --rm IMG true` (slirp4netns)", hf("podman-run-bridge-rootless"), rl)]
    if not any(m for _, m, _ in entries):
        return
    print("Start-up on the default network (bridge)")
    print()
    print("| what | mean ± σ | ratio to minictr (same mode) |")
    print("| --- | ---: | ---: |")
    for what, m, ref in entries:
        if m:
            print(f"| {what} | {ms(m[0])} ± {m[1] * 1000:.1f} | {ratio(m[0], ref[0] if ref else None)} |")
    print()
    for peer, ref, target in (("docker", mc, "docker-run-bridge"), ("podman", mc, "podman-run-bridge"),
                              ("podman rootless", rl, "podman-run-bridge-rootless")):
        m = hf(target)
        if ref and m:
            headlines.append(f"bridge start-up: minictr{' rootless' if 'rootless' in peer else ''} / {peer}: "
                             f"**{times(ref[0] / m[0])}** (target ≤ 0.20×)")


bridge_table()
ports_table()

# Headline ratios against the targets.
peers = [(n, v[0]) for n, v in (("docker", docker), ("podman", podman)) if v]
if mc and peers:
    name, best = min(peers, key=lambda p: p[1])
    print(f"- minictr run / faster of docker, podman ({name}): **{mc_mean / best:.2f}×** (target ≤ 0.25×)")
if side and crun:
    print(f"- minictr daemon side / crun run: **{side['total']['mean'] / crun[0]:.2f}×** (target ≤ 2×)")
if rl and hf("podman-run-rootless"):
    print(f"- rootless: minictr run / podman run: **{rl[0] / hf('podman-run-rootless')[0]:.2f}×**")

for h in headlines:
    print(f"- {h}")

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
