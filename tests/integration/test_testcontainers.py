"""testcontainers-python (PyPI; nobody here wrote it) runs its waits against minictr unchanged — the log,
HTTP, port and health waits — from the host, and from inside a container that has the daemon's socket
(Docker-outside-of-Docker: Testcontainers then reads the gateway from `GET /containers/json`). Root and
rootless. Ryuk, its reaper, is an image from Docker Hub: off, as the suite never pulls from there."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import IMAGE, REPO

SCRIPT = REPO / "tests" / "integration" / "testcontainers_waits.py"
# The venv this suite runs in has testcontainers (scripts/install --test); a container gets it read-only.
VENV = Path(sys.prefix)


def left_behind(daemon):
    return daemon.ok("ps", "-a", "-q", "--filter", "label=org.testcontainers=true").split()


def check_waits(result):
    assert "starting" in result["logs"] and "ready to serve" in result["logs"]
    assert result["http"]["body"] == "served\n"
    assert result["health"] == "healthy"


def test_waits_from_the_host(net_daemon):
    # docker_host is what Testcontainers picks on a host that is no container; these CI hosts can be
    # containers themselves (/.dockerenv), which the next test covers.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/tmp", "DOCKER_HOST": net_daemon.host,
           "TESTCONTAINERS_RYUK_DISABLED": "true", "TESTCONTAINERS_CONNECTION_MODE": "docker_host"}
    # As root the daemon (and so its published ports) lives in a network namespace of its own.
    netns = ["ip", "netns", "exec", net_daemon.netns] if net_daemon.netns else []
    run = subprocess.run([*netns, sys.executable, str(SCRIPT), IMAGE], env=env, capture_output=True, text=True,
                         timeout=180)
    try:
        assert run.returncode == 0, f"{run.stdout}{run.stderr}\n--- daemon ---\n{net_daemon.log_tail()}"
        result = json.loads(run.stdout.splitlines()[-1])
        check_waits(result)
        assert result["http"]["host"] == "localhost" and result["http"]["mode"] == "docker_host"
    finally:
        assert left_behind(net_daemon) == []


@pytest.fixture
def python_image_mounts():
    """`-v` options that give a busybox container the host's Python and this venv, read-only, and this
    suite's script. Debian 12's /usr is merged: /lib and /lib64 are links into it, and the dynamic loader's
    path, /lib64/ld-linux-x86-64.so.2, is itself an absolute link to /lib/x86_64-linux-gnu."""
    mounts = ["/usr:/usr:ro", "/lib:/lib:ro", "/lib64:/lib64:ro", f"{VENV}:{VENV}:ro", f"{SCRIPT.parent}:/suite:ro"]
    return [option for mount in mounts for option in ("-v", mount)]


def test_waits_from_inside_a_container_with_the_daemons_socket(net_daemon, python_image_mounts):
    gateway = json.loads(net_daemon.ok("network", "inspect", "bridge"))[0]["IPAM"]["Config"][0]["Gateway"]
    run = net_daemon.cli("run", "--rm", "-v", f"{net_daemon.socket}:/var/run/docker.sock", *python_image_mounts,
                         "-e", "TESTCONTAINERS_RYUK_DISABLED=true", IMAGE,
                         str(VENV / "bin" / "python"), "/suite/testcontainers_waits.py", IMAGE, timeout=240)
    try:
        assert run.returncode == 0, f"{run.stdout}{run.stderr}\n--- daemon ---\n{net_daemon.log_tail()}"
        result = json.loads(run.stdout.splitlines()[-1])
        check_waits(result)
        # Inside a container (/.dockerenv) with a local socket, Testcontainers reaches the containers it
        # starts through the gateway of their network, read from the container list.
        assert result["http"]["mode"] == "gateway_ip"
        assert result["http"]["host"] == gateway
    finally:
        assert left_behind(net_daemon) == []
