"""`minictr run`: a container runs its command in its own namespaces and reports how it ended."""

import json
import os
import re
import stat
import tarfile

from tests.integration.conftest import ROOTLESS


def test_output_streams_apart_and_exit_code_is_the_containers(daemon, image):
    result = daemon.cli("run", "--rm", image, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert result.returncode == 3
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


def test_exit_zero(daemon, image):
    result = daemon.cli("run", "--rm", image, "true")
    assert result.returncode == 0, result.stderr


def test_killed_by_signal_exits_128_plus_signal(daemon, image):
    # The kernel shields a namespace's init from its own `kill -9 $$`: the signal comes from outside.
    daemon.ok("create", "--name", "victim", image, "sleep", "1000")
    daemon.ok("start", "victim")
    daemon.ok("kill", "victim")
    assert daemon.ok("wait", "victim") == "137\n"
    assert daemon.client().get("/containers/victim/json")["State"]["ExitCode"] == 137
    daemon.ok("rm", "victim")


def test_command_not_found_is_127_with_one_line_and_nothing_left(daemon, image):
    result = daemon.cli("run", "--rm", image, "no-such-command")
    assert result.returncode == 127
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no-such-command" in result.stderr and "Traceback" not in result.stderr
    assert daemon.ok("ps", "-a", "-q") == ""


def test_command_is_pid_1_and_proc_shows_only_the_container(daemon, image):
    out = daemon.ok("run", "--rm", image, "sh", "-c", "echo $$; ls /proc | grep -E '^[0-9]+$'")
    pid1, *pids = out.split()
    assert pid1 == "1"
    # sh (1), ls and grep: nothing of the host.
    assert len(pids) <= 3 and "1" in pids


def test_hostname_is_the_containers(daemon, image):
    assert daemon.ok("run", "--rm", "--hostname", "box", image, "hostname") == "box\n"
    out = daemon.ok("run", "--name", "named-host", image, "sh", "-c", "hostname; cat /etc/hostname")
    host, etc_hostname = out.split()
    inspect = daemon.client().get("/containers/named-host/json")
    assert host == etc_hostname == inspect["Id"][:12]
    daemon.ok("rm", "named-host")


def test_an_empty_dockerenv_marks_the_container_as_dockers_does_and_is_not_a_change(daemon, image, tmp_path):
    # Tools (Testcontainers among them) tell that they run in a container by /.dockerenv.
    out = daemon.ok("run", "--name", "dockerenv", "--read-only", image, "sh", "-c",
                    "wc -c < /.dockerenv; touch /x 2>/dev/null || echo read-only")
    try:
        assert out.split() == ["0", "read-only"]
        assert daemon.ok("diff", "dockerenv") == ""
        daemon.ok("commit", "dockerenv", "dockerenv-img")
        try:
            daemon.ok("save", "-o", str(tmp_path / "saved.tar"), "dockerenv-img")
        finally:
            daemon.cli("rmi", "dockerenv-img")
    finally:
        daemon.cli("rm", "-f", "dockerenv")
    with tarfile.open(tmp_path / "saved.tar") as saved:
        layers = json.load(saved.extractfile("manifest.json"))[0]["Layers"]
        names = [name for layer in layers for name in tarfile.open(fileobj=saved.extractfile(layer)).getnames()]
    assert names and not [n for n in names if n.lstrip("./") == ".dockerenv"], names


def test_user_is_root_inside_or_the_requested_one(daemon, image):
    assert daemon.ok("run", "--rm", image, "id", "-u") == "0\n"
    assert daemon.ok("run", "--rm", "-u", "1000:1001", image, "sh", "-c", "id -u; id -g").split() == ["1000", "1001"]
    assert daemon.ok("run", "--rm", "-u", "nobody", image, "id", "-un") == "nobody\n"
    bad = daemon.cli("run", "--rm", "-u", "no-such-user", image, "true")
    assert bad.returncode != 0 and "no-such-user" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_env_and_workdir(daemon, image):
    out = daemon.ok("run", "--rm", "-e", "FOO=bar", "-w", "/tmp", image, "sh", "-c", 'echo "$FOO"; pwd; echo "$PATH"')
    foo, cwd, path = out.splitlines()
    assert (foo, cwd) == ("bar", "/tmp")
    assert "/bin" in path.split(":")


def test_workdir_that_does_not_exist_is_created(daemon, image):
    assert daemon.ok("run", "--rm", "-w", "/new/dir", image, "pwd") == "/new/dir\n"


def test_stdin_passes_through_with_i(daemon, image):
    result = daemon.cli("run", "--rm", "-i", image, "cat", input="hello\nworld\n")
    assert result.returncode == 0
    assert result.stdout == "hello\nworld\n"


def test_stdin_is_empty_without_i(daemon, image):
    result = daemon.cli("run", "--rm", image, "cat", input="ignored\n")
    assert result.returncode == 0 and result.stdout == ""


def test_writes_never_reach_the_image(daemon, image):
    daemon.ok("run", "--name", "writer", image, "sh", "-c", "echo changed > /etc/motd; rm /bin/ls")
    out = daemon.ok("run", "--rm", image, "sh", "-c", "cat /etc/motd 2>/dev/null || echo absent; ls / >/dev/null && echo ls-ok")
    assert out == "absent\nls-ok\n"
    upper = daemon.client().get("/containers/writer/json")["GraphDriver"]["Data"]["UpperDir"]
    assert open(os.path.join(upper, "etc", "motd")).read() == "changed\n"
    assert _is_whiteout(upper, "bin", "ls")
    daemon.ok("rm", "writer")


def _is_whiteout(upper, directory, name):
    """overlay2 marks a deleted file with a 0/0 character device; fuse-overlayfs (a data root on
    overlayfs, as in a CI container) with a `.wh.NAME` file where it cannot make that device."""
    path = os.path.join(upper, directory, name)
    if os.path.lexists(path):
        st = os.stat(path, follow_symlinks=False)
        return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    return os.path.isfile(os.path.join(upper, directory, ".wh." + name))


def test_files_created_belong_to_the_invoking_user_or_its_subordinate_ids(daemon, image):
    daemon.ok("run", "--name", "owner", image, "sh", "-c", "touch /root-file; touch /u1000; chown 1000:1000 /u1000")
    upper = daemon.client().get("/containers/owner/json")["GraphDriver"]["Data"]["UpperDir"]
    root_owned = os.stat(os.path.join(upper, "root-file"))
    other = os.stat(os.path.join(upper, "u1000"))
    if ROOTLESS:
        start = _subordinate_start(os.getuid())
        assert root_owned.st_uid == os.getuid()
        assert other.st_uid == start + 999
    else:
        assert root_owned.st_uid == 0
        assert other.st_uid == 1000
    daemon.ok("rm", "owner")


def _subordinate_start(uid):
    import pwd

    name = pwd.getpwuid(uid).pw_name
    for line in open("/etc/subuid"):
        user, start, _count = line.strip().split(":")
        if user in (name, str(uid)):
            return int(start)
    raise AssertionError(f"no subordinate ids for {name}")


def test_rm_flag_removes_the_container_and_its_files(daemon, image):
    daemon.ok("run", "--rm", "--name", "ephemeral", image, "true")
    assert daemon.ok("ps", "-a", "-q") == ""
    assert not os.listdir(daemon.data_root / "containers")


def test_ps_inspect_and_rm(daemon, image):
    assert daemon.cli("run", "--name", "listed", image, "sh", "-c", "exit 5").returncode == 5
    assert "listed" not in daemon.ok("ps")
    listing = daemon.ok("ps", "-a")
    assert re.search(r"listed", listing) and "Exited (5)" in listing
    inspect = daemon.client().get("/containers/listed/json")
    assert inspect["State"]["Status"] == "exited"
    assert inspect["State"]["ExitCode"] == 5
    assert inspect["Name"] == "/listed"
    assert inspect["Config"]["Cmd"] == ["sh", "-c", "exit 5"]
    assert daemon.ok("rm", "listed") == "listed\n"
    assert daemon.ok("ps", "-a", "-q") == ""


def test_rm_force_kills_a_running_container(daemon, image):
    container_id = daemon.ok("create", "--name", "sleeper", image, "sleep", "1000").strip()
    daemon.ok("start", "sleeper")
    pid = daemon.client().get(f"/containers/{container_id}/json")["State"]["Pid"]
    assert pid > 0 and os.path.exists(f"/proc/{pid}")
    refused = daemon.cli("rm", "sleeper")
    assert refused.returncode == 1 and "running" in refused.stderr
    daemon.ok("rm", "-f", "sleeper")
    assert not os.path.exists(f"/proc/{pid}")
    assert daemon.ok("ps", "-a", "-q") == ""
