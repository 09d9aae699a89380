"""The container process's settings of issue 22, as the docker CLI and docker-py use them: --group-add,
--oom-score-adj, --sysctl (namespaced keys only, refused in runc's words otherwise), --memory-swappiness
and --oom-kill-disable (cgroup v1; discarded with Docker's warnings on v2), and --storage-opt refused
with its reason. Root and rootless."""

import uuid

import docker
import docker.errors
import pytest

from .conftest import CGROUP_LIMITS, CGROUP_V2, ROOTLESS, CgroupV2Daemon, container_group, daemon_pid, inspect
from .dockercli import run_error
from .test_docker_cli import docker as docker_cli


# A skip counts as a failure in CI (MINICTR_REQUIRE_ALL=1): a test that cannot apply to the mode the suite
# runs in is not defined at all in that mode.
def when(condition):
    return lambda test: test if condition else None


def _name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ok(daemon, *args):
    result = docker_cli(daemon, *args)
    assert result.returncode == 0, f"docker {' '.join(args)} ({result.returncode}): {result.stderr}"
    return result


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
        name = _name("proc")
        made.append(name)
        ok(daemon, "run", "-d", "--name", name, *options, image, "sleep", "300")
        return name

    yield start
    for name in made:
        docker_cli(daemon, "rm", "-f", name)


def _names(daemon):
    return set(docker_cli(daemon, "ps", "-a", "--format", "{{.Names}}").stdout.split())


# ---- --group-add ----

def test_group_add_gives_the_init_and_each_exec_the_groups(daemon, running):
    name = running("--group-add", "nobody", "--group-add", "4242")
    assert ok(daemon, "exec", name, "id", "-G").stdout.split() == ["0", "4242", "65534"]
    # The init too: its supplementary groups as the kernel has them.
    groups = ok(daemon, "exec", name, "sh", "-c", "grep ^Groups: /proc/1/status").stdout.split()[1:]
    assert groups == ["4242", "65534"]
    assert inspect(daemon, name)["HostConfig"]["GroupAdd"] == ["nobody", "4242"]


def test_group_add_of_a_name_the_image_lacks_fails_in_libcontainers_words(daemon, image):
    name = _name("proc")
    result = docker_cli(daemon, "run", "--name", name, "--group-add", "nosuchgroup", image, "true")
    try:
        assert result.returncode != 0
        assert "Unable to find group nosuchgroup: no matching entries in group file" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        docker_cli(daemon, "rm", "-f", name)


# ---- --oom-score-adj ----

def test_oom_score_adj_is_the_init_and_execs(daemon, running):
    name = running("--oom-score-adj", "500")
    assert ok(daemon, "exec", name, "cat", "/proc/1/oom_score_adj", "/proc/self/oom_score_adj").stdout.split() \
        == ["500", "500"]
    assert inspect(daemon, name)["HostConfig"]["OomScoreAdj"] == 500


def _can_lower_oom_score_adj():
    """As the daemon (root, or rootless: never): CAP_SYS_RESOURCE of the host. Some sandboxes drop it."""
    if ROOTLESS:
        return False
    effective = next(line for line in open("/proc/self/status") if line.startswith("CapEff:")).split()[1]
    return bool(int(effective, 16) >> 24 & 1)


def test_a_negative_oom_score_adj_needs_cap_sys_resource(daemon, image, running):
    if _can_lower_oom_score_adj():
        name = running("--oom-score-adj", "-500")
        assert ok(daemon, "exec", name, "cat", "/proc/1/oom_score_adj").stdout == "-500\n"
        return
    before = _names(daemon)
    result = docker_cli(daemon, "run", "--rm", "--oom-score-adj", "-500", image, "true")
    assert result.returncode == 125
    own = int(open(f"/proc/{daemon_pid(daemon)}/oom_score_adj").read())  # 200 under a user's systemd
    assert result.stderr.splitlines()[0] == run_error(
        f"--oom-score-adj -500 is below the daemon's own {own}: lowering it needs CAP_SYS_RESOURCE of the host, "
        "which this daemon does not have")
    assert _names(daemon) == before


def test_oom_score_adj_out_of_range_is_refused_in_dockers_words(client, image):
    with pytest.raises(docker.errors.APIError) as refused:
        client.containers.create(image, "true", oom_score_adj=1001)
    assert refused.value.status_code == 400
    assert refused.value.explanation == "Invalid value 1001, range for oom score adj is [-1000, 1000]"


# ---- --sysctl ----

def test_namespaced_sysctls_are_set_in_the_containers_namespaces(daemon, image):
    host_value = open("/proc/sys/kernel/shmmax").read()
    result = ok(daemon, "run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=1048576",
                "--sysctl", "fs.mqueue.msg_max=20", image,
                "cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmax", "/proc/sys/fs/mqueue/msg_max")
    assert result.stdout.split() == ["1", "1048576", "20"]
    assert open("/proc/sys/kernel/shmmax").read() == host_value  # the host's own is untouched


def test_docker_py_sysctls_and_inspect(client, image):
    name = _name("proc")
    output = client.containers.run(image, ["cat", "/proc/sys/net/ipv4/tcp_syncookies"], name=name,
                                   sysctls={"net.ipv4.tcp_syncookies": "0"})
    try:
        assert output == b"0\n"
        assert client.api.inspect_container(name)["HostConfig"]["Sysctls"] == {"net.ipv4.tcp_syncookies": "0"}
    finally:
        client.containers.get(name).remove()


@pytest.mark.parametrize("sysctls,network,message", [
    ({"kernel.core_pattern": "x"}, None, 'sysctl "kernel.core_pattern" is not in a separate kernel namespace'),
    ({"vm.swappiness": "1"}, None, 'sysctl "vm.swappiness" is not in a separate kernel namespace'),
    ({"net.ipv4.ip_forward": "1"}, "host", 'sysctl "net.ipv4.ip_forward" not allowed in host network namespace'),
    ({"kernel.hostname": "x"}, None,
     'sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field'),
])
def test_sysctls_outside_the_containers_namespaces_are_refused_in_runcs_words(client, image, sysctls, network, message):
    before = {c.id for c in client.containers.list(all=True)}
    with pytest.raises(docker.errors.APIError) as refused:
        client.containers.create(image, "true", sysctls=sysctls, network_mode=network)
    assert refused.value.status_code == 400
    assert refused.value.explanation == message
    assert {c.id for c in client.containers.list(all=True)} == before


def test_ipc_sysctls_in_another_containers_ipc_namespace(client, image):
    donor = client.containers.run(image, ["sleep", "300"], detach=True, name=_name("proc"), ipc_mode="shareable")
    try:
        if ROOTLESS:
            with pytest.raises(docker.errors.APIError) as refused:
                client.containers.create(image, "true", ipc_mode=f"container:{donor.name}",
                                         sysctls={"kernel.shmmni": "1234"})
            assert refused.value.explanation == ("rootless: IPC sysctls cannot be set in another container's IPC "
                                                 "namespace (it belongs to that container's user namespace)")
            return
        # As runc does: the value is written into the namespace the container joins, the donor's.
        output = client.containers.run(image, ["cat", "/proc/sys/kernel/shmmni"], remove=True,
                                       ipc_mode=f"container:{donor.name}", sysctls={"kernel.shmmni": "1234"})
        assert output == b"1234\n"
        assert donor.exec_run(["cat", "/proc/sys/kernel/shmmni"]).output == b"1234\n"
    finally:
        donor.remove(force=True)


def test_the_docker_cli_refuses_a_host_sysctl_itself(daemon, image):
    result = docker_cli(daemon, "run", "--rm", "--sysctl", "kernel.core_pattern=x", image, "true")
    assert result.returncode == 125
    assert "kernel.core_pattern" in result.stderr and "Traceback" not in result.stderr


# ---- --memory-swappiness, --oom-kill-disable ----

@when(CGROUP_LIMITS and not CGROUP_V2)
def test_memory_swappiness_and_oom_kill_disable_on_cgroup_v1(daemon, running):
    name = running("--memory", "64m", "--memory-swappiness", "10", "--oom-kill-disable")
    group = container_group(inspect(daemon, name)["State"]["Pid"], "memory")
    assert (group / "memory.swappiness").read_text().strip() == "10"
    assert "oom_kill_disable 1" in (group / "memory.oom_control").read_text()
    host_config = inspect(daemon, name)["HostConfig"]
    assert host_config["MemorySwappiness"] == 10 and host_config["OomKillDisable"] is True


@when(CGROUP_LIMITS or CGROUP_V2)  # on v2 discarded with a warning, whatever is delegated
def test_oom_kill_disable_without_a_memory_limit_warns_as_docker(client, image):
    container = client.api.create_container(image, "true", host_config=client.api.create_host_config(
        oom_kill_disable=True))
    try:
        if CGROUP_V2:
            assert container["Warnings"] == ["Your kernel does not support OomKillDisable. OomKillDisable discarded."]
        else:
            assert container["Warnings"] == ["OOM killer is disabled for the container, but no memory limit is set, "
                                             "this can result in the system running out of resources."]
    finally:
        client.api.remove_container(container["Id"])


@when(not ROOTLESS and not CGROUP_V2)  # a cgroup v2 daemon beside the v1 one
def test_cgroup_v2_discards_them_with_dockers_warnings(busybox_tar, tmp_path_factory):
    top = tmp_path_factory.mktemp("v2-swappiness")
    top.chmod(0o755)
    v2 = CgroupV2Daemon(top)
    v2.start()
    try:
        v2.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), "busybox-local")
        result = docker_cli(v2, "create", "--name", "v2", "--memory-swappiness", "10", "busybox-local", "true")
        assert result.returncode == 0, result.stderr
        assert ("WARNING: Your kernel does not support memory swappiness capabilities or the cgroup is not "
                "mounted. Memory swappiness discarded.") in result.stderr
        assert inspect(v2, "v2")["HostConfig"]["MemorySwappiness"] is None
    finally:
        v2.teardown()


@when(not CGROUP_LIMITS and not CGROUP_V2)  # no cgroup for the container: rootless on v1
def test_without_a_memory_cgroup_they_are_refused_in_one_line(daemon, image):
    before = _names(daemon)
    for flag in (("--memory-swappiness", "10"), ("--oom-kill-disable",)):
        result = docker_cli(daemon, "run", "--rm", *flag, image, "true")
        assert result.returncode == 125
        # The CLI 20.10 warns itself first about --oom-kill-disable without --memory.
        line = next(line for line in result.stderr.splitlines() if not line.startswith("WARNING:"))
        assert line.startswith(run_error(f"cannot enforce {flag[0]}: rootless containers get no cgroup").rstrip("."))
        assert "Traceback" not in result.stderr
    assert _names(daemon) == before


# ---- --storage-opt ----

def test_storage_opt_size_is_refused_with_its_reason(daemon, image):
    before = _names(daemon)
    result = docker_cli(daemon, "run", "--rm", "--storage-opt", "size=1G", image, "true")
    assert result.returncode == 125
    assert result.stderr.splitlines()[0] == run_error(
        "minictr does not support --storage-opt (HostConfig.StorageOpt): minictr's storage drivers "
        "(overlay, fuse-overlayfs, vfs) cannot limit a container's size")
    assert _names(daemon) == before


def test_minictr_run_takes_the_same_flags(daemon, image):
    output = daemon.ok("run", "--rm", "--group-add", "4242", "--oom-score-adj", "200", "--sysctl",
                       "kernel.shmmni=4321", image, "sh", "-c",
                       "id -G; cat /proc/self/oom_score_adj /proc/sys/kernel/shmmni")
    assert output.split() == ["0", "4242", "200", "4321"]
