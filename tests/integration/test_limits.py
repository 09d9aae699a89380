"""Resource limits as a `docker run` user sees them: --memory, --memory-swap, --cpus, --cpu-shares,
--cpuset-cpus, --pids-limit (cgroups: as root on v1 or v2, rootless where systemd delegates a v2
subtree), --ulimit and --shm-size (root and rootless), OOM kills, `update`, `stats` (ours and the
docker CLI's), and what happens where a limit cannot be enforced (rootless on these hybrid machines:
cgroup v1 is never delegated). .ci/lane-vm runs this file on pure cgroup v2 with systemd."""

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from .conftest import CGROUP_LIMITS, CGROUP_V2, ROOTLESS, Daemon, container_group, enforces, inspect, wait_until

MiB = 1024 * 1024


# A skip counts as a failure in CI (MINICTR_REQUIRE_ALL=1): a test that cannot apply to the mode the suite
# runs in (cgroup limits need root, or a delegated cgroup v2 subtree; the refusal needs a mode that lacks
# them) is not defined at all in that mode.
def with_limits(test):
    return test if CGROUP_LIMITS else None


def without_limits(test):
    return None if CGROUP_LIMITS else test


def v1_root_only(test):
    return None if ROOTLESS or CGROUP_V2 else test


def _name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def running(daemon, image):
    """Start a detached container with extra run options; removed afterwards."""
    made = []

    def start(*options, command=("sleep", "300")):
        name = _name("lim")
        made.append(name)
        daemon.ok("run", "-d", "--name", name, *options, image, *command)
        return name

    yield start
    for name in made:
        daemon.cli("rm", "-f", name)


def _cgroup_file(daemon, name, controller, filename):
    """A file of the running container's group for CONTROLLER (cgroup v1), or of its one group (v2)."""
    return container_group(inspect(daemon, name)["State"]["Pid"], controller) / filename


def _limits(daemon, name):
    """The limits in the running container's groups, in v1's terms and units whatever the machine has:
    memory, memsw (memory + swap), cfs_quota, cfs_period, pids, cpuset, and shares (v1) or weight (v2)."""
    def read(controller, filename):  # None: no such file (a controller the group does not have)
        path = _cgroup_file(daemon, name, controller, filename)
        return path.read_text().strip() if path.exists() else None

    def unlimited(value):
        return "-1" if value == "max" else value

    if not CGROUP_V2:
        return {"memory": read("memory", "memory.limit_in_bytes"), "memsw": read("memory", "memory.memsw.limit_in_bytes"),
                "cfs_quota": read("cpu", "cpu.cfs_quota_us"), "cfs_period": read("cpu", "cpu.cfs_period_us"),
                "shares": read("cpu", "cpu.shares"), "pids": unlimited(read("pids", "pids.max")),
                "cpuset": read("cpuset", "cpuset.cpus")}
    memory, swap = unlimited(read("", "memory.max")), unlimited(read("", "memory.swap.max"))
    cpu_max = read("", "cpu.max")
    quota, period = cpu_max.split() if cpu_max else (None, None)
    return {"memory": memory, "memsw": str(int(memory) + int(swap)) if memory and swap and "-1" not in (memory, swap) else "-1",
            "cfs_quota": unlimited(quota), "cfs_period": period, "weight": read("", "cpu.weight"),
            "pids": unlimited(read("", "pids.max")), "cpuset": read("", "cpuset.cpus")}


def _sh(daemon, name, script):
    return daemon.ok("exec", name, "sh", "-c", script).strip()


# ---- cgroup limits (root; rootless on delegated cgroup v2) --------------------------------------

@with_limits
def test_memory_and_swap_limits_are_in_the_containers_cgroup(daemon, running):
    name = running("--memory", "32m", "--memory-swap", "64m")
    limits = _limits(daemon, name)
    assert (limits["memory"], limits["memsw"]) == (str(32 * MiB), str(64 * MiB))
    host_config = inspect(daemon, name)["HostConfig"]
    assert (host_config["Memory"], host_config["MemorySwap"]) == (32 * MiB, 64 * MiB)


@with_limits
def test_memory_alone_gets_dockers_default_swap_of_twice_the_memory(daemon, running):
    name = running("-m", "20m")
    assert inspect(daemon, name)["HostConfig"]["MemorySwap"] == 40 * MiB
    assert _limits(daemon, name)["memsw"] == str(40 * MiB)


@with_limits
def test_cpu_limits_are_in_the_containers_cgroup(daemon, running):
    # systemd delegates no cpuset to a user (refused then: see the test below).
    cpuset = ("--cpuset-cpus", "0") if enforces("cpuset") else ()
    name = running("--cpus", "0.5", "--cpu-shares", "512", *cpuset)
    limits = _limits(daemon, name)
    assert (limits["cfs_period"], limits["cfs_quota"]) == ("100000", "50000")
    # v2 has cpu.weight instead of shares: runc's conversion of 512.
    assert limits.get("weight", limits.get("shares")) == ("20" if CGROUP_V2 else "512")
    assert limits["cpuset"] == ("0" if cpuset else limits["cpuset"])
    assert inspect(daemon, name)["HostConfig"]["NanoCpus"] == 500_000_000


@with_limits
def test_the_container_sees_its_own_limits_under_sys_fs_cgroup_read_only(daemon, running):
    name = running("--memory", "48m", "--pids-limit", "33", "--cpus", "0.5")
    # v1: a directory per hierarchy (cpu,cpuacct-style co-mounts get a symlink per controller, as on the
    # host); v2: the one group's files at the top.
    memory, pids, cpu = (("memory.max", "pids.max", "cpu.max") if CGROUP_V2 else
                         ("memory/memory.limit_in_bytes", "pids/pids.max", "cpu/cpu.cfs_quota_us"))
    assert _sh(daemon, name, f"cat /sys/fs/cgroup/{memory}") == str(48 * MiB)
    assert _sh(daemon, name, f"cat /sys/fs/cgroup/{pids}") == "33"
    assert _sh(daemon, name, f"cat /sys/fs/cgroup/{cpu}") == ("50000 100000" if CGROUP_V2 else "50000")
    # Its own group is the root of what it sees: its init is there, under its own pid.
    procs = "cgroup.procs" if CGROUP_V2 else "pids/cgroup.procs"
    assert "1" in _sh(daemon, name, f"cat /sys/fs/cgroup/{procs}").split()
    result = daemon.cli("exec", name, "sh", "-c", f"echo 1000000000 > /sys/fs/cgroup/{memory}")
    assert result.returncode != 0 and "Read-only file system" in result.stderr
    assert _limits(daemon, name)["memory"] == str(48 * MiB)


@with_limits
def test_groups_left_behind_by_an_ended_container_go_when_the_daemon_starts(daemon, image):
    # A daemon stopped while it was still removing an ended container's groups leaves them: the
    # next one removes them (empty groups of a container that is not running).
    name = _name("left")
    daemon.ok("run", "-d", "--name", name, image, "sleep", "300")
    pid = inspect(daemon, name)["State"]["Pid"]
    left = [container_group(pid, controller) for controller in (("",) if CGROUP_V2 else ("memory", "pids", "freezer"))]
    daemon.ok("stop", "-t", "0", name)
    daemon.stop()
    try:
        for group in left:
            group.mkdir()
        daemon.start()
        assert [group for group in left if group.exists()] == []
        assert inspect(daemon, name)["State"]["Status"] == "exited"
    finally:
        for group in left:
            if group.exists():
                group.rmdir()
        daemon.cli("rm", "-f", name)


@with_limits
def test_a_memory_hog_is_oom_killed_with_137_and_the_daemon_lives_on(daemon, image):
    name = _name("hog")
    # A shell variable doubling until the kernel stops it.
    result = daemon.cli("run", "--name", name, "-m", "8m", "--memory-swap", "8m", image,
                        "sh", "-c", "x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done", timeout=120)
    try:
        assert result.returncode == 137, result.stderr
        state = inspect(daemon, name)["State"]
        assert state["OOMKilled"] is True and state["ExitCode"] == 137
        assert daemon.ok("version")
    finally:
        daemon.cli("rm", "-f", name)


@with_limits
def test_a_container_that_was_not_oom_killed_says_so(daemon, image):
    name = _name("nohog")
    daemon.cli("run", "--name", name, "-m", "16m", image, "sh", "-c", "exit 3")
    try:
        assert inspect(daemon, name)["State"]["OOMKilled"] is False
    finally:
        daemon.cli("rm", "-f", name)


@with_limits
def test_a_fork_bomb_stays_within_its_pids_limit_and_the_host_keeps_answering(daemon, running):
    name = running("--pids-limit", "20")
    pids_max = _cgroup_file(daemon, name, "pids", "pids.max")
    assert pids_max.read_text().strip() == "20"
    # The bomb runs in an exec, not as PID 1: a shell that cannot fork may exit, and PID 1's exit would
    # end the container (and remove its groups) before the limit is read. The exec's shell keeps
    # re-seeding the bomb: one whose forks all fail at once can die out before reaching the limit.
    daemon.ok("exec", "-d", name, "sh", "-c", "b() { b | b & }; while :; do b; sleep 0.2; done")
    current = pids_max.with_name("pids.current")
    wait_until(lambda: int(current.read_text()) >= 15, what="the bomb to grow")
    time.sleep(1)
    assert int(current.read_text()) <= 20
    assert daemon.client().request("GET", "/_ping").read() == b"OK"
    assert subprocess.run(["true"], timeout=10).returncode == 0
    daemon.ok("rm", "-f", name)


def _warmer_switches(daemon):
    """The context switches of the daemon's thread that keeps cgroup moves warm (the one thread of the
    daemon's process in a minictr/ group of its own: cgroups.MigrationWarmer)."""
    pid = daemon.process.pid
    ours = {tid for tasks in Path("/sys/fs/cgroup").glob("*/minictr/tasks") for tid in tasks.read_text().split()}
    warmers = [tid for tid in os.listdir(f"/proc/{pid}/task") if tid in ours]
    assert len(warmers) == 1, warmers
    status = Path(f"/proc/{pid}/task/{warmers[0]}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("voluntary_ctxt_switches")))


@v1_root_only
def test_cgroup_moves_are_kept_warm_while_containers_start_and_never_when_idle(daemon, image, running):
    # cgroup v1 moves wait for an RCU grace period unless another came just before; the daemon keeps one
    # coming while containers are created, started or exec'd into, then stops: an idle daemon does no
    # periodic work.
    name = running()
    created = daemon.ok("create", image, "true").strip()
    try:
        before = _warmer_switches(daemon)
        time.sleep(0.2)
        assert _warmer_switches(daemon) - before >= 10  # a move every few ms
        time.sleep(2.5)
        idle = _warmer_switches(daemon)
        time.sleep(0.5)
        assert _warmer_switches(daemon) == idle
        daemon.ok("exec", name, "true")
        assert _warmer_switches(daemon) > idle
    finally:
        daemon.cli("rm", "-f", created)


@with_limits
def test_update_writes_the_limits_of_a_running_container_and_keeps_them(daemon, running):
    name = running("-m", "32m", "--pids-limit", "50")
    out = daemon.ok("update", "--memory", "48m", "--memory-swap", "96m", "--pids-limit", "30", "--cpus", "1",
                    "--restart", "on-failure:2", name)
    assert out.strip() == name
    limits = _limits(daemon, name)
    assert (limits["memory"], limits["memsw"], limits["pids"], limits["cfs_quota"]) == (
        str(48 * MiB), str(96 * MiB), "30", "100000")
    host_config = inspect(daemon, name)["HostConfig"]
    assert (host_config["Memory"], host_config["PidsLimit"], host_config["NanoCpus"]) == (48 * MiB, 30, 10**9)
    assert host_config["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    # And they hold at the next start.
    daemon.ok("restart", "-t", "0", name)
    assert _limits(daemon, name)["memory"] == str(48 * MiB)


@with_limits
def test_update_of_a_stopped_container_only_persists(daemon, image):
    name = _name("upd")
    daemon.ok("create", "--name", name, image, "sleep", "300")
    try:
        daemon.ok("update", "--pids-limit", "7", name)
        assert inspect(daemon, name)["HostConfig"]["PidsLimit"] == 7
        daemon.ok("start", name)
        assert _cgroup_file(daemon, name, "pids", "pids.max").read_text().strip() == "7"
    finally:
        daemon.cli("rm", "-f", name)


@with_limits
def test_update_api_answers_as_docker_does(daemon, running):
    name = running()
    response = daemon.client().post(f"/containers/{name}/update", None, {"PidsLimit": 12})
    assert response.json() == {"Warnings": []}
    bad = daemon.cli("update", "--memory", "1m", name)
    assert bad.returncode != 0 and "Minimum memory limit allowed is 6MB" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def cpuset_not_delegated(test):
    return test if CGROUP_LIMITS and not enforces("cpuset") else None


@cpuset_not_delegated
def test_a_controller_systemd_does_not_delegate_is_refused_by_name(daemon, image):
    # Rootless on cgroup v2: user@.service delegates cpu, memory and pids by default, not cpuset.
    before = set(os.listdir(daemon.data_root / "containers"))
    result = daemon.cli("run", "-d", "--memory", "64m", "--cpuset-cpus", "0", image, "true")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot enforce --cpuset-cpus:" in lines[0] and "--memory" not in lines[0]
    assert "cpuset controller is not delegated" in lines[0] and "Delegate=yes" in lines[0]
    assert set(os.listdir(daemon.data_root / "containers")) == before


# ---- bad input: Docker's words, nothing left behind --------------------------------------------

@pytest.mark.parametrize("options, message", [
    (("-m", "1m"), "Minimum memory limit allowed is 6MB"),
    (("-m", "10m", "--memory-swap", "8m"), "Minimum memoryswap limit should be larger than memory limit"),
    (("--cpuset-cpus", "0-4096"), "Requested CPUs are not available - requested 0-4096, available: "),
    (("--cpuset-cpus", "x"), "Invalid value x for cpuset cpus"),
    (("--cpus", "4096"), "Range of CPUs is from 0.01 to"),
    (("--ulimit", "nofile=20:10"), "ulimit soft limit must be less than or equal to hard limit: 20 > 10"),
    (("--ulimit", "bogus=1"), "invalid ulimit type: bogus"),
    (("-m", "lots"), "invalid size: 'lots'"),
])
def test_wrong_limits_are_refused_in_dockers_words_and_leave_nothing(daemon, image, options, message):
    before = set(os.listdir(daemon.data_root / "containers"))
    result = daemon.cli("run", "-d", *options, image, "true")
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert set(os.listdir(daemon.data_root / "containers")) == before


# ---- ulimits and /dev/shm (root and rootless) --------------------------------------------------

def test_ulimit_is_set_for_the_init_and_for_exec(daemon, running, image):
    name = running("--ulimit", "nofile=256:512", "--ulimit", "nproc=100")
    assert _sh(daemon, name, "ulimit -n") == "256"
    assert _sh(daemon, name, "ulimit -Hn") == "512"
    assert _sh(daemon, name, "ulimit -u") == "100"
    assert _sh(daemon, name, "cat /proc/1/limits | grep 'open files'").split()[3:5] == ["256", "512"]
    assert inspect(daemon, name)["HostConfig"]["Ulimits"] == [
        {"Name": "nofile", "Soft": 256, "Hard": 512}, {"Name": "nproc", "Soft": 100, "Hard": 100}]


def test_shm_size_sizes_dev_shm_and_defaults_to_64m(daemon, running):
    name = running("--shm-size", "128m")
    assert _sh(daemon, name, "df -k /dev/shm | tail -1").split()[1] == str(128 * 1024)
    other = running()
    assert _sh(daemon, other, "df -k /dev/shm | tail -1").split()[1] == str(64 * 1024)
    assert inspect(daemon, name)["HostConfig"]["ShmSize"] == 128 * MiB


# ---- stats ------------------------------------------------------------------------------------

def test_stats_api_gives_dockers_json_with_sane_values(daemon, running):
    options = ("-m", "64m") if CGROUP_LIMITS else ()
    name = running(*options)
    sample = daemon.client().get(f"/containers/{name}/stats", {"stream": 0})
    assert sample["name"] == "/" + name and sample["id"] == inspect(daemon, name)["Id"]
    assert sample["memory_stats"]["usage"] > 0
    assert sample["pids_stats"]["current"] >= 1
    assert sample["cpu_stats"]["online_cpus"] >= 1 and sample["cpu_stats"]["system_cpu_usage"] > 0
    assert sample["precpu_stats"]["cpu_usage"]["total_usage"] <= sample["cpu_stats"]["cpu_usage"]["total_usage"]
    assert "lo" in sample["networks"]
    if CGROUP_LIMITS:
        assert sample["memory_stats"]["limit"] == 64 * MiB


def test_stats_no_stream_prints_dockers_table(daemon, running):
    name = running()
    out = daemon.ok("stats", "--no-stream", name).splitlines()
    assert out[0].split("   ")[0] == "CONTAINER ID"
    for title in ("NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"):
        assert title in out[0]
    row = out[1]
    assert row.startswith(inspect(daemon, name)["Id"][:12]) and name in row
    assert int(row.split()[-1]) >= 1
    formatted = daemon.ok("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", name).split()
    assert formatted[0] == name and int(formatted[1]) >= 1


def test_the_docker_cli_renders_our_stats(daemon, running):
    docker = shutil.which("docker")
    if docker is None:
        pytest.fail("the docker CLI is not on the PATH")
    name = running()
    result = subprocess.run([docker, "-H", daemon.host, "stats", "--no-stream", name], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert "MEM USAGE / LIMIT" in header and name in row
    assert int(row.split()[-1]) >= 1  # PIDS


# ---- where a limit cannot be enforced (rootless here) -----------------------------------------

@without_limits
def test_a_limit_the_machine_cannot_enforce_is_refused_in_one_line(daemon, image):
    before = set(os.listdir(daemon.data_root / "containers"))
    result = daemon.cli("run", "-d", "--memory", "64m", "--pids-limit", "10", image, "true")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--memory, --pids-limit" in lines[0] and "Delegate=yes" in lines[0]
    assert "--unavailable-limits=warn" in lines[0]
    assert set(os.listdir(daemon.data_root / "containers")) == before


@without_limits
def test_with_unavailable_limits_warn_the_container_runs_and_each_ignored_limit_is_named(image, busybox_tar, tmp_path,
                                                                                        monkeypatch):
    monkeypatch.setenv("MINICTR_UNAVAILABLE_LIMITS", "warn")
    os.chmod(tmp_path, 0o755)
    warned = Daemon(tmp_path)
    warned.start()
    try:
        warned.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), image)
        result = warned.cli("run", "--rm", "-m", "64m", "--cpus", "1", image, "echo", "ran")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "ran"
        warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING: ")]
        assert len(warnings) == 2 and "--memory" in warnings[0] and "--cpus" in warnings[1]
        created = warned.client().post("/containers/create", None,
                                       {"Image": image, "Cmd": ["true"], "HostConfig": {"PidsLimit": 5}}).json()
        assert len(created["Warnings"]) == 1 and "--pids-limit" in created["Warnings"][0]
        warned.ok("rm", created["Id"])
    finally:
        warned.stop()
