"""Host devices: Docker's default device allow-list, --device, --device-cgroup-rule and --privileged,
checked from inside a container as root and rootless (issue 17, item 1). As root every test runs
twice: on this host's cgroup v1 device controller, and on cgroup v2 (a daemon that sees only the
cgroup2 hierarchy, whose containers are confined by a BPF device program).

Nothing here writes to a host device: the nodes a container makes for host devices (a loop device,
/dev/mem) are only opened O_RDONLY (busybox `head -c 0` opens and reads nothing)."""

import glob
import os

import pytest

from minictr.errors import InvalidArgument

from .conftest import CGROUP_V2, IMAGE, ROOTLESS, CgroupV2Daemon, cgroup_dir_of, inspect
from .test_docker_cli import docker


@pytest.fixture(scope="module", params=["rootless"] if ROOTLESS else ["cgroup v2"] if CGROUP_V2 else ["cgroup v1", "cgroup v2"])
def hierarchy(request):
    return request.param


# The parameter is `hierarchy`'s, not this fixture's: a parametrized fixture named `daemon` gives its
# parameter to the session's `daemon` it asks for too, and pytest then tears that one down and makes
# another, stranding every session fixture that holds the first (rootless, net_daemon).
@pytest.fixture(scope="module")
def daemon(hierarchy, daemon, tmp_path_factory):
    """The session's daemon, and as root on a hybrid machine also one on cgroup v2 (made for this module)."""
    if hierarchy != "cgroup v2" or CGROUP_V2:
        yield daemon
        return
    top = tmp_path_factory.mktemp("cgroup-v2-daemon")
    os.chmod(top, 0o755)
    v2 = CgroupV2Daemon(top)
    v2.start()
    try:
        yield v2
    finally:
        v2.teardown()


@pytest.fixture(scope="module")
def image(daemon, busybox_tar):
    daemon.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), IMAGE)
    return IMAGE


def test_the_container_is_in_the_device_controller_of_its_hierarchy(daemon, image):
    # What makes the runs of this module mean something: seen from the host, the container's group is a
    # v2 one on cgroup v2 (as root confined by its BPF program), a v1 devices one as root otherwise;
    # rootless on v1, where nothing is delegated, it shares the daemon's group; rootless on v2 it has a
    # group of its own in the user's delegated subtree. Rootless, the kernel refuses mknod anyway.
    created = daemon.ok("run", "-d", "--network", "none", image, "sleep", "30").strip()
    try:
        pid = inspect(daemon, created)["State"]["Pid"]
        groups = dict(line.split(":", 2)[1:] for line in open(f"/proc/{pid}/cgroup").read().splitlines())
        if ROOTLESS and not CGROUP_V2:
            assert not groups["devices"].endswith(created), groups
        elif ROOTLESS:
            assert groups[""].endswith(f"/minictr/{created}"), groups
        else:
            controller = None if CGROUP_V2 or isinstance(daemon, CgroupV2Daemon) else "devices"
            group = cgroup_dir_of(pid, controller)
            assert group and group.endswith(f"/minictr/{created}") and os.path.isdir(group), groups
    finally:
        daemon.ok("rm", "-f", created)

# `open_ro PATH`: one line, "open PATH ok" or the shell's error (busybox: "…: Operation not permitted").
OPEN_RO = "open_ro() { if head -c 0 \"$1\"; then echo \"open $1 ok\"; fi; }; "
OPEN_RW = "open_rw() { if ( : 1<>\"$1\" ); then echo \"write $1 ok\"; fi; }; "


def sh(daemon, *args, script):
    """stdout and stderr of `sh -c SCRIPT` in a container run with ARGS (options, image)."""
    result = daemon.cli("run", "--rm", *args, "sh", "-c", OPEN_RO + OPEN_RW + script)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def loop_major_minor():
    """A loop device of this host: (major, minor) of /dev/loop0 (7:0)."""
    st = os.stat("/dev/loop0")
    return os.major(st.st_rdev), os.minor(st.st_rdev)


# ---- the default allow-list -----------------------------------------------------------------


def test_a_made_node_of_a_host_loop_device_cannot_be_opened(daemon, image):
    major, minor = loop_major_minor()
    out = sh(daemon, image, script=f"mknod /tmp/d b {major} {minor} && echo made; open_ro /tmp/d")
    if ROOTLESS:
        # The kernel refuses device nodes in a user namespace: nothing to open at all.
        assert "made" not in out and "Operation not permitted" in out, out
        return
    assert "made" in out, out  # Docker's `b *:* m`: mknod is allowed, the open is not
    assert "open /tmp/d ok" not in out and "Operation not permitted" in out, out


def test_a_made_node_of_dev_mem_cannot_be_opened(daemon, image):
    out = sh(daemon, image, script="mknod /tmp/mem c 1 1 && echo made; open_ro /tmp/mem")
    assert "open /tmp/mem ok" not in out and "Operation not permitted" in out, out
    assert ("made" in out) != ROOTLESS, out


def test_the_standard_nodes_work(daemon, image):
    out = sh(daemon, image, script="for n in null zero full random urandom; do open_ro /dev/$n; open_rw /dev/$n; done; "
                                  "head -c 4 /dev/urandom | wc -c; head -c 4 /dev/zero | wc -c; "
                                  "echo x > /dev/full || echo full refused")
    for name in ("null", "zero", "full", "random", "urandom"):
        assert f"open /dev/{name} ok" in out and f"write /dev/{name} ok" in out, out
    assert out.count("4\n") == 2 and "No space left on device" in out, out


def test_dev_tty_ptmx_and_the_pts_work_with_a_tty(daemon, image):
    result = daemon.cli("run", "--rm", "-t", image, "sh", "-c",
                        OPEN_RW + "open_rw /dev/tty; open_rw $(tty); open_rw /dev/ptmx; echo to-tty > /dev/tty")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "write /dev/tty ok" in out and "write /dev/pts/0 ok" in out and "write /dev/ptmx ok" in out, out
    assert "to-tty" in out and "not permitted" not in out, out


# ---- --device, --device-cgroup-rule, --privileged ---------------------------------------------


def test_device_adds_the_node_under_its_new_name(daemon, image):
    out = sh(daemon, "--device", "/dev/null:/dev/mynull", image,
             script="stat -c '%F %t:%T %a' /dev/mynull; echo x > /dev/mynull && echo wrote; open_ro /dev/mynull")
    assert "character special file 1:3 666" in out and "wrote" in out and "open /dev/mynull ok" in out, out


def test_device_with_the_hosts_path_keeps_it(daemon, image):
    out = sh(daemon, "--device", "/dev/zero", image, script="stat -c '%n %t:%T' /dev/zero; head -c 3 /dev/zero | wc -c")
    assert "/dev/zero 1:5" in out and "3" in out.split(), out


def test_device_grants_exactly_the_permissions_it_names(daemon, image):
    # /dev/fuse (c 10:229, mode 0666) is not on Docker's list: only --device makes it reachable. Opening
    # it makes a FUSE connection that goes with the fd: nothing on the host changes.
    args = ["--device", "/dev/fuse:/dev/f:r", image]
    if ROOTLESS:
        # No device controller: a permission narrower than rwm could not be kept, so it is refused.
        result = daemon.cli("run", "--rm", *args, "true")
        assert result.returncode != 0 and "rootless" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and daemon.ok("ps", "-a", "-q") == ""
        return
    out = sh(daemon, *args, script="open_ro /dev/f; open_rw /dev/f; mknod /tmp/f c 10 229 && open_ro /tmp/f")
    assert "open /dev/f ok" in out and "open /tmp/f ok" in out, out
    assert "write /dev/f ok" not in out and "Operation not permitted" in out, out
    assert "open /dev/fuse ok" not in sh(daemon, image, script="mknod /dev/fuse c 10 229; open_ro /dev/fuse")


def test_device_cgroup_rule_lets_a_made_node_open(daemon, image):
    script = "mknod /tmp/f c 10 229 && echo made; open_ro /tmp/f; open_rw /tmp/f"
    if ROOTLESS:
        out = sh(daemon, "--device-cgroup-rule", "c 10:229 r", image, script=script)
        assert "made" not in out and "Operation not permitted" in out, out  # the kernel still refuses the mknod
        return
    assert "open /tmp/f ok" not in sh(daemon, image, script=script)
    out = sh(daemon, "--device-cgroup-rule", "c 10:229 r", image, script=script)
    assert "made" in out and "open /tmp/f ok" in out and "write /tmp/f ok" not in out, out


def test_privileged_opens_everything(daemon, image):
    out = sh(daemon, "--privileged", image, script="open_ro /dev/loop0; open_rw /dev/fuse")
    assert "write /dev/fuse ok" in out, out
    if ROOTLESS:
        # The host's nodes are bound in: the user opens what the host lets them open, no more.
        assert "open /dev/loop0 ok" not in out and "Permission denied" in out, out
        return
    assert "open /dev/loop0 ok" in out, out
    major, minor = loop_major_minor()
    assert "open /tmp/d ok" in sh(daemon, "--privileged", image, script=f"mknod /tmp/d b {major} {minor}; open_ro /tmp/d")


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("args,message", [
    (["--device", "/dev/nosuchdevice"], "/dev/nosuchdevice"),
    (["--device", "/etc/passwd"], "not a device"),
    (["--device", "/dev/null:relative"], "absolute"),
    (["--device", "/dev/null:/dev/n:rwx"], "invalid device mode"),
    (["--device-cgroup-rule", "c 1:3 rwz"], "invalid device cgroup format"),
    (["--device-cgroup-rule", "x *:* rwm"], "invalid device cgroup format"),
])
def test_a_bad_device_or_rule_fails_in_one_line_and_leaves_nothing(daemon, image, args, message):
    result = daemon.cli("create", *args, image, "true")
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert daemon.ok("ps", "-a", "-q") == ""


def test_the_api_takes_devices_and_rules_and_inspect_shows_them(daemon, image):
    client = daemon.client()
    body = {"Image": image, "Cmd": ["stat", "-c", "%t:%T", "/dev/n"],
            "HostConfig": {"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n",
                                        "CgroupPermissions": "rwm"}],
                           "DeviceCgroupRules": ["c 1:9 rwm"]}}
    created = client.post("/containers/create", None, body).json()["Id"]
    try:
        host_config = inspect(daemon, created)["HostConfig"]
        assert host_config["Devices"] == body["HostConfig"]["Devices"]
        assert host_config["DeviceCgroupRules"] == ["c 1:9 rwm"]
        daemon.ok("start", created)
        daemon.ok("wait", created)
        assert daemon.ok("logs", created).strip() == "1:3"
    finally:
        daemon.ok("rm", "-f", created)
    bad = dict(body, HostConfig={"Devices": [{"PathOnHost": 5}]})
    with pytest.raises(InvalidArgument, match="DeviceMapping.PathOnHost"):
        client.post("/containers/create", None, bad)
    assert daemon.ok("ps", "-a", "-q") == ""


def test_a_device_gone_by_the_start_fails_it_in_one_line(daemon, image, tmp_path):
    link = tmp_path / "dev-link"
    link.symlink_to("/dev/null")  # followed, as Docker does: the node is /dev/null
    tmp_path.chmod(0o755)
    created = daemon.ok("create", "--device", f"{link}:/dev/l", image, "stat", "-c", "%t:%T", "/dev/l").strip()
    try:
        link.unlink()
        result = daemon.cli("start", created)
        assert result.returncode != 0 and str(link) in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
        assert inspect(daemon, created)["State"]["Status"] == "created"
        assert not glob.glob(f"/sys/fs/cgroup/*/minictr/{created}"), "the failed start left its cgroups"
        link.symlink_to("/dev/null")
        daemon.ok("start", "-a", created)
        assert daemon.ok("logs", created).strip() == "1:3"
    finally:
        daemon.ok("rm", "-f", created)


def test_the_docker_cli_adds_a_device_and_a_rule(daemon, image):
    out = docker(daemon, "run", "--rm", "--device", "/dev/null:/dev/n:rw", "--device-cgroup-rule", "c 10:229 r",
                 image, "sh", "-c", OPEN_RO + "stat -c %t:%T /dev/n; mknod /tmp/f c 10 229; open_ro /tmp/f")
    assert out.returncode == 0, out.stderr
    assert "1:3" in out.stdout and ("open /tmp/f ok" in out.stdout) != ROOTLESS, out.stdout + out.stderr
