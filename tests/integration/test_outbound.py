"""Outbound traffic: a container reaches a "remote" host that only minictr's outbound path leads to.

The remote (tests/integration/remote-host) is a network namespace with a veth, an httpd and no
default route: it answers only addresses on its veth's own /30, so a container's packets get an
answer only once masqueraded.

As root the daemon under test runs in a network namespace this test makes ("the host"), with the
remote's veth in it: the machine's own namespace may hold Docker's iptables FORWARD chain with
policy drop (nftables lets every base chain drop), which minictr must not edit. Rootless, the remote
is made as root by scripts/test before the suite (MINICTR_TEST_REMOTE=IP:PORT); the daemon's way out
is slirp4netns in the host's namespace, which Docker's forward chain does not see.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from .conftest import IMAGE, REPO, ROOTLESS, Daemon, _answers

REMOTE_HOST = REPO / "tests" / "integration" / "remote-host"
HOST_NS = "mctest-host"


class NetnsDaemon(Daemon):
    """A root daemon whose network namespace is `netns` (made by the test)."""

    def __init__(self, top, netns):
        super().__init__(top)
        self.netns = netns

    def start(self):
        self.socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, sys.executable, "-m", "minictr", "-H", self.host, "daemon",
                 "--data-root", str(self.data_root)], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not _answers(self.socket):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daemon did not start:\n{self.log.read_text()}")
            time.sleep(0.02)


def _sh(*args, check=True):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check)


def _remove_all(d):
    for cid in d.cli("ps", "-a", "-q", "--no-trunc").stdout.split():
        d.cli("rm", "-f", cid)
    for line in d.cli("network", "ls", "--format", "{{.Name}}").stdout.split():
        if line.startswith("mct-out"):
            d.cli("network", "rm", line)


@pytest.fixture(scope="module")
def outside(busybox_tar, daemon, request):
    """(daemon, remote "IP:PORT", run(argv) in the daemon's network namespace)."""
    if ROOTLESS:
        remote = os.environ.get("MINICTR_TEST_REMOTE")
        if not remote:
            pytest.skip("rootless: the remote host is made as root by scripts/test (MINICTR_TEST_REMOTE unset)")
        request.getfixturevalue("image")

        def in_netns(*argv):
            holder = Path(daemon.socket.parent / "ns.pid").read_text().split()[0]
            return _sh("nsenter", "--preserve-credentials", "-U", "-n", "-t", holder, *argv, check=False)

        yield daemon, remote, in_netns
        _remove_all(daemon)
        return
    top = Path(tempfile.mkdtemp(prefix="minictr-out-"))
    os.chmod(top, 0o755)
    _sh("ip", "netns", "del", HOST_NS, check=False)
    _sh("ip", "netns", "add", HOST_NS)
    d = NetnsDaemon(top, HOST_NS)
    try:
        _sh("ip", "-n", HOST_NS, "link", "set", "lo", "up")
        remote = _sh("env", f"REMOTE_HOST_NS={HOST_NS}", REMOTE_HOST, "up", "oh", 202).stdout.strip()
        d.start()
        d.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), IMAGE)
        yield d, remote, lambda *argv: _sh("ip", "netns", "exec", HOST_NS, *argv, check=False)
        _remove_all(d)
    finally:
        d.stop()
        _sh(REMOTE_HOST, "down", "oh", check=False)
        _sh("ip", "netns", "del", HOST_NS, check=False)
        _sh("rm", "-rf", top, check=False)


def _wget(d, remote, *run_args):
    # busybox 1.35's static wget crashes (SIGSEGV) on this busybox build: HTTP by hand through nc.
    host, port = remote.split(":")
    script = f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port} | tail -n 1 | grep ."
    return d.cli("run", "--rm", *run_args, IMAGE, "sh", "-c", script, timeout=60)


def _subnet(d, network):
    return json.loads(d.ok("network", "inspect", network))[0]["IPAM"]["Config"][0]["Subnet"]


def _rules(in_netns):
    result = in_netns("nft", "list", "table", "inet", "minictr")
    return result.stdout if result.returncode == 0 else ""


def test_remote_is_reachable_only_through_minictr(outside):
    d, remote, in_netns = outside
    if ROOTLESS:
        # The daemon's namespace has no way out but slirp4netns's tap0.
        routes = in_netns("ip", "route", "show", "default").stdout
        assert "dev tap0" in routes, routes
        return
    # The remote has no route back to the containers' subnets: only masqueraded packets get answers.
    container_ip = json.loads(d.ok("network", "inspect", "bridge"))[0]["IPAM"]["Config"][0]["Gateway"]
    result = _sh("ip", "netns", "exec", "mctest-oh", "ip", "route", "get", container_ip, check=False)
    assert result.returncode != 0, result.stdout


def test_default_bridge_reaches_remote(outside):
    d, remote, _ = outside
    result = _wget(d, remote)
    assert result.returncode == 0, f"{result.stderr}\n{d.log_tail()}"
    assert result.stdout.strip().startswith("remote ")


def test_user_network_reaches_remote_and_rules_follow_it(outside):
    d, remote, in_netns = outside
    name = f"mct-out-{uuid.uuid4().hex[:6]}"
    d.ok("network", "create", name)
    try:
        result = _wget(d, remote, "--network", name)
        assert result.returncode == 0, f"{result.stderr}\n{d.log_tail()}"
        assert result.stdout.strip().startswith("remote ")
        subnet = _subnet(d, name)
        assert f"ip saddr {subnet}" in _rules(in_netns)
    finally:
        d.ok("network", "rm", name)
    assert f"ip saddr {subnet}" not in _rules(in_netns), "the network's masquerade rule outlived it"


def test_internal_network_gets_no_outbound(outside):
    d, remote, _ = outside
    name = f"mct-out-i{uuid.uuid4().hex[:6]}"
    d.ok("network", "create", "--internal", name)
    try:
        result = _wget(d, remote, "--network", name)
        assert result.returncode != 0, f"an --internal network reached the remote: {result.stdout}"
    finally:
        d.ok("network", "rm", name)


def test_outbound_after_a_daemon_restart(outside):
    d, remote, in_netns = outside
    if ROOTLESS:
        # slirp4netns lives as long as the namespaces' holder: a killed daemon finds it again.
        run_dir = d.socket.parent
        slirp_pid = int((run_dir / "slirp.pid").read_text().split()[0])
        assert Path(f"/proc/{slirp_pid}/comm").read_text().strip() == "slirp4netns"
        d.kill()
        d.start()
        assert int((run_dir / "slirp.pid").read_text().split()[0]) == slirp_pid, "a second slirp4netns started"
    else:
        assert _rules(in_netns), "no table inet minictr while the default bridge exists"
        d.stop()
        try:
            assert _rules(in_netns) == "", "table inet minictr left after the daemon stopped"
        finally:
            d.start()
        assert "masquerade" in _rules(in_netns), "the rules did not come back with the daemon"
    result = _wget(d, remote)
    assert result.returncode == 0, f"{result.stderr}\n{d.log_tail()}"
