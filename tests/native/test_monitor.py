"""minictr-monitor as the daemon drives it (docs/internals.md, "minictr-monitor")."""

import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

from .conftest import pid_is_ours, read_frames, wait_for

DOCKER_LOG_LINE = re.compile(
    r'^\{"log":"hi\\n","stream":"stdout","time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"\}$'
)


def test_echo_reaches_attach_client_log_and_exit_file(containers):
    before = time.time_ns()
    c = containers.run(["echo", "hi"])
    assert c.started == "started\n"
    assert c.output == {1: b"hi\n", 2: b""}
    assert DOCKER_LOG_LINE.match(c.log_path.read_text().rstrip("\n"))
    assert c.exit_code == 0
    assert before < c.finished_ns < time.time_ns()
    c.wait_monitor_gone()
    assert not c.attach_path.exists()


def test_the_monitor_says_cloned_with_the_inits_pid_before_created(containers):
    # The daemon sets up the container's network from `cloned` on, while the init sets up the rest.
    c = containers.create(["true"])
    assert c.created.startswith("created ") and c.cloned_pid == c.pid
    assert os.readlink(f"/proc/{c.cloned_pid}/ns/net") != os.readlink("/proc/self/ns/net")


def test_log_keeps_streams_and_escapes_like_docker(containers):
    c = containers.run(["sh", "-c", r'printf "a\"<b>\t\n"; echo oops >&2; printf "no newline"'])
    entries = c.log_entries()
    by_stream = {s: [e["log"] for e in entries if e["stream"] == s] for s in ("stdout", "stderr")}
    assert by_stream == {"stdout": ['a"<b>\t\n', "no newline"], "stderr": ["oops\n"]}
    assert r'"a\"\u003cb\u003e\t\n"' in c.log_path.read_text()
    assert c.output[2] == b"oops\n"


def test_exit_status_is_recorded(containers):
    assert containers.run(["sh", "-c", "exit 3"]).exit_code == 3


def test_death_by_signal_is_128_plus_the_signal(containers):
    c = containers.create(["sleep", "30"])
    client = c.attach(2)
    assert c.start() == "started\n"
    wait_for(lambda: os.readlink(f"/proc/{c.pid}/exe").endswith("busybox"), what="exec")
    os.kill(c.pid, signal.SIGKILL)  # what `docker kill` does
    assert read_frames(client) == {1: b"", 2: b""}
    assert c.wait_exit()[0] == 137


def test_pid_1_ignores_its_own_sigkill_as_in_docker(containers):
    # The kernel protects a PID namespace's init from signals sent inside it;
    # `docker run busybox sh -c 'kill -9 $$'` exits 0 as well.  A child of
    # init killed the same way is reported by the shell as 128+9.
    assert containers.run(["sh", "-c", "kill -9 $$"]).exit_code == 0
    assert containers.run(["sh", "-c", "sh -c 'kill -9 $$'; exit $?"]).exit_code == 137


def test_missing_command_is_an_enoent_error_and_exit_127(containers):
    c = containers.run(["nosuchcmd"])
    assert c.started == "error 2 exec `nosuchcmd`: No such file or directory\n"
    assert c.exit_code == 127


def test_command_is_pid_1_and_proc_shows_only_the_container(containers):
    c = containers.run(["sh", "-c", "echo $$; ps -o pid,comm; exit 0"])  # no exec of ps
    lines = c.output[1].decode().splitlines()
    assert lines[0] == "1"
    assert [line.split() for line in lines[2:]] == [["1", "sh"], ["2", "ps"]]


def test_hostname_is_set(containers):
    assert containers.run(["hostname"], hostname="webapp").output[1] == b"webapp\n"


def test_writes_go_to_the_upper_dir_not_the_lower(containers):
    c = containers.run(["sh", "-c", "echo data > /newfile && echo more >> /etc/passwd"])
    assert c.exit_code == 0
    assert (c.upper / "newfile").read_text() == "data\n"
    assert (c.upper / "etc/passwd").read_text().endswith("more\n")
    assert not (containers.lower / "newfile").exists()
    assert "more" not in (containers.lower / "etc/passwd").read_text()


def test_stdin_is_forwarded_and_closed_on_half_close(containers):
    c = containers.create(["cat"], stdin=True)
    client = c.attach(1 | 2)
    assert c.start() == "started\n"
    client.sendall(b"hello through stdin\n")
    client.shutdown(socket.SHUT_WR)
    assert read_frames(client) == {1: b"hello through stdin\n", 2: b""}
    assert c.wait_exit()[0] == 0


def test_without_stdin_the_container_reads_dev_null(containers):
    assert containers.run(["cat"]).output == {1: b"", 2: b""}


def test_user_group_switch_drops_all_capabilities(containers):
    c = containers.run(["sh", "-c", "id; grep -E 'CapEff|CapBnd' /proc/self/status"],
                       uid=1000, gid=1001, groups=(10, 20))
    out = c.output[1].decode().splitlines()
    assert out[0] == "uid=1000 gid=1001 groups=10,20"
    assert out[1:] == ["CapEff:\t0000000000000000", "CapBnd:\t00000000a80425fb"]


def test_root_keeps_dockers_default_capabilities(containers):
    c = containers.run(["grep", "-E", "CapEff|CapInh", "/proc/self/status"])
    assert c.output[1] == b"CapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\n"


def test_missing_working_directory_is_created(containers):
    c = containers.run(["pwd"], cwd="/srv/app/data")
    assert c.output[1] == b"/srv/app/data\n"


def test_env_path_of_the_container_is_searched(containers, busybox_rootfs):
    c = containers.run(["hostname"], env=("PATH=/nowhere:/bin",))
    assert c.output[1] == b"box\n"
    c = containers.run(["hostname"], env=("PATH=/nowhere",))
    assert c.exit_code == 127


def test_no_fd_beyond_stdio_leaks_into_the_container(containers):
    c = containers.create(["sleep", "30"])
    assert c.start() == "started\n"
    wait_for(lambda: os.readlink(f"/proc/{c.pid}/exe").endswith("busybox"), what="exec")
    assert sorted(os.listdir(f"/proc/{c.pid}/fd")) == ["0", "1", "2"]
    os.kill(c.pid, signal.SIGKILL)
    assert c.wait_exit()[0] == 137


def test_loopback_is_up_in_a_private_network_namespace(containers):
    c = containers.run(["sh", "-c", "ip -o link; ip -o addr show lo"])
    links = [line for line in c.output[1].decode().splitlines() if "link/" in line]
    assert len(links) == 1 and "lo:" in links[0] and "UP" in links[0]
    assert "127.0.0.1/8" in c.output[1].decode()


def test_standard_dev_nodes_and_mounts(containers):
    c = containers.run(["sh", "-c", "ls /dev; grep -E ' /(proc|sys|dev/pts) ' /proc/mounts"])
    out = c.output[1].decode()
    for name in ("null", "zero", "full", "random", "urandom", "tty", "fd", "ptmx", "pts",
                 "shm", "mqueue", "stdin", "stdout", "stderr"):
        assert name in out.split()
    assert re.search(r"^proc /proc proc rw,nosuid,nodev,noexec", out, re.M)
    assert re.search(r"^sysfs /sys sysfs ro,", out, re.M)


def test_nothing_stays_mounted_on_the_host(containers):
    c = containers.create(["true"])
    host_mounts = Path("/proc/self/mountinfo").read_text
    assert str(c.dir) not in host_mounts()
    c.start()
    c.wait_exit()
    c.wait_monitor_gone()
    assert str(c.dir) not in host_mounts()


def test_bind_mounts_honour_ro_and_stay_inside_the_rootfs(containers):
    shared = containers.tmp_path / "shared"
    shared.mkdir()
    (shared / "f").write_text("from host\n")
    hostname = containers.tmp_path / "hostname-file"
    hostname.write_text("bound\n")
    unique = f"minictr-test-{os.getpid()}-{time.monotonic_ns()}"
    c = containers.run(
        ["sh", "-c", "cat /etc/hostname /data/f; echo w > /data/new; echo x > /etc/hostname"],
        binds=[(str(hostname), "/etc/hostname", "ro"), (str(shared), "/data", "rw"),
               (str(shared), f"/escape/{unique}", "ro")],
        prepare_upper=lambda upper: os.symlink("/", upper / "escape"),
    )
    assert c.output[1] == b"bound\nfrom host\n"
    assert b"Read-only file system" in c.output[2]
    assert (shared / "new").read_text() == "w\n"
    # /escape -> / was followed inside the rootfs, never to the host's /.
    assert not Path("/" + unique).exists()
    assert (c.upper / unique).is_dir()


def test_closing_the_sync_socket_before_start_kills_the_container(containers):
    c = containers.create(["sleep", "30"])
    assert pid_is_ours(c.pid, None, parent=c.monitor_pid)
    c.sync.close()
    c._sock.close()
    c.wait_monitor_gone()
    assert not pid_is_ours(c.pid, None, parent=c.monitor_pid)
    assert not c.exit_path.exists()
    assert not c.attach_path.exists()


def test_setup_failure_is_reported_and_leaves_nothing(containers):
    c = containers.create(["true"], binds=[("/nonexistent-minictr-src", "/x", "ro")])
    assert c.created == (
        "error 2 stat bind source `/nonexistent-minictr-src`: No such file or directory\n"
    )
    assert c.pid is None
    assert not c.attach_path.exists()


def test_unknown_config_key_is_einval_naming_the_key(containers):
    c = containers.create(["true"], extra=[("bogus", "x")])
    assert c.created.startswith("error 22 ") and "`bogus`" in c.created


def test_output_of_an_attached_client_and_log_agree_on_large_output(containers):
    c = containers.run(["sh", "-c", "seq 1 20000"])
    expected = "".join(f"{i}\n" for i in range(1, 20001))
    assert c.output[1].decode() == expected
    assert "".join(e["log"] for e in c.log_entries()) == expected


def test_large_stdin_through_cat_does_not_deadlock(containers):
    payload = bytes(range(256)) * 4096  # 1 MiB: far more than both pipes hold
    c = containers.create(["cat"], stdin=True)
    client = c.attach(1 | 2)
    assert c.start() == "started\n"
    sender = threading.Thread(target=lambda: (client.sendall(payload),
                                              client.shutdown(socket.SHUT_WR)))
    sender.start()
    output = read_frames(client, timeout=30)
    sender.join()
    assert output[1] == payload
    assert c.wait_exit()[0] == 0
