"""The monitor's namespace-sharing keys (pidns, ipcns, utsns, cgroupns) and the process settings
sysctl and oom_score_adj (docs/internals.md, "Config file"), as root."""

import os
import socket


def _own(kind):
    return os.readlink(f"/proc/self/ns/{kind}")


def test_each_shared_namespace_is_the_monitors(containers):
    script = "for n in pid ipc uts cgroup; do readlink /proc/self/ns/$n; done"
    shared = containers.run(["sh", "-c", script],
                            extra=[("pidns", "host"), ("ipcns", "host"), ("utsns", "host"), ("cgroupns", "host")])
    assert shared.exit_code == 0, shared.output
    assert shared.output[1].decode().split() == [_own(n) for n in ("pid", "ipc", "uts", "cgroup")]
    private = containers.run(["sh", "-c", script])
    own = [_own(n) for n in ("pid", "ipc", "uts", "cgroup")]
    assert all(a != b for a, b in zip(private.output[1].decode().split(), own))


def test_uts_host_keeps_the_hosts_name(containers):
    c = containers.run(["hostname"], hostname="webapp", extra=[("utsns", "host")])
    assert c.output[1].decode().strip() == socket.gethostname()


def test_ipc_none_has_no_dev_shm_and_ipc_host_the_hosts(containers):
    assert containers.run(["test", "-e", "/dev/shm"], extra=[("ipcns", "none")]).exit_code == 1
    marker = f"/dev/shm/minictr-native-{os.getpid()}"
    with open(marker, "w") as f:
        f.write("host\n")
    try:
        assert containers.run(["cat", marker], extra=[("ipcns", "host")]).output[1] == b"host\n"
    finally:
        os.unlink(marker)


def test_a_joined_pid_namespace_is_the_other_containers(containers):
    donor = containers.create(["sleep", "60"])
    assert donor.created.startswith("created "), donor.created
    donor.start()
    joiner = containers.run(["cat", "/proc/1/cmdline"], extra=[("pidns", f"/proc/{donor.pid}/ns/pid")])
    assert joiner.output[1].split(b"\0")[:2] == [b"sleep", b"60"]


def test_sysctls_and_oom_score_adj_are_set(containers):
    c = containers.run(["cat", "/proc/sys/kernel/shmmni", "/proc/self/oom_score_adj"],
                       extra=[("sysctl", "kernel.shmmni", "1234"), ("oom_score_adj", "300")])
    assert c.output[1].split() == [b"1234", b"300"]


def test_a_sysctl_name_must_stay_in_proc_sys(containers):
    c = containers.create(["true"], extra=[("sysctl", "../../etc/x", "1")])
    assert c.created == "error 22 config `sysctl`: bad sysctl name `../../etc/x`: Invalid argument\n"
