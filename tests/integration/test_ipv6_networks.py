"""IPv6 networks (`docker network create --ipv6`, EnableIPv6) driven by the docker CLI and docker-py:
dual-stack containers with an address from the network's IPv6 subnet, a default IPv6 route via the
bridge's gateway, the IPv6 fields of inspect, --ip6, and names answered with AAAA records.

The subnets are random ULA /64s (fd00::/8), as the daemon's own generated ones: tests running at
once (other daemons as root share the host's namespace) never ask for the same one."""

import ipaddress
import json
import secrets
import subprocess

import docker
import pytest

from tests.integration.dockercli import PATH as DOCKER_PATH, older_than
from tests.integration.conftest import IMAGE, ROOTLESS, ipv6_listenable
from tests.integration.test_ports import HTTPD, free_port, http_get


def docker_cli(daemon, *args):
    return subprocess.run(["docker", "-H", daemon.host, *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": DOCKER_PATH, "HOME": str(daemon.top)})


def docker_ok(daemon, *args):
    result = docker_cli(daemon, *args)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}\n{daemon.log_tail()}"
    return result.stdout


def random_ula_subnet():
    return ipaddress.ip_network((b"\xfd" + secrets.token_bytes(5) + bytes(10), 64))


@pytest.fixture(autouse=True)
def ipv6_in_the_daemons_namespace():
    """As root the daemon's namespace is the host's: one with IPv6 disabled refuses these networks
    (test_no_ipv6.py); rootless, the daemon's namespace is its own, IPv6 on."""
    if not ROOTLESS and not ipv6_listenable():
        pytest.skip("IPv6 is disabled in this host's network namespace")


@pytest.fixture
def network(daemon, image):
    """A dual-stack network made by the docker CLI: (name, IPv6 subnet); removed with its containers."""
    name = "v6-" + secrets.token_hex(4)
    subnet = random_ula_subnet()
    docker_ok(daemon, "network", "create", "--ipv6", "--subnet", str(subnet), name)
    yield name, subnet
    for cid in docker_ok(daemon, "ps", "-aq", "--filter", f"network={name}").split():
        docker_cli(daemon, "rm", "-f", cid)
    docker_cli(daemon, "network", "rm", name)


@pytest.fixture
def client(daemon, image):
    c = docker.DockerClient(base_url="unix://" + str(daemon.socket), timeout=60)
    yield c
    c.close()


def test_network_inspect_shows_ipv6_enabled_with_both_subnets(daemon, network):
    name, subnet = network
    info = json.loads(docker_ok(daemon, "network", "inspect", name))[0]
    assert info["EnableIPv6"] is True
    configs = info["IPAM"]["Config"]
    assert {"Subnet": str(subnet), "Gateway": str(subnet[1])} in configs
    assert any(ipaddress.ip_network(c["Subnet"]).version == 4 for c in configs), configs


def test_a_container_gets_an_ipv6_address_and_default_route_via_the_gateway(daemon, network):
    name, subnet = network
    out = docker_ok(daemon, "run", "--name", name + "-c", "--network", name, IMAGE, "sh", "-c",
                    "ip -6 addr show dev eth0 scope global; ip -6 route show default")
    cid = name + "-c"
    settings = json.loads(docker_ok(daemon, "inspect", cid))[0]["NetworkSettings"]["Networks"][name]
    # Stopped, the endpoint has no address any more (as Docker's): what it had is in the output.
    address = ipaddress.ip_address(out.split("inet6 ")[1].split("/")[0])
    assert address in subnet and address != subnet[1], out
    assert f"inet6 {address}/64" in out
    assert f"default via {subnet[1]} dev eth0" in out
    assert settings["GlobalIPv6Address"] == ""


def test_inspect_shows_the_ipv6_address_prefix_and_gateway(daemon, network):
    name, subnet = network
    cid = docker_ok(daemon, "run", "-d", "--network", name, IMAGE, "sleep", "600").strip()
    endpoint = json.loads(docker_ok(daemon, "inspect", cid))[0]["NetworkSettings"]["Networks"][name]
    address = ipaddress.ip_address(endpoint["GlobalIPv6Address"])
    assert address in subnet
    assert endpoint["GlobalIPv6PrefixLen"] == 64
    assert endpoint["IPv6Gateway"] == str(subnet[1])
    assert endpoint["IPAddress"]  # dual-stack: the IPv4 address too
    template = f"{{{{(index .NetworkSettings.Networks \"{name}\").GlobalIPv6Address}}}}"
    shown = docker_ok(daemon, "inspect", "-f", template, cid).strip()
    assert shown == str(address)
    members = json.loads(docker_ok(daemon, "network", "inspect", name))[0]["Containers"]
    assert members[cid]["IPv6Address"] == f"{address}/64"
    inside = docker_ok(daemon, "exec", cid, "ip", "-6", "addr", "show", "dev", "eth0")
    assert f"inet6 {address}/64" in inside
    hosts = docker_ok(daemon, "exec", cid, "cat", "/etc/hosts").splitlines()
    names = [line.split("\t")[1] for line in hosts if line.split("\t")[0] == endpoint["IPAddress"]]
    assert names and names[0].startswith(cid[:12]), hosts
    assert f"{address}\t{names[0]}" in hosts, hosts  # the same names as its IPv4 address's line


def test_ip6_gives_the_container_that_address(daemon, network):
    name, subnet = network
    wanted = subnet[0x42]
    cid = docker_ok(daemon, "run", "-d", "--network", name, "--ip6", str(wanted), IMAGE, "sleep", "600").strip()
    endpoint = json.loads(docker_ok(daemon, "inspect", cid))[0]["NetworkSettings"]["Networks"][name]
    assert endpoint["GlobalIPv6Address"] == str(wanted)
    assert endpoint["IPAMConfig"] == {"IPv6Address": str(wanted)}
    assert f"inet6 {wanted}/64" in docker_ok(daemon, "exec", cid, "ip", "-6", "addr", "show", "dev", "eth0")
    taken = docker_cli(daemon, "run", "--rm", "--network", name, "--ip6", str(wanted), IMAGE, "true")
    assert taken.returncode != 0 and f"Address already in use: {wanted}" in taken.stderr


def test_containers_reach_each_other_over_ipv6_by_name(daemon, network):
    name, subnet = network
    server = name + "-srv"
    docker_ok(daemon, "run", "-d", "--network", name, "--name", server, IMAGE, "sleep", "600")
    address = json.loads(docker_ok(daemon, "inspect", server))[0]["NetworkSettings"]["Networks"][name][
        "GlobalIPv6Address"]
    out = docker_ok(daemon, "run", "--rm", "--network", name, IMAGE, "sh", "-c",
                    f"nslookup -type=AAAA {server} && ping -6 -c 1 -W 5 {server}")
    assert address in out, out  # the AAAA answer, and the address ping used
    assert "1 packets received" in out, out


def test_ipv6_address_on_an_ipv4_network_is_refused(daemon, image):
    name = "v4-" + secrets.token_hex(4)
    docker_ok(daemon, "network", "create", name)
    try:
        result = docker_cli(daemon, "run", "--rm", "--network", name, "--ip6", "fd00::5", IMAGE, "true")
        assert result.returncode != 0
        assert f"network {name} has no IPv6" in result.stderr
    finally:
        docker_cli(daemon, "network", "rm", name)


def test_an_ipv6_subnet_without_ipv6_is_refused_and_nothing_made(daemon, image):
    name = "v6-" + secrets.token_hex(4)
    result = docker_cli(daemon, "network", "create", "--subnet", str(random_ula_subnet()), name)
    assert result.returncode != 0
    assert "add --ipv6 (EnableIPv6)" in result.stderr
    assert name not in docker_ok(daemon, "network", "ls", "--format", "{{.Name}}").split()


def test_docker_py_ipv6_network_with_a_generated_subnet(client, daemon):
    name = "v6py-" + secrets.token_hex(4)
    net = client.networks.create(name, enable_ipv6=True)
    try:
        net.reload()
        assert net.attrs["EnableIPv6"] is True
        subnets = [ipaddress.ip_network(c["Subnet"]) for c in net.attrs["IPAM"]["Config"]]
        generated = [s for s in subnets if s.version == 6]
        assert len(generated) == 1 and generated[0].prefixlen == 64
        assert generated[0].subnet_of(ipaddress.ip_network("fd00::/8")), generated
        container = client.containers.create(IMAGE, ["sleep", "600"])
        wanted = str(generated[0][7])
        net.connect(container, ipv6_address=wanted)
        container.start()
        container.reload()
        endpoint = container.attrs["NetworkSettings"]["Networks"][name]
        assert endpoint["GlobalIPv6Address"] == wanted
        assert endpoint["IPv6Gateway"] == str(generated[0][1])
        code, out = container.exec_run(["ping", "-6", "-c", "1", "-W", "5", str(generated[0][1])])
        assert code == 0, out  # the gateway on the bridge answers
        container.remove(force=True)
    finally:
        net.remove()


def test_docker_py_ipam_pool_with_an_ipv6_subnet_and_gateway(client, daemon):
    name = "v6py-" + secrets.token_hex(4)
    subnet = random_ula_subnet()
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet), gateway=str(subnet[9]))])
    net = client.networks.create(name, enable_ipv6=True, ipam=ipam)
    try:
        out = client.containers.run(IMAGE, ["ip", "-6", "route", "show", "default"], network=name, remove=True)
        assert f"default via {subnet[9]} dev eth0" in out.decode()
    finally:
        net.remove()


def test_an_ipv6_endpoint_with_its_mac_link_local_ip_and_the_networks_mtu(client, daemon):
    # IPv6 together with the other network options of issue 22 (made apart, then merged): each kept.
    name = "v6opt-" + secrets.token_hex(4)
    subnet = random_ula_subnet()
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet))])
    net = client.networks.create(name, enable_ipv6=True, ipam=ipam, options={"com.docker.network.driver.mtu": "1400"})
    api, cid = client.api, None
    try:
        wanted, mac = str(subnet[0x55]), "02:42:ac:11:00:55"
        endpoints = api.create_networking_config({name: api.create_endpoint_config(
            ipv6_address=wanted, link_local_ips=["169.254.40.40"])})
        cid = api.create_container(IMAGE, ["sleep", "600"], mac_address=mac, networking_config=endpoints,
                                   host_config=api.create_host_config(network_mode=name))["Id"]
        api.start(cid)
        endpoint = api.inspect_container(cid)["NetworkSettings"]["Networks"][name]
        assert endpoint["IPAMConfig"] == {"IPv6Address": wanted, "LinkLocalIPs": ["169.254.40.40"]}
        assert (endpoint["MacAddress"], endpoint["GlobalIPv6Address"]) == (mac, wanted)
        code, out = client.containers.get(cid).exec_run(
            ["sh", "-c", "cat /sys/class/net/eth0/mtu /sys/class/net/eth0/address; ip -o addr show dev eth0; "
             f"ping -6 -c 1 -W 5 {subnet[1]}"])
        out = out.decode()
        assert code == 0 and out.splitlines()[:2] == ["1400", mac], out
        assert f"inet6 {wanted}/64 " in out and " 169.254.40.40/32 " in out, out
    finally:
        if cid:
            api.remove_container(cid, force=True)
        net.remove()


def test_an_internal_ipv6_network_gives_no_gateway_of_either_family(daemon, image):
    name = "v6int-" + secrets.token_hex(4)
    subnet = random_ula_subnet()
    docker_ok(daemon, "network", "create", "--internal", "--ipv6", "--subnet", str(subnet), name)
    try:
        cid = docker_ok(daemon, "run", "-d", "--network", name, IMAGE, "sleep", "600").strip()
        endpoint = json.loads(docker_ok(daemon, "inspect", cid))[0]["NetworkSettings"]["Networks"][name]
        assert ipaddress.ip_address(endpoint["GlobalIPv6Address"]) in subnet
        assert (endpoint["Gateway"], endpoint["IPv6Gateway"]) == ("", "")
        assert docker_ok(daemon, "exec", cid, "ip", "-6", "route", "show", "default") == ""
        assert docker_ok(daemon, "exec", cid, "ip", "-4", "route", "show", "default") == ""
    finally:
        for cid in docker_ok(daemon, "ps", "-aq", "--filter", f"network={name}").split():
            docker_cli(daemon, "rm", "-f", cid)
        docker_cli(daemon, "network", "rm", name)


def test_a_port_published_from_an_ipv6_network_is_served_on_both_families(daemon, network):
    name, _ = network
    port = free_port()
    cid = docker_ok(daemon, "run", "-d", "--network", name, "-p", f"{port}:80", IMAGE, "sh", "-c", HTTPD).strip()
    assert http_get("127.0.0.1", port) == "hello-ports\n"
    # On [::] too where the host's namespace has IPv6 (the rootless daemon's own may have it where
    # the host's does not: test_no_ipv6.py has the host without it).
    ipv6 = ipv6_listenable()
    if ipv6:
        assert http_get("[::1]", port) == "hello-ports\n"
    # `docker port` 20.10 writes [::] bare (`:::PORT`), later CLIs in brackets.
    any6 = f":::{port}" if older_than(23) else f"[::]:{port}"
    assert docker_ok(daemon, "port", cid, "80").split() == [f"0.0.0.0:{port}"] + ([any6] if ipv6 else [])


def test_network_connect_ip6_gives_a_running_container_a_second_dual_stack_interface(daemon, network):
    name, subnet = network
    cid = docker_ok(daemon, "run", "-d", IMAGE, "sleep", "600").strip()
    try:
        wanted = subnet[0x77]
        docker_ok(daemon, "network", "connect", "--ip6", str(wanted), name, cid)
        inside = docker_ok(daemon, "exec", cid, "ip", "-6", "addr", "show", "dev", "eth1")
        assert f"inet6 {wanted}/64" in inside
        endpoint = json.loads(docker_ok(daemon, "inspect", cid))[0]["NetworkSettings"]["Networks"][name]
        assert (endpoint["GlobalIPv6Address"], endpoint["IPv6Gateway"]) == (str(wanted), str(subnet[1]))
        # The gateway answers over IPv6 through the new interface.
        docker_ok(daemon, "exec", cid, "ping", "-6", "-c", "1", "-W", "5", str(subnet[1]))
    finally:
        docker_cli(daemon, "rm", "-f", cid)


def test_an_ipv6_network_works_again_after_a_daemon_restart(clean_daemon, busybox_tar):
    # Rootless, the daemon's namespace (and every bridge in it) is new after a restart: the bridge
    # comes back with its IPv6 gateway too.
    d = clean_daemon
    d.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), IMAGE)
    name, subnet = "v6r-" + secrets.token_hex(4), random_ula_subnet()
    docker_ok(d, "network", "create", "--ipv6", "--subnet", str(subnet), name)
    d.stop()
    d.start()
    try:
        assert json.loads(docker_ok(d, "network", "inspect", name))[0]["EnableIPv6"] is True
        out = docker_ok(d, "run", "--rm", "--network", name, IMAGE, "sh", "-c",
                        f"ip -6 route show default && ping -6 -c 1 -W 5 {subnet[1]}")
        assert f"default via {subnet[1]} dev eth0" in out and "1 packets received" in out, out
    finally:
        docker_cli(d, "network", "rm", name)
