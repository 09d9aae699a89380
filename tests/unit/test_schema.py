"""Engine API bodies decoded as Docker's daemon decodes them (minictr.spec.schema)."""

import json

import pytest

from minictr.errors import InvalidArgument
from minictr.spec.schema import STRUCTS, decode
from tests.schema_corpus import malformed_bodies

# Bodies real clients send, trimmed of nothing: docker CLI 28 `run -d -p 8080:80 -e A=1 -v v:/d
# --restart on-failure:3 --health-cmd true`, docker-py 7 `containers.create(...)`, compose v2.
DOCKER_CLI = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "ExposedPorts": {"80/tcp": {}}, "Tty": False, "OpenStdin": False,
    "StdinOnce": False, "Env": ["A=1"], "Cmd": None, "Healthcheck": {"Test": ["CMD-SHELL", "true"]},
    "Image": "busybox", "Volumes": {}, "WorkingDir": "", "Entrypoint": None, "OnBuild": None,
    "Labels": {}, "HostConfig": {
        "Binds": ["v:/d"], "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "bridge",
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}, "AutoRemove": False,
        "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [50, 200], "CapAdd": None, "CapDrop": None,
        "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None,
        "IpcMode": "", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
        "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "",
        "ShmSize": 0, "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
        "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
        "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0, "MemorySwap": 0,
        "MemorySwappiness": None, "OomKillDisable": None, "PidsLimit": None, "Ulimits": [], "CpuCount": 0,
        "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None},
    "NetworkingConfig": {"EndpointsConfig": {"bridge": {"IPAMConfig": None, "Links": None, "Aliases": None,
                                                        "MacAddress": "", "DriverOpts": None, "NetworkID": "",
                                                        "EndpointID": "", "Gateway": "", "IPAddress": "",
                                                        "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                                                        "GlobalIPv6PrefixLen": 0, "DNSNames": None}}},
}
DOCKER_PY = {
    "Image": "busybox", "Cmd": "sh -c 'echo hi'", "Entrypoint": None, "Env": ["A=1"],
    "Labels": {"a": "b"}, "Tty": False, "StopSignal": None, "StopTimeout": None, "Healthcheck": None,
    "NetworkDisabled": False, "MacAddress": None, "Volumes": None, "User": None, "WorkingDir": None,
    "HostConfig": {"NetworkMode": "default", "Init": None, "Mounts": [
        {"Target": "/m", "Source": "vol", "Type": "volume", "ReadOnly": False,
         "VolumeOptions": {"NoCopy": False, "Labels": None, "DriverConfig": None}}],
        "Tmpfs": {"/t": "size=1m"}, "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
        "Sysctls": {"net.core.somaxconn": "1024"}, "Dns": None},
    "UnknownToDocker": {"kept": [1, 2]},
}


@pytest.mark.parametrize("body", [DOCKER_CLI, DOCKER_PY, {"Image": "x"}], ids=["docker-cli", "docker-py", "bare"])
def test_bodies_real_clients_send_are_accepted_unchanged(body):
    decoded = decode(json.loads(json.dumps(body)), "ContainerConfig")
    assert {k: v for k, v in decoded.items() if k != "Cmd"} == {k: v for k, v in body.items() if k != "Cmd"}


def test_a_string_command_is_one_argument_as_in_docker():
    assert decode({"Cmd": "sh", "Entrypoint": "/bin/x", "Shell": "sh"}, "ContainerConfig") == \
        {"Cmd": ["sh"], "Entrypoint": ["/bin/x"], "Shell": ["sh"]}


def test_a_null_element_is_the_zero_value_as_in_go():
    assert decode({"Env": [None], "Labels": {"a": None}, "HostConfig": {"Ulimits": [None]}}, "ContainerConfig") == \
        {"Env": [""], "Labels": {"a": ""}, "HostConfig": {"Ulimits": [{}]}}


@pytest.mark.parametrize("body, field, go_type", [
    ({"Image": "busybox-local", "Cmd": [1, 2]}, "ContainerConfig.Cmd", "string"),
    ({"Env": {"A": "1"}}, "ContainerConfig.Env", "[]string"),
    ({"User": 0}, "ContainerConfig.User", "string"),
    ({"Entrypoint": {"a": "b"}}, "ContainerConfig.Entrypoint", "[]string"),
    ({"Volumes": {"/x": 5}}, "ContainerConfig.Volumes", "struct {}"),
    ({"HostConfig": {"CpuShares": 1e308}}, "HostConfig.CpuShares", "int64"),
    ({"HostConfig": {"Memory": 2 ** 63}}, "HostConfig.Memory", "int64"),
    ({"HostConfig": {"BlkioWeight": -1}}, "HostConfig.BlkioWeight", "uint16"),
    ({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": 80}]}}}, "PortBinding.HostPort", "string"),
    ({"NetworkingConfig": {"EndpointsConfig": {"n": {"Aliases": "a"}}}}, "EndpointSettings.Aliases", "[]string"),
])
def test_the_issues_bodies_are_refused_naming_the_field_in_gos_words(body, field, go_type):
    with pytest.raises(InvalidArgument) as e:
        decode(body, "ContainerConfig")
    assert f"Go struct field {field} of type {go_type}" in str(e.value)
    assert str(e.value).startswith("json: cannot unmarshal ")


@pytest.mark.parametrize("root", ["ContainerConfig", "UpdateConfig", "NetworkCreateRequest", "NetworkConnectRequest",
                                  "VolumeCreateRequest"])
def test_every_field_of_the_wrong_type_is_refused_naming_it(root):
    bodies = malformed_bodies(root, {})
    assert len(bodies) > 3 * len(STRUCTS[root])
    for field, body in bodies:
        with pytest.raises(InvalidArgument) as e:
            decode(body, root)
        assert f"Go struct field {field} of type" in str(e.value), (body, str(e.value))


def test_a_body_that_is_not_an_object_is_refused():
    for body in ([], "x", 5):
        with pytest.raises(InvalidArgument, match="into Go value of type ContainerConfig"):
            decode(body, "ContainerConfig")
    assert decode(None, "ContainerConfig") == {}
