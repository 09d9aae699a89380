"""A log that cannot be written (a full disk) costs the monitor no memory: the lines are dropped,
as Docker's json-file driver drops them, and attached clients still get every byte."""

import os
import re
import socket
import struct
import threading
import time
from pathlib import Path

from .conftest import wait_for

# The monitor itself is a few MB; an attach client may hold up to 16 MB of unsent output
# (CLIENT_MAX_BUFFERED), which a reader draining as fast as it can never comes near.
RSS_BOUND_KB = 24 * 1024
FLOOD_SECONDS = 4


def memory_kb(pid) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}


def drain(client: socket.socket, received: list[int]):
    """Count what the attached client gets until the monitor closes the connection."""
    client.settimeout(30)
    while chunk := client.recv(1 << 20):
        received[0] += len(chunk)


def log_on_a_full_disk(upper: Path):
    # The monitor opens its log by path with O_APPEND: /dev/full answers every write ENOSPC.
    os.symlink("/dev/full", upper.parent / "run" / "ctr-json.log")


def test_a_flood_on_a_full_disk_keeps_the_monitor_small_and_attach_served(containers):
    c = containers.create(["yes", "a line of output that the log cannot take"],
                          prepare_upper=log_on_a_full_disk)
    assert c.created.startswith("created "), c.created
    client = c.attach(6)
    received = [0]
    reader = threading.Thread(target=drain, args=(client, received), daemon=True)
    reader.start()
    assert c.start() == "started\n"
    deadline = time.monotonic() + FLOOD_SECONDS
    while time.monotonic() < deadline:
        assert memory_kb(c.monitor_pid)["VmRSS"] < RSS_BOUND_KB, memory_kb(c.monitor_pid)
        time.sleep(0.1)
    seen = received[0]
    assert memory_kb(c.monitor_pid)["VmHWM"] < RSS_BOUND_KB, memory_kb(c.monitor_pid)
    assert seen > 10 * 1024 * 1024, f"the attached client got only {seen} bytes"
    wait_for(lambda: received[0] > seen, what="more output for the attached client")
    os.kill(c.pid, 9)
    assert c.wait_exit()[0] == 137
    assert c.log_lines_dropped() > 10 * 1024 * 1024 / 42  # every line the flood wrote
    reader.join(10)
    client.close()


FLOOD_BYTES = 40 * 1024 * 1024  # ten times what the monitor keeps for a client before the output waits


def stdout_bytes(client: socket.socket, pause=0.0, timeout=60.0) -> int:
    """The stdout payload of the multiplexed frames an attached client reads until EOF, PAUSE
    seconds after each read."""
    client.settimeout(timeout)
    chunks = []
    while chunk := client.recv(1 << 16):
        chunks.append(chunk)
        time.sleep(pause)
    data, offset, total = b"".join(chunks), 0, 0
    while offset < len(data):
        stream, length = struct.unpack_from(">BxxxI", data, offset)
        total += length if stream == 1 else 0
        offset += 8 + length
    return total


def test_a_slow_reader_gets_every_byte_while_the_container_waits_for_it(containers):
    # A reader that a busy machine slows (the daemon relaying to a docker CLI) falls far behind a
    # flood: the container's writes wait for it, and it loses nothing.
    c = containers.create(["sh", "-c", f"yes | head -c {FLOOD_BYTES}"], prepare_upper=log_on_a_full_disk)
    client = c.attach(2)
    assert c.start() == "started\n"
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(stdout_bytes(client, pause=0.005)))
    reader.start()
    time.sleep(1)  # some 13 MB read by now at most, and 4 MB kept for the reader
    assert not c.exit_path.exists(), "the container ran on past a reader far behind"
    reader.join(60)
    assert outcome == [FLOOD_BYTES]
    assert c.wait_exit()[0] == 0
    client.close()


def test_a_reader_that_stopped_for_good_is_dropped_and_the_container_goes_on(containers):
    c = containers.create(["sh", "-c", f"yes | head -c {FLOOD_BYTES}"], prepare_upper=log_on_a_full_disk)
    client = c.attach(2)  # and never read
    assert c.start() == "started\n"
    assert c.wait_exit(timeout=60)[0] == 0
    client.close()
