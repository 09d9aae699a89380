"""Legacy links (`--link NAME[:ALIAS]`), as Docker makes them: on the default bridge a line of the
linking container's /etc/hosts and the legacy variables; on a user-defined network an alias that the
network's DNS answers for the linking container only. Driven by the docker CLI (20.10 or 28, the
one on the PATH) and docker-py, root and rootless. The daemon is net_daemon: containers talk to each
other (as root in a network namespace of its own, away from the host's firewall)."""

import json
import re
import secrets

import docker as docker_py
import pytest

from tests.integration.dockercli import run_error
from .conftest import inspect
from .test_docker_cli import docker


@pytest.fixture
def made(net_daemon):
    """Names for the test's containers and networks; all removed at the end, even when it fails."""
    tag = secrets.token_hex(3)
    names = {"containers": [], "networks": []}

    def name(kind, base):
        full = f"{base}-{tag}"
        names[kind].append(full)
        return full

    yield name
    for container in reversed(names["containers"]):
        net_daemon.cli("rm", "-f", container)
    for network in names["networks"]:
        net_daemon.cli("network", "rm", network)


def ok(daemon, *args):
    result = docker(daemon, *args)
    assert result.returncode == 0, f"docker {' '.join(args)} ({result.returncode}): {result.stderr}"
    return result.stdout


def sleeper(daemon, image, name, *options):
    ok(daemon, "run", "-d", "--name", name, *options, image, "sleep", "300")
    return inspect(daemon, name)


def hosts_line(hosts, name):
    """The line of /etc/hosts that names `name` (as Docker's tests find it: after a tab or a space)."""
    return next((line for line in hosts.splitlines() if name in re.split(r"\s+", line)[1:]), None)


def pinged_address(daemon, container, name):
    """The address `ping NAME` resolved in `container`, or None when the name did not resolve."""
    result = docker(daemon, "exec", container, "ping", "-c1", "-W2", name)
    match = re.match(r"PING \S+ \(([\d.]+)\)", result.stdout)
    return match.group(1) if match and result.returncode == 0 else None


def test_a_link_on_the_default_bridge_gives_a_hosts_line_and_the_legacy_variables(net_daemon, image, made):
    target = made("containers", "db")
    linker = made("containers", "app")
    info = sleeper(net_daemon, image, target, "-e", "PASSWORD=gordon", "--expose", "6379", "--expose", "53/udp")
    ip, short_id = info["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], info["Id"][:12]
    out = ok(net_daemon, "run", "--name", linker, "--link", f"{target}:my-db", "-e", "MY_DB_ENV_PASSWORD=own",
             image, "sh", "-c", "cat /etc/hosts; echo ---; env; echo ---; ping -c1 -W2 my-db >/dev/null && echo ok")
    hosts, env, ping = out.split("---\n")
    # Docker's line: IP ALIAS HOSTNAME NAME, before the container's own.
    assert hosts_line(hosts, "my-db") == f"{ip}\tmy-db {short_id} {target}"
    own_line = hosts_line(hosts, inspect(net_daemon, linker)["Config"]["Hostname"])
    assert own_line and hosts.index(hosts_line(hosts, "my-db")) < hosts.index(own_line)
    variables = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
    assert variables["MY_DB_NAME"] == f"/{linker}/my-db"
    assert variables["MY_DB_PORT"] == f"udp://{ip}:53"  # the lowest port, as Docker 20.10 (later: TCP first)
    assert variables["MY_DB_PORT_6379_TCP"] == f"tcp://{ip}:6379"
    assert variables["MY_DB_PORT_6379_TCP_ADDR"] == ip
    assert variables["MY_DB_PORT_6379_TCP_PORT"] == "6379"
    assert variables["MY_DB_PORT_6379_TCP_PROTO"] == "tcp"
    assert variables["MY_DB_PORT_53_UDP"] == f"udp://{ip}:53"
    assert variables["MY_DB_ENV_PASSWORD"] == "own"  # the container's own variable wins over the link's
    assert "MY_DB_ENV_PATH" not in variables and "MY_DB_ENV_HOME" not in variables
    assert "MY_DB_ENV_HOSTNAME" not in variables  # Docker's Config.Env has no HOSTNAME, so its links neither
    assert ping.strip() == "ok"
    # The variables are the container's start's, not its config: inspect shows what was asked for.
    assert not [e for e in inspect(net_daemon, linker)["Config"]["Env"] if e.startswith("MY_DB_PORT")]
    # Another container has no such name.
    assert docker(net_daemon, "run", "--rm", image, "ping", "-c1", "-W2", "my-db").returncode != 0


def test_inspect_shows_the_links_which_follow_the_target_and_go_with_rm_link(net_daemon, image, made):
    target = made("containers", "db")
    linker = made("containers", "app")
    sleeper(net_daemon, image, target)
    sleeper(net_daemon, image, linker, "--link", f"{target}:db", "--link", target)
    assert inspect(net_daemon, linker)["HostConfig"]["Links"] == [f"/{target}:/{linker}/db",
                                                                  f"/{target}:/{linker}/{target}"]
    # The target starts again with another address (a container took its old one meanwhile): the
    # linking container's /etc/hosts follows, as in Docker.
    old_ip = inspect(net_daemon, target)["NetworkSettings"]["IPAddress"]
    ok(net_daemon, "stop", "-t", "0", target)
    sleeper(net_daemon, image, made("containers", "squatter"))
    ok(net_daemon, "start", target)
    new_ip = inspect(net_daemon, target)["NetworkSettings"]["IPAddress"]
    assert new_ip != old_ip
    hosts = ok(net_daemon, "exec", linker, "cat", "/etc/hosts")
    assert hosts_line(hosts, "db").split("\t")[0] == new_ip
    assert hosts_line(hosts, target).split("\t")[0] == new_ip
    assert pinged_address(net_daemon, linker, "db") == new_ip
    # rm --link: that link and its line go, the containers stay.
    assert ok(net_daemon, "rm", "--link", f"/{linker}/db").strip() == f"/{linker}/db"
    assert inspect(net_daemon, linker)["HostConfig"]["Links"] == [f"/{target}:/{linker}/{target}"]
    assert hosts_line(ok(net_daemon, "exec", linker, "cat", "/etc/hosts"), "db") is None
    assert inspect(net_daemon, target)["State"]["Running"]
    # Removing the target removes the links to it.
    ok(net_daemon, "rm", "-f", target)
    assert inspect(net_daemon, linker)["HostConfig"]["Links"] is None


def test_a_missing_or_stopped_target_fails_in_dockers_words_leaving_nothing(net_daemon, image, made):
    before = ok(net_daemon, "ps", "-aq", "--no-trunc").split()
    result = docker(net_daemon, "run", "--link", "ghost-x:g", image, "true")
    assert result.returncode == 125
    assert result.stderr.splitlines()[0] == run_error(
        "could not get container for ghost-x: No such container: ghost-x")
    stopped = made("containers", "stopped")
    ok(net_daemon, "create", "--name", stopped, image, "true")
    result = docker(net_daemon, "run", "--rm", "--name", made("containers", "gone"), "--link", f"{stopped}:s",
                    image, "true")
    assert result.returncode != 0
    assert f"Cannot link to a non running container: /{stopped} AS /gone-" in result.stderr
    assert ok(net_daemon, "ps", "-aq", "--no-trunc").split() == [inspect(net_daemon, stopped)["Id"]] + before
    # Created with a link to a container not yet started is fine (Docker's too); its start is not.
    linker = made("containers", "app")
    ok(net_daemon, "create", "--name", linker, "--link", f"{stopped}:s", image, "sleep", "300")
    result = docker(net_daemon, "start", linker)
    assert result.returncode != 0
    assert f"Cannot link to a non running container: /{stopped} AS /{linker}/s" in result.stderr
    state = inspect(net_daemon, linker)
    assert state["State"]["Status"] == "created" and state["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""


def test_a_link_on_a_user_network_is_a_name_only_the_linking_container_resolves(net_daemon, image, made):
    network = made("networks", "lnk")
    ok(net_daemon, "network", "create", network)
    target, linker, other = made("containers", "db"), made("containers", "app"), made("containers", "other")
    target_ip = sleeper(net_daemon, image, target, "--network", network)["NetworkSettings"]["Networks"][network][
        "IPAddress"]
    sleeper(net_daemon, image, linker, "--network", network, "--link", f"{target}:cache")
    sleeper(net_daemon, image, other, "--network", network)
    info = inspect(net_daemon, linker)
    assert info["NetworkSettings"]["Networks"][network]["Links"] == [f"{target}:cache"]
    assert info["HostConfig"]["Links"] is None  # Docker registers no legacy link on a user network
    assert pinged_address(net_daemon, linker, "cache") == target_ip
    assert pinged_address(net_daemon, linker, "CACHE") == target_ip
    assert pinged_address(net_daemon, other, "cache") is None
    assert pinged_address(net_daemon, other, target) == target_ip
    # No /etc/hosts line and no variables there.
    assert hosts_line(ok(net_daemon, "exec", linker, "cat", "/etc/hosts"), "cache") is None
    assert "CACHE_" not in ok(net_daemon, "exec", linker, "env")


def test_docker_py_links_on_the_default_bridge_and_on_network_connect(net_daemon, image, made):
    client = docker_py.DockerClient(base_url=net_daemon.host, timeout=60)
    try:
        target = made("containers", "db")
        target_ip = sleeper(net_daemon, image, target, "-e", "ROLE=primary")["NetworkSettings"]["IPAddress"]
        out = client.containers.run(image, ["sh", "-c", "env; grep -w database /etc/hosts"],
                                    name=made("containers", "app"), links={target: "database"}, remove=True)
        lines = out.decode().splitlines()
        assert "DATABASE_ENV_ROLE=primary" in lines
        assert any(line.startswith(f"{target_ip}\tdatabase ") for line in lines)
        # A link given to network connect: the network's DNS answers it for that container.
        network = made("networks", "pynet")
        client.networks.create(network)
        ok(net_daemon, "network", "connect", network, target)
        joined = client.containers.run(image, ["sleep", "300"], name=made("containers", "joined"), detach=True)
        client.networks.get(network).connect(joined, links=[(target, "primary")])
        target_on_network = inspect(net_daemon, target)["NetworkSettings"]["Networks"][network]["IPAddress"]
        assert json.loads(ok(net_daemon, "inspect", "--format", f"{{{{json .NetworkSettings.Networks}}}}",
                             joined.name))[network]["Links"] == [f"{target}:primary"]
        assert pinged_address(net_daemon, joined.name, "primary") == target_on_network
    finally:
        client.close()


def test_minictrs_own_cli_makes_and_removes_links(net_daemon, image, made):
    target, linker = made("containers", "db"), made("containers", "app")
    net_daemon.ok("run", "-d", "--name", target, image, "sleep", "300")
    out = net_daemon.ok("run", "--rm", "--link", f"{target}:db", image, "sh", "-c",
                        "echo $DB_NAME; grep -cw db /etc/hosts")
    assert out.split()[0].endswith("/db") and out.split()[1] == "1"
    net_daemon.ok("create", "--name", linker, "--link", target, image, "true")
    assert inspect(net_daemon, linker)["HostConfig"]["Links"] == [f"/{target}:/{linker}/{target}"]
    net_daemon.ok("rm", "-l", f"{linker}/{target}")
    assert inspect(net_daemon, linker)["HostConfig"]["Links"] is None
    result = net_daemon.cli("run", "--link", "a:b:c", image, "true")
    assert result.returncode != 0 and result.stderr.strip().endswith("bad format for links: a:b:c")
