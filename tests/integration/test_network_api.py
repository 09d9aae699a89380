"""The /networks API as Docker's Engine API gives it (shapes, status codes, filters), through our
Client, and — when this machine has it — through the real `docker` CLI pointed at our socket."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest

from minictr.errors import Forbidden, InvalidArgument, NotFound
from tests.integration.dockercli import not_found, older_than


@pytest.fixture
def networks(daemon):
    """Names of networks a test creates: removed afterwards whatever happened."""
    made = []
    yield made
    for name in made:
        daemon.cli("network", "rm", name)


def _create(client, networks, name, **body):
    networks.append(name)
    response = client.post("/networks/create", body={"Name": name, **body})
    assert response.status == 201
    return response.json()["Id"]


def test_create_inspect_list_remove_as_docker(daemon, networks):
    client = daemon.client()
    network_id = _create(client, networks, "napi-one", Driver="bridge", CheckDuplicate=True, Internal=True,
                         Labels={"team": "a"},
                         IPAM={"Driver": "default", "Config": [{"Subnet": "10.231.0.0/24", "Gateway": "10.231.0.254",
                                                                "IPRange": "10.231.0.128/25"}]})
    assert len(network_id) == 64
    inspected = client.get("/networks/napi-one", {"verbose": "true"})
    assert inspected["Id"] == network_id and inspected["Name"] == "napi-one" and inspected["Scope"] == "local"
    assert inspected["Driver"] == "bridge" and inspected["Internal"] is True and inspected["Labels"] == {"team": "a"}
    assert inspected["IPAM"] == {"Driver": "default", "Options": None, "Config": [
        {"Subnet": "10.231.0.0/24", "Gateway": "10.231.0.254", "IPRange": "10.231.0.128/25"}]}
    assert client.get(f"/networks/{network_id[:12]}")["Name"] == "napi-one"
    # Filters of GET /networks.
    by = lambda filters: [n["Name"] for n in client.get("/networks", {"filters": json.dumps(filters)})]  # noqa: E731
    assert by({"label": ["team=a"]}) == ["napi-one"]
    assert by({"label": ["team=b"]}) == []
    assert by({"name": ["napi-one"]}) == ["napi-one"]
    assert by({"id": [network_id[:10]]}) == ["napi-one"]
    assert "napi-one" in by({"type": ["custom"]}) and "napi-one" not in by({"type": ["builtin"]})
    assert {"bridge", "host", "none"} <= set(by({"type": ["builtin"]}))
    assert by({"driver": ["null"]}) == ["none"]
    assert "napi-one" in by({"dangling": ["true"]}) and "bridge" not in by({"dangling": ["true"]})
    for bad, message in (({"dangling": ["maybe"]}, "invalid filter 'dangling=maybe'"),
                         ({"type": ["odd"]}, "invalid filter"), ({"colour": ["red"]}, "invalid filter 'colour'")):
        with pytest.raises(InvalidArgument, match=message):
            client.get("/networks", {"filters": json.dumps(bad)})
    # The list leaves the containers out, as Docker's does (inspect has them).
    assert all(n["Containers"] == {} for n in client.get("/networks"))
    assert client.delete("/networks/napi-one").status == 204
    with pytest.raises(NotFound, match="^network napi-one not found$"):
        client.get("/networks/napi-one")


def test_errors_have_dockers_status_and_message(daemon, networks):
    client = daemon.client()
    _create(client, networks, "napi-dup")
    with pytest.raises(Exception, match="^network with name napi-dup already exists$") as conflict:
        client.post("/networks/create", body={"Name": "napi-dup"})
    assert conflict.value.status == 409
    with pytest.raises(Forbidden, match="^bridge is a pre-defined network and cannot be removed$"):
        client.delete("/networks/bridge")
    with pytest.raises(Forbidden, match="predefined host network"):
        client.post("/networks/create", body={"Name": "host"})
    with pytest.raises(NotFound, match="^network nope-net not found$"):
        client.delete("/networks/nope-net")
    # What minictr does not do is refused, naming it, never ignored; nothing is made.
    for body, message in (({"Options": {"com.docker.network.bridge.default_bridge": "true"}},
                           "^network driver option 'com.docker.network.bridge.default_bridge' is not supported$"),
                          ({"Options": {"com.docker.network.bridge.name": "br mine!"}}, "an interface name of"),
                          ({"Options": {"com.docker.network.driver.mtu": "big"}},
                           "'big' for com.docker.network.driver.mtu"),
                          ({"Options": {"com.docker.network.driver.mtu": "40"}}, "^invalid MTU 40 "),
                          ({"Options": {"com.docker.network.bridge.enable_ip_masquerade": "maybe"}}, "not a boolean"),
                          ({"EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "fd00:232::/64",
                                                                     "AuxiliaryAddresses": {"a": "fd00:232::9"}}]}},
                           "AuxiliaryAddresses of an IPv6 subnet"),
                          ({"ConfigOnly": True}, "ConfigOnly"), ({"EnableIPv4": False}, "without IPv4"),
                          ({"IPAM": {"Driver": "other"}}, "IPAM driver 'other'"),
                          ({"Driver": "overlay"}, "overlay"), ({"Name": ""}, "name")):
        with pytest.raises(InvalidArgument, match=message):
            client.post("/networks/create", body={"Name": "napi-bad", **body})
    assert "napi-bad" not in [n["Name"] for n in client.get("/networks")]


def test_auxiliary_addresses_are_reserved(daemon, image, networks):
    client = daemon.client()
    aux = {"router": "10.232.0.2", "printer": "10.232.0.3"}
    _create(client, networks, "napi-aux", IPAM={"Config": [{"Subnet": "10.232.0.0/29", "AuxiliaryAddresses": aux}]})
    assert client.get("/networks/napi-aux")["IPAM"]["Config"] == \
        [{"Subnet": "10.232.0.0/29", "Gateway": "10.232.0.1", "AuxiliaryAddresses": aux}]
    # Never handed out: the first container gets the next free address, and none may ask for one.
    result = daemon.cli("run", "--rm", "--network", "napi-aux", image, "ip", "-4", "-o", "addr", "show", "eth0")
    assert result.returncode == 0 and " 10.232.0.4/29 " in result.stdout, result.stdout + result.stderr
    taken = daemon.cli("run", "--rm", "--network", "napi-aux", "--ip", "10.232.0.3", image, "true")
    assert taken.returncode != 0 and "Address already in use: 10.232.0.3" in taken.stderr
    # libnetwork's checks, in its words; nothing is made.
    for aux, error, message in (({"a": "10.99.0.9"}, Forbidden,
                                 r"^auxiliary address: \(a:10\.99\.0\.9\) must belong to the master pool: "
                                 r"10\.233\.0\.0/24$"),
                                ({"a": "nope"}, InvalidArgument,
                                 r"^non parsable secondary ip address \(a:nope\) passed for network napi-aux2$"),
                                ({"gw": "10.233.0.1"}, InvalidArgument,
                                 r"\(gw:10\.233\.0\.1\): Address already in use$")):
        with pytest.raises(error, match=message):
            client.post("/networks/create", body={"Name": "napi-aux2", "IPAM": {
                "Config": [{"Subnet": "10.233.0.0/24", "AuxiliaryAddresses": aux}]}})
    assert "napi-aux2" not in [n["Name"] for n in client.get("/networks")]


def test_mac_address_of_the_container_and_of_an_endpoint(daemon, image, networks):
    client = daemon.client()
    _create(client, networks, "napi-mac")
    _create(client, networks, "napi-mac2")
    # API 1.43: --mac-address is Config.MacAddress (the network's endpoint); an endpoint may have its own.
    created = client.post("/containers/create", {"name": "napi-macc"}, body={
        "Image": image, "Cmd": ["sleep", "300"], "MacAddress": "02:42:AC:1F:00:99",
        "HostConfig": {"NetworkMode": "napi-mac"}})
    assert created.status == 201
    try:
        assert client.post("/containers/napi-macc/start").status == 204
        assert client.post("/networks/napi-mac2/connect", body={
            "Container": "napi-macc", "EndpointConfig": {"MacAddress": "02:42:ac:1f:00:aa"}}).status == 200
        result = daemon.cli("exec", "napi-macc", "cat", "/sys/class/net/eth0/address", "/sys/class/net/eth1/address")
        assert result.stdout.split() == ["02:42:ac:1f:00:99", "02:42:ac:1f:00:aa"], result.stderr
        networks_of = client.get("/containers/napi-macc/json")["NetworkSettings"]["Networks"]
        assert {name: n["MacAddress"] for name, n in networks_of.items()} == \
            {"napi-mac": "02:42:ac:1f:00:99", "napi-mac2": "02:42:ac:1f:00:aa"}
        assert client.get("/networks/napi-mac")["Containers"][created.json()["Id"]]["MacAddress"] == "02:42:ac:1f:00:99"
        # The same after a restart (the address is the container's, not its run's).
        daemon.ok("restart", "-t", "0", "napi-macc")
        assert daemon.ok("exec", "napi-macc", "cat", "/sys/class/net/eth0/address").strip() == "02:42:ac:1f:00:99"
    finally:
        daemon.cli("rm", "-f", "napi-macc")
    for body, message in (({"MacAddress": "zz:00"}, "^zz:00 is not a valid mac address$"),
                          ({"MacAddress": "03:00:00:00:00:01"}, "multicast"),
                          ({"MacAddress": "02:00:00:00:00:01", "HostConfig": {"NetworkMode": "host"}},
                           "^conflicting options: mac-address and the network mode$")):
        with pytest.raises(InvalidArgument, match=message):
            client.post("/containers/create", {"name": "napi-macbad"}, body={"Image": image, "Cmd": ["true"], **body})
    assert daemon.cli("inspect", "napi-macbad").returncode != 0


def test_link_local_ips_are_added_to_the_interface(daemon, image, networks):
    client = daemon.client()
    _create(client, networks, "napi-ll")
    _create(client, networks, "napi-ll2")
    created = client.post("/containers/create", {"name": "napi-llc"}, body={
        "Image": image, "Cmd": ["sleep", "300"], "HostConfig": {"NetworkMode": "napi-ll"},
        "NetworkingConfig": {"EndpointsConfig": {"napi-ll": {"IPAMConfig": {"LinkLocalIPs": ["169.254.10.10"]}}}}})
    assert created.status == 201
    try:
        assert client.post("/containers/napi-llc/start").status == 204
        endpoint = {"IPAMConfig": {"LinkLocalIPs": ["169.254.20.20"]}}
        assert client.post("/networks/napi-ll2/connect", body={"Container": "napi-llc",
                                                               "EndpointConfig": endpoint}).status == 200
        for ifname, address in (("eth0", "169.254.10.10/32"), ("eth1", "169.254.20.20/32")):
            shown = daemon.ok("exec", "napi-llc", "ip", "-4", "-o", "addr", "show", ifname)
            assert f" {address} " in shown, shown
        networks_of = client.get("/containers/napi-llc/json")["NetworkSettings"]["Networks"]
        assert networks_of["napi-ll"]["IPAMConfig"] == {"LinkLocalIPs": ["169.254.10.10"]}
        assert networks_of["napi-ll2"]["IPAMConfig"] == {"LinkLocalIPs": ["169.254.20.20"]}
    finally:
        daemon.cli("rm", "-f", "napi-llc")
    with pytest.raises(InvalidArgument, match="^invalid link-local IP address: nope$"):
        client.post("/containers/create", {"name": "napi-llbad"}, body={
            "Image": image, "Cmd": ["true"], "HostConfig": {"NetworkMode": "napi-ll"},
            "NetworkingConfig": {"EndpointsConfig": {"napi-ll": {"IPAMConfig": {"LinkLocalIPs": ["nope"]}}}}})
    assert daemon.cli("inspect", "napi-llbad").returncode != 0


def test_internal_network_as_docker_means_it(daemon, image, networks):
    # Docker's --internal: containers on it reach each other, but it gives no gateway, so no default route
    # and no published port (a container only on internal networks publishes nothing; `docker port` is empty).
    client = daemon.client()
    _create(client, networks, "napi-int", Internal=True)
    try:
        daemon.ok("run", "-d", "--name", "napi-int1", "--network", "napi-int", "-p", "127.0.0.1::80", image,
                  "sleep", "300")
        ping = daemon.cli("run", "--rm", "--network", "napi-int", image, "ping", "-c", "1", "-W", "5", "napi-int1")
        assert ping.returncode == 0, ping.stdout + ping.stderr
        routes = daemon.ok("exec", "napi-int1", "ip", "route").splitlines()
        assert routes and not [r for r in routes if r.startswith("default")], routes
        settings = client.get("/containers/napi-int1/json")["NetworkSettings"]
        assert settings["Networks"]["napi-int"]["Gateway"] == "" and settings["Networks"]["napi-int"]["IPAddress"]
        assert settings["Ports"] == {"80/tcp": None}
        assert daemon.ok("port", "napi-int1").strip() == ""
    finally:
        daemon.cli("rm", "-f", "napi-int1")


def test_without_icc_containers_reach_the_gateway_but_not_each_other(daemon, image, networks):
    client = daemon.client()
    _create(client, networks, "napi-noicc", Options={"com.docker.network.bridge.enable_icc": "false"},
            IPAM={"Config": [{"Subnet": "10.230.0.0/24"}]})
    try:
        daemon.ok("run", "-d", "--name", "napi-noicc1", "--network", "napi-noicc", image, "sleep", "300")
        # The name still resolves (DNS is the gateway's), the gateway answers, the other container does not.
        script = ("ping -c 1 -W 2 10.230.0.1 && ! ping -c 1 -W 2 napi-noicc1 && "
                  "nslookup napi-noicc1 | grep -q 10.230.0.2")
        probe = daemon.cli("run", "--rm", "--network", "napi-noicc", image, "sh", "-c", script)
        assert probe.returncode == 0, probe.stdout + probe.stderr
    finally:
        daemon.cli("rm", "-f", "napi-noicc1")


def test_host_binding_ipv4_is_the_default_host_address_of_published_ports(daemon, image, networks):
    client = daemon.client()
    _create(client, networks, "napi-hb", Options={"com.docker.network.bridge.host_binding_ipv4": "127.0.0.1"})
    try:
        daemon.ok("run", "-d", "--name", "napi-hb1", "--network", "napi-hb", "-p", "80", "-p", "0.0.0.0::81",
                  image, "sh", "-c", "mkdir /w && echo bound > /w/index.html && exec httpd -f -p 80 -h /w")
        ports = client.get("/containers/napi-hb1/json")["NetworkSettings"]["Ports"]
        # Only the binding that names no address takes the network's (and no [::] beside it).
        assert [b["HostIp"] for b in ports["80/tcp"]] == ["127.0.0.1"]
        assert [b["HostIp"] for b in ports["81/tcp"]] == ["0.0.0.0"]
        url = f"http://127.0.0.1:{ports['80/tcp'][0]['HostPort']}/index.html"
        body = None
        for _ in range(50):  # httpd starts after the container does
            try:
                body = urllib.request.urlopen(url, timeout=5).read()
                break
            except OSError:
                time.sleep(0.1)
        assert body == b"bound\n"
    finally:
        daemon.cli("rm", "-f", "napi-hb1")
    with pytest.raises(InvalidArgument, match="not an IPv4 address"):
        client.post("/networks/create", body={"Name": "napi-hb2", "Options": {
            "com.docker.network.bridge.host_binding_ipv4": "localhost"}})


def test_bridge_name_taken_by_an_interface_or_a_network_is_refused(daemon, networks):
    client = daemon.client()
    # `lo` exists wherever the daemon runs: minictr never takes over (nor removes) an interface it did not make.
    with pytest.raises(Exception, match="an interface named lo exists") as taken:
        client.post("/networks/create", body={"Name": "napi-brlo", "Options": {"com.docker.network.bridge.name": "lo"}})
    assert taken.value.status == 409
    _create(client, networks, "napi-brn", Options={"com.docker.network.bridge.name": "mcnapi-brn"})
    with pytest.raises(Exception, match="conflicts with network napi-brn: networks have same bridge name"):
        client.post("/networks/create", body={"Name": "napi-brn2",
                                              "Options": {"com.docker.network.bridge.name": "mcnapi-brn"}})
    assert not {"napi-brlo", "napi-brn2"} & {n["Name"] for n in client.get("/networks")}


def test_attachable_is_accepted_and_reported_as_docker_does(daemon, networks):
    # Compose 1.29 creates every project network with Attachable: true (a swarm setting that Docker keeps
    # and reports for a local bridge too).
    client = daemon.client()
    _create(client, networks, "napi-att", Attachable=True, Labels={"com.docker.compose.project": "p"})
    _create(client, networks, "napi-plain")
    assert client.get("/networks/napi-att")["Attachable"] is True
    # Docker's Options of a user network are its creator's (none): Compose recreates one whose differ.
    assert client.get("/networks/napi-att")["Options"] == {}
    assert client.get("/networks/napi-plain")["Attachable"] is False
    listed = {n["Name"]: n["Attachable"] for n in client.get("/networks")}
    assert listed["napi-att"] is True and listed["napi-plain"] is False and listed["bridge"] is False
    networks.append("napi-att-cli")
    daemon.ok("network", "create", "--attachable", "napi-att-cli")
    assert json.loads(daemon.ok("network", "inspect", "napi-att-cli"))[0]["Attachable"] is True


def test_swarm_only_fields_are_refused_in_dockers_words(daemon):
    # What Docker 20.10 answers without a swarm (libnetwork's 403s); nothing is made.
    client = daemon.client()
    for body, message in (({"Ingress": True}, "^Ingress network can only be global scope network$"),
                          ({"Scope": "swarm"}, "^cannot create a swarm scoped network when swarm is not active$"),
                          ({"ConfigOnly": True, "Attachable": True},
                           r"^configuration network can only contain network specific fields\. Network operator "
                           r"fields like \[ ingress \| internal \| attachable \| scope \] are not supported\.$")):
        with pytest.raises(Forbidden, match=message):
            client.post("/networks/create", body={"Name": "napi-swarm", **body})
    assert "napi-swarm" not in [n["Name"] for n in client.get("/networks")]


def test_connect_disconnect_and_container_inspect(daemon, image, networks):
    client = daemon.client()
    _create(client, networks, "napi-a", IPAM={"Config": [{"Subnet": "10.233.0.0/24"}]})
    _create(client, networks, "napi-b", IPAM={"Config": [{"Subnet": "10.234.0.0/24"}]})
    daemon.ok("run", "-d", "--name", "napi-ctr", "--network", "napi-a", "--network-alias", "web", image,
              "sleep", "300")
    try:
        container_id = daemon.ok("inspect", "--format", "{{.Id}}", "napi-ctr").strip()
        response = client.post("/networks/napi-b/connect", body={
            "Container": "napi-ctr", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.234.0.77"},
                                                        "Aliases": ["db"]}})
        assert response.status == 200
        settings = json.loads(daemon.ok("inspect", "napi-ctr"))[0]["NetworkSettings"]["Networks"]
        assert set(settings) == {"napi-a", "napi-b"}
        b = settings["napi-b"]
        assert b["IPAddress"] == "10.234.0.77" and b["IPPrefixLen"] == 24 and b["Gateway"] == "10.234.0.1"
        assert b["IPAMConfig"] == {"IPv4Address": "10.234.0.77"} and b["Aliases"] == ["db"]
        assert b["DNSNames"] == ["napi-ctr", "db", container_id[:12]]
        assert settings["napi-a"]["IPAMConfig"] is None and settings["napi-a"]["DNSNames"][:2] == ["napi-ctr", "web"]
        assert b["NetworkID"] == client.get("/networks/napi-b")["Id"] and len(b["EndpointID"]) == 64
        assert b["MacAddress"] == "02:42:0a:ea:00:4d"
        # The network's inspect lists the container; its interface is in the container now.
        attached = client.get("/networks/napi-b")["Containers"]
        assert attached[container_id]["Name"] == "napi-ctr"
        assert attached[container_id]["IPv4Address"] == "10.234.0.77/24"
        assert "10.234.0.77/24" in daemon.ok("exec", "napi-ctr", "ip", "-4", "addr")
        # Connected twice: 403 as Docker's; removing a network in use: 403.
        with pytest.raises(Forbidden, match="^endpoint with name napi-ctr already exists in network napi-b$"):
            client.post("/networks/napi-b/connect", body={"Container": "napi-ctr"})
        with pytest.raises(Forbidden, match="has active endpoints"):
            client.delete("/networks/napi-b")
        with pytest.raises(NotFound, match="^network nope-net not found$"):
            client.post("/networks/nope-net/connect", body={"Container": "napi-ctr"})
        with pytest.raises(NotFound, match="No such container: nope-ctr"):
            client.post("/networks/napi-b/connect", body={"Container": "nope-ctr"})
        with pytest.raises(InvalidArgument, match="DriverOpts"):
            client.post("/networks/napi-b/connect",
                        body={"Container": "napi-ctr", "EndpointConfig": {"DriverOpts": {"x": "y"}}})
        assert client.post("/networks/napi-b/disconnect", body={"Container": "napi-ctr"}).status == 200
        assert "10.234.0.77" not in daemon.ok("exec", "napi-ctr", "ip", "-4", "addr")
        with pytest.raises(InvalidArgument, match="is not connected to network napi-b"):
            client.post("/networks/napi-b/disconnect", body={"Container": "napi-ctr"})
        assert client.post("/networks/napi-b/disconnect", body={"Container": "napi-ctr", "Force": True}).status == 200
        assert client.get("/networks/napi-b")["Containers"] == {}
    finally:
        daemon.cli("rm", "-f", "napi-ctr")


def test_prune_filters_until_and_labels(daemon, networks):
    client = daemon.client()
    _create(client, networks, "napi-old-keep", Labels={"keep": "1"})
    _create(client, networks, "napi-old")
    time.sleep(2.1)
    _create(client, networks, "napi-new")
    names = lambda: {n["Name"] for n in client.get("/networks")}  # noqa: E731
    with pytest.raises(InvalidArgument, match="invalid filter 'dangling'"):
        client.post("/networks/prune", {"filters": json.dumps({"dangling": ["true"]})})
    with pytest.raises(InvalidArgument, match="failed to parse value as time or duration"):
        client.post("/networks/prune", {"filters": json.dumps({"until": ["yesterday"]})})
    pruned = client.post("/networks/prune", {"filters": json.dumps({"until": ["2s"], "label!": ["keep"]})}).json()
    assert pruned == {"NetworksDeleted": ["napi-old"]}
    assert {"napi-old-keep", "napi-new"} <= names() and "napi-old" not in names()
    pruned = client.post("/networks/prune", {"filters": json.dumps({"label": ["keep=1"]})}).json()
    assert pruned == {"NetworksDeleted": ["napi-old-keep"]}
    assert "napi-new" in names() and {"bridge", "host", "none"} <= names()
    client.delete("/networks/napi-new")
    assert client.post("/networks/prune", {"filters": json.dumps({"label": ["nobody"]})}).json() == \
        {"NetworksDeleted": None}


# The real docker CLI (scripts/install --test installs docker.io when `docker` is missing). Only these
# tests depend on it.
needs_docker = pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI on this machine")


@pytest.fixture
def docker(daemon):
    config = tempfile.mkdtemp(prefix="minictr-docker-config-")

    def run(*args, ok=True):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": config, "DOCKER_CONFIG": config,
               "DOCKER_HOST": daemon.host}
        result = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=60)
        if ok:
            assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
        return result

    yield run
    shutil.rmtree(config)


@needs_docker
def test_docker_cli_network_commands(daemon, docker, networks):
    networks.extend(["napi-dk", "napi-dk2"])
    network_id = docker("network", "create", "--subnet", "10.235.0.0/24", "--label", "via=docker", "napi-dk").stdout
    assert len(network_id.strip()) == 64
    listed = docker("network", "ls", "--filter", "label=via=docker").stdout.splitlines()
    assert listed[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert listed[1].split() == [network_id[:12], "napi-dk", "bridge", "local"]
    assert docker("network", "ls", "-f", "type=custom", "--format", "{{.Name}}").stdout.split().count("napi-dk") == 1
    assert docker("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
                  "napi-dk").stdout.strip() == "10.235.0.0/24 10.235.0.1"
    again = docker("network", "create", "napi-dk", ok=False)
    assert again.returncode == 1 and "network with name napi-dk already exists" in again.stderr
    predefined = docker("network", "rm", "bridge", ok=False)
    assert predefined.returncode == 1
    assert "bridge is a pre-defined network and cannot be removed" in predefined.stderr
    missing = docker("network", "inspect", "nope-net", ok=False)
    assert missing.returncode == 1
    assert not_found("network", "nope-net", "network nope-net not found") in missing.stderr
    unsupported = docker("network", "create", "-o", "com.docker.network.bridge.default_bridge=true", "napi-dk2",
                         ok=False)
    assert unsupported.returncode == 1 and "not supported" in unsupported.stderr
    assert docker("network", "prune", "-f", "--filter", "label=via=docker").stdout.split() == \
        ["Deleted", "Networks:", "napi-dk"]
    assert "napi-dk" not in docker("network", "ls", "--format", "{{.Name}}").stdout.split()


@needs_docker
def test_docker_cli_attachable_and_ingress(daemon, docker, networks):
    networks.extend(["napi-dka", "napi-dki"])
    docker("network", "create", "--attachable", "napi-dka")
    assert docker("network", "inspect", "--format", "{{.Attachable}} {{.Ingress}} {{len .Options}}",
                  "napi-dka").stdout == "true false 0\n"
    ingress = docker("network", "create", "--ingress", "napi-dki", ok=False)
    assert ingress.returncode == 1 and "Ingress network can only be global scope network" in ingress.stderr
    assert "napi-dki" not in docker("network", "ls", "--format", "{{.Name}}").stdout.split()


@needs_docker
def test_docker_cli_run_on_a_network_connect_and_port(daemon, image, docker, networks):
    networks.extend(["napi-dr", "napi-dr2"])
    docker("network", "create", "--subnet", "10.236.0.0/24", "napi-dr")
    docker("network", "create", "--subnet", "10.237.0.0/24", "napi-dr2")
    try:
        docker("run", "-d", "--name", "napi-dctr", "--network", "napi-dr", "--ip", "10.236.0.9",
               "-p", "127.0.0.1::80", image, "sleep", "300")
        port = docker("port", "napi-dctr").stdout.strip()
        assert port.startswith("80/tcp -> 127.0.0.1:") and int(port.rpartition(":")[2]) > 0
        docker("network", "connect", "--alias", "db", "napi-dr2", "napi-dctr")
        fmt = "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}"
        addresses = docker("inspect", "--format", fmt, "napi-dctr").stdout.split()
        assert addresses == ["napi-dr=10.236.0.9", "napi-dr2=10.237.0.2"]
        twice = docker("network", "connect", "napi-dr2", "napi-dctr", ok=False)
        assert twice.returncode == 1 and "already exists in network napi-dr2" in twice.stderr
        busy = docker("network", "rm", "napi-dr2", ok=False)
        assert busy.returncode == 1 and "has active endpoints" in busy.stderr
        docker("network", "disconnect", "napi-dr2", "napi-dctr")
        assert docker("inspect", "--format", fmt, "napi-dctr").stdout.split() == ["napi-dr=10.236.0.9"]
        docker("network", "disconnect", "-f", "napi-dr2", "napi-dctr")
    finally:
        daemon.cli("rm", "-f", "napi-dctr")


def test_bridge_driver_options_mtu_and_reported_as_given(daemon, image, networks):
    # docker-py's create_network(options=...) sends them as Options; inspect reports only those, and keys
    # the bridge driver does not know are kept and otherwise ignored, as Docker's bridge driver does.
    client = daemon.client()
    options = {"com.docker.network.driver.mtu": "1400", "com.docker.network.bridge.enable_ip_masquerade": "false",
               "com.example.note": "kept"}
    _create(client, networks, "napi-opts", Options=options)
    assert client.get("/networks/napi-opts")["Options"] == options
    assert [n["Options"] for n in client.get("/networks") if n["Name"] == "napi-opts"] == [options]
    # The container's interface has the MTU (the bridge and the host's end too: no fragment lost on the way).
    result = daemon.cli("run", "--rm", "--network", "napi-opts", image, "cat", "/sys/class/net/eth0/mtu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1400"


@needs_docker
def test_docker_cli_network_create_with_aux_address(daemon, image, docker, networks):
    networks.append("napi-dkx")
    docker("network", "create", "--subnet", "10.234.0.0/24", "--aux-address", "host=10.234.0.2", "napi-dkx")
    assert docker("network", "inspect", "--format", "{{range .IPAM.Config}}{{json .AuxiliaryAddresses}}{{end}}",
                  "napi-dkx").stdout == '{"host":"10.234.0.2"}\n'
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    try:
        docker("run", "-d", "--name", "napi-dkxc", "--network", "napi-dkx", image, "sleep", "300")
        assert docker("inspect", "--format", fmt, "napi-dkxc").stdout == "10.234.0.3\n"
    finally:
        daemon.cli("rm", "-f", "napi-dkxc")


@needs_docker
def test_docker_cli_run_with_mac_address(daemon, image, docker, networks):
    networks.append("napi-dkm")
    docker("network", "create", "napi-dkm")
    for network, mac in (("default", "02:42:0a:00:00:ab"), ("napi-dkm", "02:42:0a:00:00:ac")):
        run = docker("run", "--rm", "--network", network, "--mac-address", mac, image,
                     "cat", "/sys/class/net/eth0/address", ok=older_than(25))
        if older_than(25):
            assert run.stdout == mac + "\n"
        else:  # later CLIs send it in the endpoint, an API 1.44 field, and refuse it themselves against our 1.43
            assert '"specify mac-address per network" requires API version 1.44' in run.stderr
    on_host = docker("run", "--rm", "--network", "host", "--mac-address", "02:42:0a:00:00:ab", image, "true", ok=False)
    assert on_host.returncode != 0
    if older_than(25):
        assert "conflicting options: mac-address and the network mode" in on_host.stderr


@needs_docker
def test_docker_cli_run_with_link_local_ip(daemon, image, docker, networks):
    networks.append("napi-dkl")
    docker("network", "create", "napi-dkl")
    shown = docker("run", "--rm", "--network", "napi-dkl", "--link-local-ip", "169.254.30.30", image,
                   "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert " 169.254.30.30/32 " in shown, shown


@needs_docker
def test_docker_cli_network_create_with_driver_options(daemon, image, docker, networks):
    networks.append("napi-dko")
    docker("network", "create", "-o", "com.docker.network.driver.mtu=1280", "--opt",
           "com.docker.network.bridge.enable_ip_masquerade=false", "napi-dko")
    assert json.loads(docker("network", "inspect", "--format", "{{json .Options}}", "napi-dko").stdout) == \
        {"com.docker.network.driver.mtu": "1280", "com.docker.network.bridge.enable_ip_masquerade": "false"}
    assert docker("run", "--rm", "--network", "napi-dko", image, "cat", "/sys/class/net/eth0/mtu").stdout == "1280\n"
    bad = docker("network", "create", "-o", "com.docker.network.driver.mtu=1x", "napi-dko2", ok=False)
    assert bad.returncode == 1 and "invalid value '1x' for com.docker.network.driver.mtu" in bad.stderr
    assert "napi-dko2" not in docker("network", "ls", "--format", "{{.Name}}").stdout.split()
