"""cp, diff, export, top, port: a container's files and processes, seen from outside it.

Paths inside a container resolve inside it: its symlinks (relative, absolute, `..`) never
lead to the host's files, whether it runs (/proc/PID/root) or not (its overlay, mounted in
the daemon's own mount namespace only for the operation, and never left mounted).
"""

import io
import json
import os
import shutil
import subprocess
import tarfile
import uuid

import pytest

from tests.integration.dockercli import PATH as DOCKER_PATH
from .conftest import daemon_pid, mounts_of

MARKER = b"the container's own /etc\n"


def _add(tar, name, data=None, kind=tarfile.REGTYPE, link="", mode=0o644):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else mode
    info.linkname = link
    if data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


@pytest.fixture(scope="module")
def planted(daemon, busybox_tar, tmp_path_factory):
    """busybox plus symlinks that would lead to the host's /etc if followed outside the container."""
    path = tmp_path_factory.mktemp("planted") / "planted.tar"
    with tarfile.open(busybox_tar) as src, tarfile.open(path, "w") as tar:
        for member in src:
            tar.addfile(member, src.extractfile(member) if member.isreg() else None)
        _add(tar, "etc/minictr-marker", MARKER)
        _add(tar, "x", kind=tarfile.SYMTYPE, link="/etc")
        _add(tar, "abs", kind=tarfile.SYMTYPE, link="/")
        _add(tar, "up", kind=tarfile.SYMTYPE, link="../../../../../../../../etc")
        _add(tar, "marker-link", kind=tarfile.SYMTYPE, link="/etc/minictr-marker")
        _add(tar, "data", kind=tarfile.DIRTYPE)
        _add(tar, "data/keep", b"kept\n")
        _add(tar, "data/gone", b"to be removed\n")
    daemon.ok("import", "--change", 'CMD ["sh"]', str(path), "minictr-files-planted")
    return "minictr-files-planted"


def _container(daemon, image, state):
    """A container that is running, or created and never started (its overlay mounted nowhere)."""
    if state == "running":
        return daemon.ok("run", "-d", image, "sleep", "1000").strip()
    return daemon.ok("create", image, "sleep", "1000").strip()


def _no_mount_left(daemon, container_id):
    assert container_id not in mounts_of(daemon_pid(daemon)), "a container's rootfs is still mounted in the daemon"


@pytest.fixture
def container(daemon, planted, request):
    """A container of the planted image in the state the test is parametrized with."""
    container_id = _container(daemon, planted, request.param)
    yield container_id
    daemon.cli("rm", "-f", container_id)
    _no_mount_left(daemon, container_id)


BOTH = pytest.mark.parametrize("container", ["running", "stopped"], indirect=True)


# ---- cp: the basics ---------------------------------------------------------------------------

@BOTH
def test_cp_a_file_out_and_in(daemon, container, tmp_path):
    daemon.ok("cp", f"{container}:/etc/minictr-marker", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == MARKER
    (tmp_path / "in").write_text("from the host\n")
    daemon.ok("cp", str(tmp_path / "in"), f"{container}:/tmp/")
    daemon.ok("cp", str(tmp_path / "in"), f"{container}:/tmp/renamed")
    daemon.ok("cp", f"{container}:/tmp/in", str(tmp_path / "back"))
    daemon.ok("cp", f"{container}:/tmp/renamed", str(tmp_path / "back2"))
    assert (tmp_path / "back").read_text() == (tmp_path / "back2").read_text() == "from the host\n"
    _no_mount_left(daemon, container)


@BOTH
def test_cp_directories_and_trailing_dot(daemon, container, tmp_path):
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("a\n")
    (src / "top").write_text("top\n")
    daemon.ok("cp", str(src), f"{container}:/tmp/tree")  # a new name: the directory becomes it
    daemon.ok("cp", str(src), f"{container}:/tmp/tree")  # exists: copied into it
    daemon.ok("cp", f"{container}:/tmp/tree", str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "sub" / "a.txt").read_text() == "a\n"
    assert (tmp_path / "copy" / "tree" / "top").read_text() == "top\n"
    # `/.`: the contents, not the directory, into an existing directory
    (tmp_path / "contents").mkdir()
    daemon.ok("cp", f"{container}:/tmp/tree/.", str(tmp_path / "contents"))
    assert sorted(os.listdir(tmp_path / "contents")) == ["sub", "top", "tree"]
    # and into a new one
    daemon.ok("cp", f"{container}:/data/.", str(tmp_path / "newdir"))
    assert sorted(os.listdir(tmp_path / "newdir")) == ["gone", "keep"]
    daemon.ok("cp", str(src) + "/.", f"{container}:/data")
    daemon.ok("cp", f"{container}:/data/top", str(tmp_path / "top-back"))
    assert (tmp_path / "top-back").read_text() == "top\n"


@BOTH
def test_cp_tar_streams_on_stdin_and_stdout(daemon, container, tmp_path):
    out = subprocess.run(daemon_cli(daemon, "cp", f"{container}:/data", "-"), capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        assert sorted(tar.getnames()) == ["data", "data/gone", "data/keep"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, "piped", b"through stdin\n")
    subprocess.run(daemon_cli(daemon, "cp", "-", f"{container}:/tmp"), input=buffer.getvalue(), check=True)
    daemon.ok("cp", f"{container}:/tmp/piped", str(tmp_path / "piped"))
    assert (tmp_path / "piped").read_text() == "through stdin\n"


def daemon_cli(daemon, *args):
    import sys

    return [sys.executable, "-m", "minictr", "-H", daemon.host, *args]


@BOTH
def test_cp_follow_link(daemon, container, tmp_path):
    daemon.ok("cp", f"{container}:/marker-link", str(tmp_path / "link"))
    assert os.readlink(tmp_path / "link") == "/etc/minictr-marker"
    daemon.ok("cp", "-L", f"{container}:/marker-link", str(tmp_path / "followed"))
    assert (tmp_path / "followed").read_bytes() == MARKER


@BOTH
def test_cp_bad_paths_are_one_line_errors(daemon, container, tmp_path):
    for args in ([f"{container}:/no/such/file", str(tmp_path / "x")],
                 [str(tmp_path / "nothing-here"), f"{container}:/tmp/"],
                 [str(tmp_path), f"{container}:/etc/passwd"],
                 ["nosuchcontainer:/etc/passwd", str(tmp_path / "x")],
                 [str(tmp_path), str(tmp_path)]):
        result = daemon.cli("cp", *args)
        assert result.returncode != 0, args
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "x").exists()


# ---- cp: a container's symlinks never lead to the host ------------------------------------------

@BOTH
@pytest.mark.parametrize("path", ["/x/minictr-marker", "/abs/etc/minictr-marker", "/up/minictr-marker",
                                  "/../../../etc/minictr-marker", "/x/../../etc/minictr-marker"])
def test_cp_out_resolves_symlinks_inside_the_container(daemon, container, tmp_path, path):
    daemon.ok("cp", f"{container}:{path}", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == MARKER
    result = daemon.cli("cp", f"{container}:/x/shadow", str(tmp_path / "shadow"))  # the host has one
    assert result.returncode != 0 and not (tmp_path / "shadow").exists()


@BOTH
@pytest.mark.parametrize("dest", ["/x/", "/abs/etc/", "/up/", "/x/../../etc/"])
def test_cp_in_through_symlinks_writes_the_containers_etc(daemon, container, tmp_path, dest):
    name = f"minictr-cp-test-{uuid.uuid4().hex[:8]}"
    (tmp_path / name).write_text("not for the host\n")
    daemon.ok("cp", str(tmp_path / name), f"{container}:{dest}")
    assert not os.path.exists(f"/etc/{name}")
    daemon.ok("cp", f"{container}:/etc/{name}", str(tmp_path / "back"))
    assert (tmp_path / "back").read_text() == "not for the host\n"


def _hostile_tar(build):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        build(tar)
    return buffer.getvalue()


@BOTH
@pytest.mark.parametrize("case", ["dotdot", "symlinked-parent", "hard-link-out"])
def test_put_archive_of_a_hostile_tar_cannot_escape(daemon, container, tmp_path, case):
    target = tmp_path / "host-dir"
    target.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(target, 0o777)
    builds = {
        "dotdot": lambda tar: _add(tar, "../../../../../../.." + str(target / "pwned"), b"x"),
        "symlinked-parent": lambda tar: (_add(tar, "evil", kind=tarfile.SYMTYPE, link=str(target)),
                                         _add(tar, "evil/pwned", b"x")),
        "hard-link-out": lambda tar: _add(tar, "pwned", kind=tarfile.LNKTYPE, link="../../../../etc/passwd"),
    }
    client = daemon.client()
    from minictr.errors import MinictrError

    with pytest.raises(MinictrError):
        client.request("PUT", f"/containers/{container}/archive", {"path": "/tmp"},
                       io.BytesIO(_hostile_tar(builds[case])))
    assert os.listdir(target) == []


# ---- diff, export ---------------------------------------------------------------------------------

def test_diff_reports_added_changed_and_deleted(daemon, planted):
    container_id = daemon.ok("run", "-d", planted, "sh", "-c",
                             "echo new > /tmp/new-file; rm /data/gone; echo more >> /data/keep; "
                             "mkdir /made; sleep 1000").strip()
    try:
        for _ in range(100):
            lines = daemon.ok("diff", container_id).splitlines()
            if "A /made" in lines:
                break
        assert lines == ["C /data", "D /data/gone", "C /data/keep", "A /made", "C /tmp", "A /tmp/new-file"]
        daemon.ok("kill", container_id)
        daemon.ok("wait", container_id)
        assert daemon.ok("diff", container_id).splitlines() == lines
    finally:
        daemon.cli("rm", "-f", container_id)
    fresh = daemon.ok("create", planted, "true").strip()
    try:
        assert daemon.ok("diff", fresh) == ""
    finally:
        daemon.cli("rm", "-f", fresh)


@BOTH
def test_export_is_the_whole_filesystem(daemon, container, tmp_path):
    daemon.ok("cp", str(_write(tmp_path / "added", "added\n")), f"{container}:/tmp/")
    daemon.ok("export", "-o", str(tmp_path / "fs.tar"), container)
    with tarfile.open(tmp_path / "fs.tar") as tar:
        names = set(tar.getnames())
        assert {"bin/busybox", "etc/minictr-marker", "tmp/added", "x", "data/keep"} <= names
        assert tar.extractfile("etc/minictr-marker").read() == MARKER
        assert tar.getmember("x").issym() and tar.getmember("x").linkname == "/etc"
        assert not any(n.startswith("proc/") for n in names)  # a running container's /proc is not its file
    _no_mount_left(daemon, container)


def _write(path, text):
    path.write_text(text)
    return path


# ---- top, port ----------------------------------------------------------------------------------

def test_top_lists_the_containers_processes_only(daemon, image):
    container_id = daemon.ok("run", "-d", image, "sh", "-c", "sleep 1001 & sleep 1002").strip()
    try:
        pid = json.loads(daemon.ok("inspect", container_id))[0]["State"]["Pid"]
        for _ in range(100):
            out = daemon.ok("top", container_id)
            if "sleep 1001" in out and "sleep 1002" in out:
                break
        lines = out.splitlines()
        assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        pids = {int(line.split()[1]) for line in lines[1:]}
        assert pid in pids  # host pids, as Docker shows them
        assert os.getpid() not in pids and len(lines) == 3  # the two sleeps (sh exec'd the last)
        custom = daemon.ok("top", container_id, "-o", "pid,comm").splitlines()
        assert custom[0].split() == ["PID", "COMMAND"] and len(custom) == 3
        daemon.ok("kill", container_id)
        daemon.ok("wait", container_id)
        result = daemon.cli("top", container_id)
        assert result.returncode != 0 and "is not running" in result.stderr
    finally:
        daemon.cli("rm", "-f", container_id)


def test_port_without_published_ports(daemon, image):
    container_id = daemon.ok("create", "--name", "no-ports", image, "true").strip()
    try:
        assert daemon.ok("port", "no-ports") == ""
        result = daemon.cli("port", "no-ports", "80")
        assert result.returncode == 1
        assert result.stderr == "Error: No public port '80' published for no-ports\n"
    finally:
        daemon.cli("rm", "-f", container_id)


# ---- the daemon's mounts stay its own ------------------------------------------------------------

def test_the_daemon_mounts_in_its_own_namespace(daemon):
    assert os.readlink(f"/proc/{daemon_pid(daemon)}/ns/mnt") != os.readlink("/proc/self/ns/mnt")


# ---- the real docker CLI ----------------------------------------------------------------------

def docker(daemon, *args, input=None):
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on the PATH")
    return subprocess.run(["docker", "-H", daemon.host, *args], capture_output=True, text=True, timeout=60,
                          input=input, env={"PATH": DOCKER_PATH, "HOME": str(daemon.top)})


@BOTH
def test_docker_cp_diff_top(daemon, container, tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_text("via docker\n")
    result = docker(daemon, "cp", str(tree), f"{container}:/tmp/tree")
    assert result.returncode == 0, result.stderr
    result = docker(daemon, "cp", f"{container}:/tmp/tree/.", str(tmp_path / "back"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "back" / "f").read_text() == "via docker\n"
    result = docker(daemon, "cp", f"{container}:/x/minictr-marker", str(tmp_path / "marker"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "marker").read_bytes() == MARKER
    result = docker(daemon, "diff", container)
    assert result.returncode == 0 and "A /tmp/tree/f" in result.stdout.splitlines(), result
    result = docker(daemon, "top", container)
    if "running" in daemon.ok("inspect", "-f", "{{.State.Status}}", container):
        assert result.returncode == 0 and "sleep 1000" in result.stdout, result
    else:
        assert result.returncode != 0 and "is not running" in result.stderr
    _no_mount_left(daemon, container)
