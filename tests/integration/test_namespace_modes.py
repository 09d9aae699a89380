"""Namespace modes as the docker CLI and docker-py set them (issue 22): --pid host|container:X,
--ipc host|shareable|container:X|none, --uts host, --cgroupns host, --userns host, each checked from
inside the container against the namespaces it should share, and shown by inspect as Docker shows
them. Root and rootless (rootless --pid container:X is refused in one line)."""

import os
import socket
import uuid

import docker
import docker.errors
import pytest

from .conftest import ROOTLESS, daemon_pid, inspect, wait_until
from .dockercli import run_error
from .test_docker_cli import docker as docker_cli


def _name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ok(daemon, *args):
    result = docker_cli(daemon, *args)
    assert result.returncode == 0, f"docker {' '.join(args)} ({result.returncode}): {result.stderr}"
    return result.stdout


@pytest.fixture
def client(daemon, image):
    c = docker.DockerClient(base_url="unix://" + str(daemon.socket), timeout=60)
    yield c
    c.close()


@pytest.fixture
def running(daemon, image):
    """Start a detached container through the docker CLI with extra options; removed afterwards."""
    made = []

    def start(*options):
        name = _name("ns")
        made.append(name)
        ok(daemon, "run", "-d", "--name", name, *options, image, "sleep", "300")
        return name

    yield start
    for name in reversed(made):
        docker_cli(daemon, "rm", "-f", name)


def _namespace_in(daemon, name, kind):
    return ok(daemon, "exec", name, "readlink", f"/proc/self/ns/{kind}").strip()


def _own_namespace(kind):
    return os.readlink(f"/proc/self/ns/{kind}")


def _names(daemon):
    return set(docker_cli(daemon, "ps", "-a", "--format", "{{.Names}}").stdout.split())


# ---- --pid ----

def test_pid_host_sees_the_hosts_processes(daemon, running):
    name = running("--pid", "host")
    assert _namespace_in(daemon, name, "pid") == _own_namespace("pid")
    # This test's own process, a host process, is in the container's /proc.
    own_comm = open("/proc/self/comm").read().strip()
    assert ok(daemon, "exec", name, "cat", f"/proc/{os.getpid()}/comm").strip() == own_comm
    assert inspect(daemon, name)["HostConfig"]["PidMode"] == "host"


def _processes_with(argument):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if argument in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0"):
                found.append(int(pid))
        except OSError:
            pass
    return found


def test_removing_a_pid_host_container_leaves_none_of_its_processes(daemon, image):
    # Without a PID namespace of its own, the init's end does not take its children along.
    seconds = str(3000 + uuid.uuid4().int % 1000)
    name = _name("ns")
    ok(daemon, "run", "-d", "--name", name, "--pid", "host", image, "sh", "-c", f"sleep {seconds} & exec sleep 300")
    wait_until(lambda: _processes_with(seconds.encode()), what="the container's background process")
    ok(daemon, "rm", "-f", name)
    wait_until(lambda: not _processes_with(seconds.encode()), timeout=10, what="the background process gone")


def test_pid_container_shares_the_other_containers_processes(daemon, running):
    donor = running()
    joiner = running("--pid", f"container:{donor}")
    assert _namespace_in(daemon, joiner, "pid") == _namespace_in(daemon, donor, "pid")
    # The donor's init is pid 1 of the joiner's /proc, and the joiner's processes are the donor's to see.
    assert ok(daemon, "exec", joiner, "cat", "/proc/1/cmdline").split("\0")[:2] == ["sleep", "300"]
    assert "sleep 300" in ok(daemon, "exec", donor, "ps", "-o", "args")
    assert len(ok(daemon, "exec", donor, "ps", "-o", "pid").split()) >= 4  # header, two inits, ps
    assert inspect(daemon, joiner)["HostConfig"]["PidMode"] == f"container:{donor}"
    # Rootless, the joiner is in the donor's user namespace (X's /proc is mountable only from there).
    if ROOTLESS:
        assert _namespace_in(daemon, joiner, "user") == _namespace_in(daemon, donor, "user")


def test_pid_container_of_a_stopped_container_is_a_conflict(daemon, image):
    donor = _name("ns")
    ok(daemon, "create", "--name", donor, image, "true")
    try:
        result = docker_cli(daemon, "run", "--rm", "--pid", f"container:{donor}", image, "true")
        assert result.returncode != 0
        assert f"cannot join PID of a non running container: {donor}" in result.stderr
    finally:
        docker_cli(daemon, "rm", "-f", donor)


# ---- --ipc ----

def test_ipc_host_shares_the_hosts_ipc_namespace_and_dev_shm(daemon, running):
    marker = f"/dev/shm/minictr-ns-{uuid.uuid4().hex[:8]}"
    with open(marker, "w") as f:
        f.write("from the host\n")
    try:
        name = running("--ipc", "host")
        assert _namespace_in(daemon, name, "ipc") == _own_namespace("ipc")
        assert ok(daemon, "exec", name, "cat", marker) == "from the host\n"
        assert inspect(daemon, name)["HostConfig"]["IpcMode"] == "host"
    finally:
        os.unlink(marker)


def test_ipc_container_of_a_shareable_one_shares_its_namespace_and_dev_shm(daemon, running):
    donor = running("--ipc", "shareable")
    ok(daemon, "exec", donor, "sh", "-c", "echo shared > /dev/shm/note")
    joiner = running("--ipc", f"container:{donor}")
    assert _namespace_in(daemon, joiner, "ipc") == _namespace_in(daemon, donor, "ipc")
    assert ok(daemon, "exec", joiner, "cat", "/dev/shm/note") == "shared\n"
    assert inspect(daemon, joiner)["HostConfig"]["IpcMode"] == f"container:{donor}"
    assert inspect(daemon, donor)["HostConfig"]["IpcMode"] == "shareable"


def test_ipc_container_of_a_private_one_is_refused_in_dockers_words(client, image):
    donor = client.containers.run(image, ["sleep", "300"], detach=True, name=_name("ns"))
    try:
        with pytest.raises(docker.errors.APIError) as refused:
            client.containers.create(image, "true", ipc_mode=f"container:{donor.name}")
        assert refused.value.status_code == 400
        assert refused.value.explanation == "non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
    finally:
        donor.remove(force=True)


def test_ipc_none_has_its_own_namespace_and_no_dev_shm(daemon, running):
    name = running("--ipc", "none")
    assert _namespace_in(daemon, name, "ipc") != _own_namespace("ipc")
    assert docker_cli(daemon, "exec", name, "test", "-e", "/dev/shm").returncode == 1
    assert inspect(daemon, name)["HostConfig"]["IpcMode"] == "none"


def test_the_default_ipc_mode_is_private(client, image):
    container = client.containers.run(image, ["sleep", "300"], detach=True, name=_name("ns"))
    try:
        assert client.api.inspect_container(container.id)["HostConfig"]["IpcMode"] == "private"
        assert container.exec_run(["readlink", "/proc/self/ns/ipc"]).output.decode().strip() != _own_namespace("ipc")
    finally:
        container.remove(force=True)


# ---- --uts, --cgroupns ----

def test_uts_host_has_the_hosts_name(daemon, running):
    name = running("--uts", "host")
    assert _namespace_in(daemon, name, "uts") == _own_namespace("uts")
    assert ok(daemon, "exec", name, "hostname").strip() == socket.gethostname()
    assert inspect(daemon, name)["HostConfig"]["UTSMode"] == "host"


def test_uts_host_with_a_hostname_is_refused(client, image):
    with pytest.raises(docker.errors.APIError) as refused:
        client.containers.create(image, "true", uts_mode="host", hostname="other")
    assert refused.value.status_code == 400
    assert refused.value.explanation == "conflicting options: hostname and the UTS mode"


def test_cgroupns_host_and_private(daemon, running):
    host = running("--cgroupns", "host")
    private = running("--cgroupns", "private")
    assert _namespace_in(daemon, host, "cgroup") == _own_namespace("cgroup")
    assert _namespace_in(daemon, private, "cgroup") != _own_namespace("cgroup")
    assert inspect(daemon, host)["HostConfig"]["CgroupnsMode"] == "host"


# ---- --userns ----

def test_userns_host_is_the_daemons_user_namespace(daemon, running):
    name = running("--userns", "host")
    daemons = os.readlink(f"/proc/{daemon_pid(daemon)}/ns/user")
    assert _namespace_in(daemon, name, "user") == daemons
    assert inspect(daemon, name)["HostConfig"]["UsernsMode"] == "host"
    if ROOTLESS:  # otherwise a container has a user namespace of its own
        assert _namespace_in(daemon, running(), "user") != daemons


# ---- modes Docker does not have ----

@pytest.mark.parametrize("field,message", [
    ("PidMode", "invalid PID mode: bogus"),
    ("IpcMode", "invalid IPC mode: bogus"),
    ("UTSMode", "invalid UTS mode: bogus"),
    ("CgroupnsMode", "invalid cgroup namespace mode: bogus"),
    ("UsernsMode", "invalid USER mode: bogus"),
])
def test_an_unknown_mode_is_refused(client, image, field, message):
    # docker-py checks some modes itself: the body is sent as a client that does not would send it.
    before = client.containers.list(all=True)
    with pytest.raises(docker.errors.APIError) as refused:
        client.api.create_container(image, "true", host_config={field: "bogus"})
    assert refused.value.status_code == 400
    assert refused.value.explanation == message
    assert client.containers.list(all=True) == before


def test_a_missing_donor_is_not_found(client, image):
    with pytest.raises(docker.errors.NotFound):
        client.containers.create(image, "true", pid_mode="container:no-such-donor")


def test_minictr_run_takes_the_same_flags(daemon, image):
    output = daemon.ok("run", "--rm", "--uts", "host", "--ipc", "none", "--cgroupns", "host", image,
                       "sh", "-c", "hostname; test -e /dev/shm || echo no-shm; readlink /proc/self/ns/cgroup")
    assert output.split() == [socket.gethostname(), "no-shm", _own_namespace("cgroup")]
