"""Networks: the default bridge, user-defined networks, network modes, and nothing left behind."""

import json
import os
import secrets
import subprocess

from .conftest import ROOTLESS, daemon_pid, inspect, wait_until

# As root the session daemon's bridges live in the host's namespace (conftest gives each daemon its
# own default bridge name and removes its links at teardown); tests that need traffic between
# containers use net_daemon, in a namespace of its own, away from the host's firewall.

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
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    else:
        out = daemon.ip("-o", "link", check=True).stdout
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


def test_two_containers_on_a_network_reach_each_other_and_not_another_network(net_daemon, image):
    daemon = net_daemon
    net_a, net_b = "na" + secrets.token_hex(3), "nb" + secrets.token_hex(3)
    daemon.ok("network", "create", net_a)
    daemon.ok("network", "create", "--subnet", "10.199.7.0/24", net_b)
    names = []
    try:
        first = run_sleeper(daemon, image, "--network", net_a)
        names.append(first)
        second = run_sleeper(daemon, image, "--network", net_a, "--network-alias", "web")
        names.append(second)
        third = run_sleeper(daemon, image, "--network", net_b, "--ip", "10.199.7.9")
        names.append(third)
        ip2 = inspect(daemon, second)["NetworkSettings"]["Networks"][net_a]["IPAddress"]
        assert inspect(daemon, third)["NetworkSettings"]["Networks"][net_b]["IPAddress"] == "10.199.7.9"
        sh(daemon, first, f"ping -c1 -W2 {ip2}")
        assert daemon.cli("exec", third, "ping", "-c1", "-W1", ip2).returncode != 0
        listed = json.loads(daemon.ok("network", "inspect", net_a))[0]
        assert {c["Name"] for c in listed["Containers"].values()} == {first, second}
        assert net_a in daemon.ok("network", "ls")
        # connect live: an eth1 appears with an address on net_b, and goes with disconnect
        daemon.ok("network", "connect", net_b, first)
        assert "10.199.7." in sh(daemon, first, "ip addr show eth1")
        sh(daemon, first, "ping -c1 -W2 10.199.7.9")
        daemon.ok("network", "disconnect", net_b, first)
        assert "eth1" not in sh(daemon, first, "ip link")
        assert "active endpoints" in daemon.cli("network", "rm", net_a).stderr
    finally:
        daemon.ok("rm", "-f", *names)
    daemon.ok("network", "rm", net_a, net_b)
    assert our_veths(daemon) == []


def test_network_modes_host_none_and_container(daemon, image):
    host = run_sleeper(daemon, image, "--network", "host")
    none = run_sleeper(daemon, image, "--network", "none")
    owner = run_sleeper(daemon, image)
    joined = run_sleeper(daemon, image, "--network", f"container:{owner}")
    try:
        assert "eth0" not in sh(daemon, none, "ip link")
        ip = inspect(daemon, owner)["NetworkSettings"]["IPAddress"]
        assert f"inet {ip}/" in sh(daemon, joined, "ip addr")
        # host: the daemon's own network namespace (the host's as root), its default bridge in sight.
        # (Not a count of links: other daemons on this host make and remove theirs meanwhile.)
        # (exec, rootless: joins the daemon's netns before the container's user namespace, which does not own it)
        daemons_netns = os.readlink(f"/proc/{daemon_pid(daemon)}/ns/net")
        in_host_mode = sh(daemon, host, f"readlink /proc/self/ns/net && ip -o link show {daemon.bridge}")
        assert in_host_mode.splitlines()[0] == daemons_netns and daemon.bridge in in_host_mode, in_host_mode
        assert sh(daemon, none, "readlink /proc/self/ns/net").strip() != daemons_netns
    finally:
        daemon.ok("rm", "-f", host, none, joined, owner)


def test_nothing_left_after_kill_9_and_a_daemon_restart(daemon, image):
    name = run_sleeper(daemon, image)
    info = inspect(daemon, name)
    assert our_veths(daemon)
    os.kill(info["State"]["Pid"], 9) if not ROOTLESS else daemon.ok("kill", name)
    wait_until(lambda: not inspect(daemon, name)["State"]["Running"], what="the container to end")
    wait_until(lambda: our_veths(daemon) == [], what="its veth to go")
    assert inspect(daemon, name)["NetworkSettings"]["IPAddress"] == ""
    daemon.ok("start", name)
    daemon.kill()
    subprocess.run(["kill", "-9", str(inspect_pid(daemon, name))], check=False)
    daemon.start()
    try:
        assert inspect(daemon, name)["NetworkSettings"]["IPAddress"] == ""
        assert our_veths(daemon) == []
    finally:
        daemon.ok("rm", "-f", name)


def inspect_pid(daemon, name):
    import sqlite3

    with sqlite3.connect(str(daemon.data_root / "minictr.db")) as db:
        return db.execute("SELECT pid FROM containers WHERE name = ?", (name,)).fetchone()[0]


def test_bad_network_input_is_one_clear_line(daemon, image):
    for args, message in ((["network", "create", "--subnet", "nonsense", "x1"], "invalid subnet"),
                          (["network", "rm", "bridge"], "pre-defined"),
                          (["network", "inspect", "no-such-net"], "not found"),
                          (["run", "--rm", "--network", "no-such-net", image, "true"], "not found")):
        result = daemon.cli(*args)
        assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr


def test_a_start_that_fails_in_the_containers_own_set_up_leaves_no_veth_or_address(daemon, image, tmp_path):
    # The network is set up while the container's init sets up its mounts: when a mount then fails
    # (a bind source deleted between create and start), what the network got must go too.
    os.chmod(tmp_path, 0o755)
    source = tmp_path / "src"
    source.mkdir()
    name = "nf" + secrets.token_hex(4)
    daemon.ok("create", "--name", name, "-v", f"{source}:/data", image, "true")
    try:
        source.rmdir()
        result = daemon.cli("start", name)
        assert result.returncode != 0
        assert len(result.stderr.strip().splitlines()) == 1 and "bind source" in result.stderr
        assert inspect(daemon, name)["NetworkSettings"]["IPAddress"] == ""
        wait_until(lambda: our_veths(daemon) == [], timeout=5, what="the veth to go")
    finally:
        daemon.cli("rm", "-f", name)
