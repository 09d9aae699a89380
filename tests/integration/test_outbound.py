"""Outbound traffic: a container reaches a "remote" host that only minictr's outbound path leads to.

The remote (tests/integration/remote-host) is a network namespace with a veth, an httpd and no
default route: it answers only addresses on its veth's own /30, so a container's packets get an
answer only once masqueraded.

As root the daemon under test (conftest's net_daemon) runs in a network namespace the suite makes
("the host"), with the remote's veth in it: the machine's own namespace may hold Docker's iptables FORWARD chain with
policy drop (nftables lets every base chain drop; test_docker_forward.py tests that case). Rootless, the remote
is made as root by scripts/test before the suite (MINICTR_TEST_REMOTE=IP:PORT); the daemon's way out
is slirp4netns in the host's namespace, which Docker's forward chain does not see.
"""

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from .conftest import IMAGE, REPO, ROOTLESS, Daemon, NetnsDaemon

REMOTE_HOST = REPO / "tests" / "integration" / "remote-host"


def _sh(*args, check=True, env=None):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check, env=env)


def _remove_all(d):
    for cid in d.cli("ps", "-a", "-q", "--no-trunc").stdout.split():
        d.cli("rm", "-f", cid)
    for network_id in d.cli("network", "ls", "-q", "--no-trunc", "-f", "name=mct-out").stdout.split():
        d.cli("network", "rm", network_id)


def _in_daemon_netns(d):
    """run(argv) in the daemon's network namespace: NetnsDaemon's as root, the holder's rootless."""
    if not ROOTLESS:
        return lambda *argv: _sh("ip", "netns", "exec", d.netns, *argv, check=False)

    def run(*argv):
        holder = Path(d.socket.parent / "ns.pid").read_text().split()[0]
        return _sh("nsenter", "--preserve-credentials", "-U", "-n", "-t", holder, *argv, check=False)

    return run


@pytest.fixture(scope="module")
def outside(net_daemon):
    """(daemon, remote "IP:PORT", run(argv) in the daemon's network namespace)."""
    d = net_daemon
    if ROOTLESS:
        remote = os.environ.get("MINICTR_TEST_REMOTE")
        if not remote:
            pytest.skip("rootless: the remote host is made as root by scripts/test (MINICTR_TEST_REMOTE unset)")
        yield d, remote, _in_daemon_netns(d)
        _remove_all(d)
        return
    # The remote's veth goes in the daemon's namespace (net_daemon's, made by conftest).
    env = {**os.environ, "REMOTE_HOST_NS": d.netns}
    try:
        remote = _sh(REMOTE_HOST, "up", "oh", 202, env=env).stdout.strip()
        yield d, remote, _in_daemon_netns(d)
        _remove_all(d)
    finally:
        _sh(REMOTE_HOST, "down", "oh", check=False, env=env)


def _wget(d, remote, *run_args):
    # busybox 1.35's static wget crashes (SIGSEGV) on this busybox build: HTTP by hand through nc.
    host, port = remote.split(":")
    script = f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port} | tail -n 1 | grep ."
    return d.cli("run", "--rm", *run_args, IMAGE, "sh", "-c", script, timeout=60)


def _subnet(d, network):
    return json.loads(d.ok("network", "inspect", network))[0]["IPAM"]["Config"][0]["Subnet"]


def _table(d):
    """The daemon's own nftables table (conftest gives every daemon its own default bridge)."""
    return f"minictr-{d.bridge}"


def _nft():
    # Rootless runs get a PATH without /usr/sbin.
    return shutil.which("nft") or "/usr/sbin/nft"


def _rules(in_netns, d):
    result = in_netns(_nft(), "list", "table", "inet", _table(d))
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
        assert f"ip saddr {subnet}" in _rules(in_netns, d)
    finally:
        d.ok("network", "rm", name)
    assert f"ip saddr {subnet}" not in _rules(in_netns, d), "the network's masquerade rule outlived it"


def test_internal_network_gets_no_outbound(outside):
    d, remote, _ = outside
    name = f"mct-out-i{uuid.uuid4().hex[:6]}"
    d.ok("network", "create", "--internal", name)
    try:
        result = _wget(d, remote, "--network", name)
        assert result.returncode != 0, f"an --internal network reached the remote: {result.stdout}"
    finally:
        d.ok("network", "rm", name)


def test_network_without_ip_masquerade_is_not_masqueraded(outside):
    # com.docker.network.bridge.enable_ip_masquerade=false: the containers' packets leave with their own
    # address, which the remote has no route back to, so no answer; the network's rules say so.
    d, remote, in_netns = outside
    name = f"mct-out-m{uuid.uuid4().hex[:6]}"
    d.ok("network", "create", "-o", "com.docker.network.bridge.enable_ip_masquerade=false", name)
    try:
        result = _wget(d, remote, "--network", name)
        assert result.returncode != 0, f"a network without masquerade got an answer: {result.stdout}"
        rules = _rules(in_netns, d)
        assert f"ip saddr {_subnet(d, name)}" not in rules and f'iifname "{_bridge(d, name)}" accept' in rules
    finally:
        d.ok("network", "rm", name)


def test_bridge_name_option_names_the_bridge(outside):
    # com.docker.network.bridge.name: the bridge (in the daemon's namespace, rootless too) has that name, its
    # rules follow it, and it goes with the network.
    d, remote, in_netns = outside
    name = f"mct-out-b{uuid.uuid4().hex[:6]}"
    bridge = f"mcb{uuid.uuid4().hex[:8]}"
    d.ok("network", "create", "-o", f"com.docker.network.bridge.name={bridge}", name)
    try:
        assert in_netns("ip", "link", "show", bridge).returncode == 0
        assert f'oifname != "{bridge}" masquerade' in _rules(in_netns, d)
        result = _wget(d, remote, "--network", name)
        assert result.returncode == 0, f"{result.stderr}\n{d.log_tail()}"
    finally:
        d.ok("network", "rm", name)
    assert in_netns("ip", "link", "show", bridge).returncode != 0, "the named bridge outlived its network"


def _bridge(d, network):
    return "mcbr-" + json.loads(d.ok("network", "inspect", network))[0]["Id"][:10]


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
        assert _rules(in_netns, d), f"no table inet {_table(d)} while the default bridge exists"
        d.stop()
        try:
            assert _rules(in_netns, d) == "", f"table inet {_table(d)} left after the daemon stopped"
        finally:
            d.start()
        assert "masquerade" in _rules(in_netns, d), "the rules did not come back with the daemon"
    result = _wget(d, remote)
    assert result.returncode == 0, f"{result.stderr}\n{d.log_tail()}"


def test_two_daemons_in_one_namespace_keep_their_own_tables(outside, tmp_path_factory):
    """Each daemon's rules live in its own table (inet minictr-<its default bridge>): a second daemon
    beside the first (in its namespace as root) neither overwrites nor, when it stops, removes the first's."""
    d, remote, in_netns = outside
    top = tmp_path_factory.mktemp("second-daemon")
    os.chmod(top, 0o755)
    second = Daemon(top) if ROOTLESS else NetnsDaemon(top, d.netns)
    second.start()
    try:
        in_second = _in_daemon_netns(second)
        mine, theirs = _rules(in_netns, d), _rules(in_second, second)
        subnet = _subnet(d, "bridge")
        assert f"ip saddr {subnet}" in mine and f'"{d.bridge}"' in mine, mine
        assert f"ip saddr {_subnet(second, 'bridge')}" in theirs and d.bridge not in theirs, theirs
        if not ROOTLESS:
            # One namespace: both tables side by side, and the other daemon's bridge is not in ours.
            tables = in_netns(_nft(), "list", "tables").stdout
            assert f"inet {_table(d)}" in tables and f"inet {_table(second)}" in tables, tables
            assert second.bridge not in mine
    finally:
        second.teardown()
        subprocess.run(["rm", "-rf", str(top)], check=False)
    if not ROOTLESS:
        assert _rules(in_netns, second) == "", "the stopped daemon's table is still there"
    assert _rules(in_netns, d) == mine, "the first daemon's table changed when the second stopped"
    result = _wget(d, remote)
    assert result.returncode == 0, f"{result.stderr}\n{d.log_tail()}"
