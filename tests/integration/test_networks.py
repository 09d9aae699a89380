"""Networks: the default bridge, user-defined networks, network modes, and nothing left behind."""

import json
import os
import secrets
import subprocess

import pytest

from .conftest import ROOTLESS, daemon_pid, inspect, wait_until

# As root the bridges live in the host's namespace, which other suites' daemons share: ours gets
# its own default bridge name. (Rootless, each daemon has its own namespace.)
os.environ.setdefault("MINICTR_DEFAULT_BRIDGE", "mct" + secrets.token_hex(3))

def sh(daemon, ctr, script):
    return daemon.ok("exec", ctr, "sh", "-c", script)

def run_sleeper(daemon, image, *options, name=None):
    name = name or "n" + secrets.token_hex(4)
    daemon.ok("run", "-d", "--name", name, *options, image, "sleep", "300")
    return name

def daemon_links(daemon, prefix):
    """Links named `prefix`* in the daemon's network namespace (the host's as root)."""
    if ROOTLESS:

        cmd = ["nsenter", "-t", str(daemon_pid(daemon)), "-U", "-n", "--preserve-credentials", "ip", "-o", "link"]
    else:
        cmd = ["ip", "-o", "link"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split(": ")[1].split("@")[0] for line in out.splitlines() if line.split(": ")[1].startswith(prefix)]

def our_veths(daemon):
    import hashlib

    tag = "mc" + hashlib.sha256(os.path.abspath(str(daemon.data_root)).encode()).hexdigest()[:3]
    return daemon_links(daemon, tag)

def test_default_bridge_gives_eth0_an_address_and_a_default_route(daemon, image):
    name = run_sleeper(daemon, image)
    try:
        info = inspect(daemon, name)
        settings = info["NetworkSettings"]
        ip, gateway = settings["IPAddress"], settings["Gateway"]
        assert ip and gateway and settings["Networks"]["bridge"]["IPAddress"] == ip
        assert f"inet {ip}/" in sh(daemon, name, "ip addr show eth0")
        assert f"default via {gateway}" in sh(daemon, name, "ip route")
        assert ip in sh(daemon, name, "cat /etc/hosts")
        assert "nameserver" in sh(daemon, name, "cat /etc/resolv.conf")
        sh(daemon, name, f"ping -c1 -W2 {gateway}")
        assert len(our_veths(daemon)) == 1
    finally:
        daemon.ok("rm", "-f", name)
    assert our_veths(daemon) == []
