#!/usr/bin/env python3
"""Throughput of a published port: MB bytes from the host's loopback into a container's `nc -l`.

usage: ports.py OUT.json MB RUNS ENGINE-CLI…

Each run starts `ENGINE run -d -p 127.0.0.1:PORT:5000 busybox-local sh -c 'nc -l -p 5000 >/dev/null'`
(untimed, then a second for nc to listen), connects to 127.0.0.1:PORT and times sending MB
megabytes and the end of the connection (nc exits at EOF, so the port's end closes: every
byte reached the container), then removes the container. The image is `$BENCH_IMAGE`
(default busybox-local). Writes a hyperfine-shaped JSON export (mean, stddev, times).
"""

import json
import socket
import statistics
import subprocess
import sys
import time

CHUNK = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(engine, image, mb):
    port = free_port()
    cid = subprocess.run(engine + ["run", "-d", "-p", f"127.0.0.1:{port}:5000", image,
                                   "sh", "-c", "nc -l -p 5000 >/dev/null"],
                         check=True, capture_output=True, text=True).stdout.strip()
    try:
        time.sleep(1)  # nc listening in the container
        buf = b"\0" * CHUNK
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
            for _ in range(mb):
                s.sendall(buf)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        elapsed = time.monotonic() - start
    finally:
        subprocess.run(engine + ["rm", "-f", cid], capture_output=True)
    return elapsed


def main():
    out, mb, runs, engine = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    image = __import__("os").environ.get("BENCH_IMAGE", "busybox-local")
    one_run(engine, image, min(mb, 50))  # warm-up: images, bridge, first listener
    times = [one_run(engine, image, mb) for _ in range(runs)]
    result = {"command": " ".join(engine), "mean": statistics.mean(times),
              "stddev": statistics.stdev(times) if len(times) > 1 else 0.0, "times": times}
    with open(out, "w") as f:
        json.dump({"results": [result]}, f)
    print(f"{' '.join(engine)}: {result['mean']:.2f} s ± {result['stddev']:.2f} for {mb} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
