#!/usr/bin/env python3
"""The daemon's side of `minictr run --rm … true` (or of exec, or churn), without the CLI's start-up.

One long-lived client over the daemon's socket does, for each container,
create → start → wait → remove, and times each step with perf_counter. The
result is per container (mean, median, stddev, min, max of the whole cycle
and of each step), printed as JSON (and written to --json if given).

usage: daemon_side.py SOCKET [--mode run|exec|churn] [--image busybox-local]
                             [--runs 30] [--warmup 5] [--auto-remove] [--json OUT.json]

With --auto-remove the container is created with AutoRemove and waited for
with condition=removed, as `minictr run --rm` does (the removal is then part
of the "wait" step and "remove" is 0).

--mode exec: `exec CTR true` into one running `sleep 1000` (removed at the
end): exec create → start (hijacked, read to the end of the stream) → inspect
(the exit code). --mode churn: what `run -d … sleep 1000` and `rm -f` ask of
the daemon: create → start, then DELETE ?force=1 (`--runs` containers, all
started before the first is removed, as bench/churn.py does).

Run it with the venv's python so that `minictr.client` imports:
    /opt/minictr/venv/bin/python bench/daemon_side.py /tmp/bench-mc/minictr.sock
"""

import argparse
import json
import statistics
import sys
import time

from minictr.client import Client

STEPS = {"run": ("create", "start", "wait", "remove"),
         "exec": ("create", "start", "inspect"),
         "churn": ("create", "start", "remove")}


def one(client, image, auto_remove=False, network="none"):
    t = [time.perf_counter()]
    host_config = {"NetworkMode": network}
    if auto_remove:
        host_config["AutoRemove"] = True
    cid = client.post("/containers/create", None, {
        "Image": image, "Cmd": ["true"], "HostConfig": host_config,
    }).json()["Id"]
    t.append(time.perf_counter())
    if auto_remove:  # as `minictr run --rm` does: the wait is posted before the start
        waiter = client.stream("POST", f"/containers/{cid}/wait", {"condition": "removed"})
        client.post(f"/containers/{cid}/start")
        t.append(time.perf_counter())
        status = waiter.json()
        t.append(time.perf_counter())
        t.append(t[-1])  # the removal is inside the wait
    else:
        client.post(f"/containers/{cid}/start")
        t.append(time.perf_counter())
        status = client.stream("POST", f"/containers/{cid}/wait").json()
        t.append(time.perf_counter())
        client.delete(f"/containers/{cid}")
        t.append(time.perf_counter())
    if status.get("StatusCode") != 0:
        raise SystemExit(f"daemon_side: container exited with {status}")
    return [b - a for a, b in zip(t, t[1:])]


def one_exec(client, cid):
    t = [time.perf_counter()]
    eid = client.post(f"/containers/{cid}/exec", None, {
        "Cmd": ["true"], "AttachStdout": True, "AttachStderr": True,
    }).json()["Id"]
    t.append(time.perf_counter())
    sock, _ = client.hijack(f"/exec/{eid}/start")  # a bare _socket.socket: no `with`
    try:
        while sock.recv(65536):
            pass
    finally:
        sock.close()
    t.append(time.perf_counter())
    code = client.get(f"/exec/{eid}/json")["ExitCode"]
    t.append(time.perf_counter())
    if code != 0:
        raise SystemExit(f"daemon_side: exec exited with {code}")
    return [b - a for a, b in zip(t, t[1:])]


def sleeper(client, image):
    cid = client.post("/containers/create", None, {
        "Image": image, "Cmd": ["sleep", "1000"], "HostConfig": {"NetworkMode": "none"},
    }).json()["Id"]
    client.post(f"/containers/{cid}/start")
    return cid


def churn(client, image, n):
    """n × (create, start) then n × forced DELETE; per container [create, start, remove]."""
    samples, ids = [], []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            cid = client.post("/containers/create", None, {
                "Image": image, "Cmd": ["sleep", "1000"], "HostConfig": {"NetworkMode": "none"},
            }).json()["Id"]
            ids.append(cid)
            t1 = time.perf_counter()
            client.post(f"/containers/{cid}/start")
            samples.append([t1 - t0, time.perf_counter() - t1])
        for s in samples:
            t0 = time.perf_counter()
            client.delete(f"/containers/{ids[0]}", {"force": "1"})
            ids.pop(0)
            s.append(time.perf_counter() - t0)
    finally:
        for cid in ids:
            client.delete(f"/containers/{cid}", {"force": "1"})
    return samples


def summary(xs):
    return {
        "mean": statistics.fmean(xs),
        "median": statistics.median(xs),
        "stddev": statistics.stdev(xs) if len(xs) > 1 else 0.0,
        "min": min(xs),
        "max": max(xs),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("socket")
    ap.add_argument("--mode", choices=sorted(STEPS), default="run")
    ap.add_argument("--image", default="busybox-local")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--auto-remove", action="store_true",
                    help="AutoRemove and wait?condition=removed (as `run --rm`) instead of an explicit DELETE")
    ap.add_argument("--network", default="none", help="the containers' NetworkMode (run mode)")
    ap.add_argument("--json")
    args = ap.parse_args()

    client = Client(args.socket)
    if args.mode == "run":
        for _ in range(args.warmup):
            one(client, args.image, args.auto_remove, args.network)
        samples = [one(client, args.image, args.auto_remove, args.network) for _ in range(args.runs)]
    elif args.mode == "exec":
        cid = sleeper(client, args.image)
        try:
            for _ in range(args.warmup):
                one_exec(client, cid)
            samples = [one_exec(client, cid) for _ in range(args.runs)]
        finally:
            client.delete(f"/containers/{cid}", {"force": "1"})
    else:
        churn(client, args.image, args.warmup)
        samples = churn(client, args.image, args.runs)

    result = {
        "mode": args.mode,
        "runs": args.runs,
        "warmup": args.warmup,
        "total": summary([sum(s) for s in samples]),
        "steps": {name: summary([s[i] for s in samples]) for i, name in enumerate(STEPS[args.mode])},
        "samples": samples,
    }
    text = json.dumps(result, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text if not args.json else json.dumps({k: result[k] for k in ("total", "steps")}))


if __name__ == "__main__":
    sys.exit(main())
