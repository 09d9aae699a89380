"""`minictr doctor`'s checks, each pointed at a fake tree: the failure and the fix it prints."""

import os
import pickle
import shutil
import stat
import struct
import tempfile
from pathlib import Path

import pytest

from minictr import doctor
from minictr.daemon.preflight import CannotStart, check_writable_dir
from minictr.doctor import FAIL, OK, WARN


def _tree(tmp_path, **files):
    for relpath, text in files.items():
        path = tmp_path / relpath.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path)


@pytest.fixture
def open_tmp():
    """A temporary directory everyone can traverse (tmp_path is root's own when run as root)."""
    path = tempfile.mkdtemp(prefix="minictr-doctor-test-")
    os.chmod(path, 0o755)
    yield path
    for dirpath, _dirs, _files in os.walk(path):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(path)


def _as_nobody(check):
    """CHECK() as an unprivileged user: root would pass every permission test. Returns its Result."""
    if os.geteuid() != 0:
        return check()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.write(write_fd, pickle.dumps(check()))
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return pickle.loads(data)


# user namespaces

def test_user_namespaces_disabled_by_max_user_namespaces(tmp_path):
    result = doctor.user_namespaces(False, _tree(tmp_path, sys__user__max_user_namespaces="0\n"))
    assert result.status == FAIL and "user.max_user_namespaces = 0" in result.message
    assert "sysctl -w user.max_user_namespaces=" in result.fix


def test_user_namespaces_disabled_by_unprivileged_userns_clone(tmp_path):
    proc = _tree(tmp_path, sys__user__max_user_namespaces="100\n", sys__kernel__unprivileged_userns_clone="0\n")
    result = doctor.user_namespaces(False, proc)
    assert result.status == FAIL and "sysctl -w kernel.unprivileged_userns_clone=1" in result.fix


def test_apparmor_restriction_fails_with_the_profile_as_fix(tmp_path):
    proc = _tree(tmp_path, sys__kernel__apparmor_restrict_unprivileged_userns="1\n")
    failed_probe = doctor.Result("overlayfs in a user namespace", FAIL, "uid_map: Operation not permitted")
    result = doctor.user_namespaces(False, proc, probe=failed_probe)
    assert result.status == FAIL and "apparmor_restrict_unprivileged_userns = 1" in result.message
    assert "minictr doctor --apparmor-profile | sudo tee /etc/apparmor.d/minictr" in result.fix
    assert "apparmor_parser -r /etc/apparmor.d/minictr" in result.fix


def test_apparmor_restriction_lifted_by_a_loaded_profile_passes(tmp_path):
    proc = _tree(tmp_path, sys__kernel__apparmor_restrict_unprivileged_userns="1\n")
    result = doctor.user_namespaces(False, proc, probe=doctor.Result("overlayfs", OK, "works"))
    assert result.status == OK and "AppArmor profile" in result.message


def test_user_namespaces_allowed_and_not_needed_as_root(tmp_path):
    assert doctor.user_namespaces(False, _tree(tmp_path, sys__user__max_user_namespaces="100\n")).status == OK
    assert doctor.user_namespaces(True, _tree(tmp_path, sys__user__max_user_namespaces="0\n")).status == OK


def test_apparmor_profile_names_the_installed_python_and_monitor():
    text = doctor.apparmor_profile()
    assert text.startswith("# /etc/apparmor.d/minictr")
    assert "abi <abi/4.0>," in text and "include <tunables/global>" in text
    assert f"profile minictr-python {os.path.realpath(os.sys.executable)} flags=(unconfined) {{" in text
    monitor = os.path.join(os.path.dirname(os.path.realpath(doctor.__file__)), "minictr-monitor")
    assert f"profile minictr-monitor {monitor} flags=(unconfined) {{" in text
    assert text.count("  userns,\n") == 2


# subordinate ids and their helpers

def test_no_subordinate_ids_for_the_user(tmp_path):
    subuid = _tree(tmp_path, subuid="bob:100000:65536\n") + "/subuid"
    result = doctor.subordinate_ids(False, 1001, "alice", subuid, subuid)
    assert result.status == FAIL and "none for alice" in result.message
    assert result.fix == "sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"


def test_subordinate_ids_by_name_or_uid(tmp_path):
    _tree(tmp_path, subuid="alice:100000:65536\n", subgid="1001:100000:65536\n")
    result = doctor.subordinate_ids(False, 1001, "alice", str(tmp_path / "subuid"), str(tmp_path / "subgid"))
    assert result.status == OK and "65536 uids and 65536 gids" in result.message


def test_too_few_subordinate_ids_is_a_warning(tmp_path):
    _tree(tmp_path, subuid="alice:100000:1000\n")
    path = str(tmp_path / "subuid")
    assert doctor.subordinate_ids(False, 1001, "alice", path, path).status == WARN


def _tool(tmp_path, name, mode=0o755):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


def test_id_map_helper_missing(tmp_path):
    result = doctor.id_map_helper(False, "newuidmap", search_path=str(tmp_path))
    assert result.status == FAIL and "not installed" in result.message and "apt-get install uidmap" in result.fix


def test_id_map_helper_without_setuid_or_capability(tmp_path):
    path = _tool(tmp_path, "newuidmap")
    result = doctor.id_map_helper(False, "newuidmap", search_path=str(tmp_path))
    assert result.status == FAIL and "neither setuid root nor has cap_setuid" in result.message
    assert result.fix == f"sudo setcap cap_setuid+ep {path} (or sudo chmod u+s {path})"


@pytest.mark.skipif(os.geteuid() != 0, reason="a setuid-root file needs root to make")
def test_id_map_helper_setuid_root(tmp_path):
    _tool(tmp_path, "newgidmap", 0o4755)
    assert doctor.id_map_helper(False, "newgidmap", search_path=str(tmp_path)).status == OK


def test_id_map_helper_with_file_capabilities(tmp_path):
    path = _tool(tmp_path, "newgidmap")
    # struct vfs_cap_data, revision 2: magic|effective, then {permitted, inheritable} x 2.
    value = struct.pack("<5I", 0x02000000 | 1, 1 << doctor.CAP_SETGID, 0, 0, 0)
    try:
        os.setxattr(path, "security.capability", value)
    except PermissionError:
        pytest.skip("setting file capabilities needs CAP_SETFCAP")
    assert doctor.file_capabilities(str(path)) == 1 << doctor.CAP_SETGID
    assert doctor.id_map_helper(False, "newgidmap", search_path=str(tmp_path)).status == OK
    assert doctor.id_map_helper(False, "newuidmap", search_path=str(tmp_path)).status == FAIL  # absent


# overlayfs, tried

@pytest.mark.whiteout_fs
def test_overlay_probe_works_here_and_leaves_nothing(tmp_path):
    result = doctor.overlay_probe(os.geteuid() == 0, str(tmp_path / "data"))
    assert result.status == OK, result.line()
    assert os.listdir(tmp_path) == []


def test_overlay_probe_where_nothing_can_be_written(open_tmp):
    locked = os.path.join(open_tmp, "locked")
    os.mkdir(locked, 0o555)
    result = _as_nobody(lambda: doctor.overlay_probe(False, os.path.join(locked, "data")))
    assert result.status == FAIL and "cannot make a directory" in result.message


def _mount_refused(where="/ci/data"):
    import errno

    from minictr.hostinfo import OVERLAY_STEPS, OverlayTrial

    step = OVERLAY_STEPS.index("mount overlay")
    return OverlayTrial(where, f"mount overlay: {os.strerror(errno.EINVAL)} (on {where})", step, errno.EINVAL)


@pytest.mark.parametrize("root", [True, False])
def test_a_data_root_on_overlayfs_is_named_as_the_cause_not_the_kernel(tmp_path, root):
    result = doctor.overlay_result(root, _mount_refused(), "overlay")
    assert result.status == FAIL
    assert result.message.startswith("mount overlay: Invalid argument (on /ci/data)")
    assert "the data root is on overlayfs" in result.message
    assert "kernel >=" not in result.fix and "tmpfs" in result.fix and "volume" in result.fix
    assert result.fix.startswith("fuse-overlayfs is used instead")
    empty = tmp_path / "bin"
    empty.mkdir()
    without_fuse = doctor.overlay_result(root, _mount_refused(), "overlay", search_path=str(empty))
    assert without_fuse.fix.startswith("vfs (full copies) is used instead")


def test_an_old_kernel_is_still_blamed_on_other_filesystems():
    result = doctor.overlay_result(False, _mount_refused(), "ext4")
    assert result.status == FAIL and "kernel >= 5.11" in result.fix
    assert "overlayfs" not in result.message


def test_the_overlay_line_warns_only_when_a_fallback_runs_instead(monkeypatch, tmp_path):
    monkeypatch.setattr(doctor, "overlay_probe", lambda root, data_root: doctor.overlay_result(
        root, _mount_refused(), "overlay"))
    lines = {r.check: r for r in doctor.run_checks(str(tmp_path), {}, root=True, uid=0)}
    assert lines["overlayfs"].status == WARN and "the data root is on overlayfs" in lines["overlayfs"].message
    assert lines["storage driver"].message.startswith("fuse-overlayfs")


# cgroups

def _mountinfo(tmp_path, *mounts):
    lines = [f"{i} 1 0:{i} / {point} rw - {fstype} {fstype} rw,{opts}" for i, (point, fstype, opts) in
             enumerate(mounts, start=30)]
    return _tree(tmp_path, mountinfo="\n".join(lines) + "\n") + "/mountinfo"


def test_cgroup_v1_rootless_is_a_warning_and_root_ok(tmp_path):
    mountinfo = _mountinfo(tmp_path, ("/sys/fs/cgroup/memory", "cgroup", "memory"),
                           ("/sys/fs/cgroup/pids", "cgroup", "pids"), ("/sys/fs/cgroup/unified", "cgroup2", "nsdelegate"))
    empty = str(tmp_path / "cgroupfs")
    rootless = doctor.cgroups(False, mountinfo, empty)
    assert rootless.status == WARN and "v1 (hybrid)" in rootless.message and "cannot have limits" in rootless.message
    assert "systemd.unified_cgroup_hierarchy=1" in rootless.fix
    root = doctor.cgroups(True, mountinfo, empty)
    assert root.status == OK and root.message == "v1 (hybrid): memory, pids"


def test_cgroup_v2_rootless_in_a_container_finds_its_group_through_the_mounts_root(open_tmp):
    # No cgroup namespace: /proc/self/cgroup names /docker/abc/user, and cgroup_root *is* /docker/abc.
    cgroup_root = os.path.join(open_tmp, "cg")
    _tree(Path(open_tmp), self="0::/docker/abc/user\n",
          mountinfo=f"40 30 0:26 /docker/abc {cgroup_root} rw - cgroup2 cgroup2 rw\n")
    os.makedirs(os.path.join(cgroup_root, "user"))
    Path(cgroup_root, "cgroup.controllers").write_text("cpu memory pids\n")
    Path(cgroup_root, "user", "cgroup.controllers").write_text("cpu memory pids\n")
    os.chmod(cgroup_root, 0o555)
    os.chmod(os.path.join(cgroup_root, "user"), 0o777)
    result = _as_nobody(lambda: doctor.cgroups(False, f"{open_tmp}/mountinfo", cgroup_root, f"{open_tmp}/self"))
    assert result.status == OK and result.message == "v2, delegated: cpu, memory, pids"

def test_cgroup_v2_rootless_delegated_and_not(open_tmp):
    _tree(Path(open_tmp), self="0::/user\n", other="0::/system\n")
    cgroup_root = os.path.join(open_tmp, "cg")
    for group, controllers in (("", "cpuset cpu io memory pids"), ("user", "cpu memory pids"), ("system", "pids")):
        os.makedirs(os.path.join(cgroup_root, group), exist_ok=True)
        Path(cgroup_root, group, "cgroup.controllers").write_text(controllers + "\n")
    for group in ("system", "user", ""):
        os.chmod(os.path.join(cgroup_root, group), 0o555)
    os.chmod(os.path.join(cgroup_root, "user"), 0o777)  # delegated: ours to write

    delegated = _as_nobody(lambda: doctor.cgroups(False, "/nonexistent", cgroup_root, f"{open_tmp}/self"))
    assert delegated.status == OK and delegated.message == "v2, delegated: cpu, memory, pids"
    undelegated = _as_nobody(lambda: doctor.cgroups(False, "/nonexistent", cgroup_root, f"{open_tmp}/other"))
    assert undelegated.status == WARN and "/system is not delegated" in undelegated.message
    assert "Delegate=cpu cpuset io memory pids" in undelegated.fix
    Path(cgroup_root, "user", "cgroup.controllers").write_text("pids\n")
    partial = _as_nobody(lambda: doctor.cgroups(False, "/nonexistent", cgroup_root, f"{open_tmp}/self"))
    assert partial.status == WARN and "without cpu, memory" in partial.message
    root = doctor.cgroups(True, "/nonexistent", cgroup_root)
    assert root.status == OK and root.message == "v2: cpuset, cpu, io, memory, pids"


# networking

def test_tun_missing_or_closed(open_tmp):
    missing = doctor.tun(os.path.join(open_tmp, "tun"))
    assert missing.status == FAIL and missing.fix == "sudo modprobe tun"
    closed = os.path.join(open_tmp, "closed")
    open(closed, "w").close()
    os.chmod(closed, 0)
    result = _as_nobody(lambda: doctor.tun(closed))
    assert result.status == FAIL and "Permission denied" in result.message
    assert result.fix == f"sudo chmod 0666 {closed}"
    os.chmod(closed, 0o600)
    assert doctor.tun(closed).status == OK


def test_user_mode_network_needs_slirp4netns_or_pasta(tmp_path):
    result = doctor.user_mode_network(False, search_path=str(tmp_path))
    assert result.status == FAIL and "apt-get install slirp4netns" in result.fix
    _tool(tmp_path, "pasta")
    assert doctor.user_mode_network(False, search_path=str(tmp_path)).message == "pasta"


def _fake_nft(tmp_path, chains):
    """An `nft` on a fake PATH whose `-j list chains` prints these chains."""
    import json

    listing = json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}}] + [{"chain": c} for c in chains]})
    path = tmp_path / "nft"
    path.write_text(f"#!/bin/sh\n[ \"$*\" = \"-j list chains\" ] || exit 1\ncat <<'END'\n{listing}\nEND\n")
    path.chmod(0o755)
    return str(tmp_path)


DOCKER_FORWARD = {"family": "ip", "table": "filter", "name": "FORWARD", "type": "filter", "hook": "forward",
                  "prio": 0, "policy": "drop"}


def test_nftables_needed_as_root_only(tmp_path):
    missing = doctor.nftables(True, search_path=str(tmp_path))
    assert missing.status == FAIL and "cannot reach outside" in missing.message
    assert missing.fix == "sudo apt-get install nftables"
    assert doctor.nftables(False, search_path=str(tmp_path)).status == OK
    _fake_nft(tmp_path, [])
    assert doctor.nftables(True, search_path=str(tmp_path)) == doctor.Result("nftables", OK, str(tmp_path / "nft"))


def test_ip_forwarding_off_is_a_warning_as_root(tmp_path):
    proc = _tree(tmp_path, sys__net__ipv4__ip_forward="0\n")
    result = doctor.ip_forwarding(True, proc=proc)
    assert result.status == WARN and "the daemon turns it on" in result.message
    assert result.fix.startswith("sudo sysctl -w net.ipv4.ip_forward=1")
    assert doctor.ip_forwarding(False, proc=proc).status == OK
    _tree(tmp_path, sys__net__ipv4__ip_forward="1\n")
    assert doctor.ip_forwarding(True, proc=proc).status == OK
    assert doctor.ip_forwarding(True, proc=str(tmp_path / "none")).status == WARN


def test_forward_policy_drop_of_docker_with_and_without_br_netfilter(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    nf_call = tmp_path / "proc/sys/net/bridge/bridge-nf-call-iptables"
    nf_call.parent.mkdir(parents=True)
    nf_call.write_text("1\n")
    proc = str(tmp_path / "proc")
    # Our own table's chains (policy accept anyway) and accepting chains are no problem.
    ours = {"family": "inet", "table": "minictr", "name": "forward", "hook": "forward", "policy": "drop"}
    _fake_nft(bin_dir, [ours, dict(DOCKER_FORWARD, policy="accept")])
    assert doctor.forward_policy(True, proc=proc, search_path=str(bin_dir)).status == OK
    _fake_nft(bin_dir, [DOCKER_FORWARD, {"family": "ip", "table": "nat", "name": "PREROUTING", "hook": "prerouting",
                                         "policy": "accept"}])
    # iptables' FORWARD (Docker's): the daemon jumps from it to its own chain.
    docker = doctor.forward_policy(True, proc=proc, search_path=str(bin_dir))
    assert docker.status == OK and docker.message.startswith("ip filter FORWARD has policy drop (Docker's)")
    assert "MINICTR-FORWARD" in docker.message
    # Another table's forward chain with policy drop (a host firewall's) is not minictr's to open.
    firewall = {"family": "inet", "table": "filter", "name": "forward", "hook": "forward", "policy": "drop"}
    _fake_nft(bin_dir, [DOCKER_FORWARD, firewall])
    # With br_netfilter (bridge-nf-call-iptables=1) the drop also hits traffic between containers on one bridge.
    bridged = doctor.forward_policy(True, proc=proc, search_path=str(bin_dir))
    assert bridged.status == WARN and bridged.message.startswith("inet filter forward has policy drop")
    assert "ip filter FORWARD" not in bridged.message
    assert "traffic between containers" in bridged.message and "outbound" in bridged.message
    assert "iifname minictr0 accept" in bridged.fix and "oifname minictr0 ct state established,related" in bridged.fix
    nf_call.write_text("0\n")
    routed = doctor.forward_policy(True, proc=proc, search_path=str(bin_dir))
    assert routed.status == WARN and "outbound traffic of containers" in routed.message
    assert "between containers" not in routed.message
    # Rootless: the daemon's own namespace has no such chain; no nft: cannot tell.
    assert doctor.forward_policy(False, proc=proc, search_path=str(bin_dir)).status == OK
    assert doctor.forward_policy(True, proc=proc, search_path=str(tmp_path / "empty")).status == WARN

# directories

def test_runtime_dir_unset_is_a_warning():
    result = doctor.runtime_dir(False, 4242, None)
    assert result.status == WARN and "/tmp/minictr-4242" in result.message
    assert "XDG_RUNTIME_DIR=/run/user/4242" in result.fix


def test_runtime_dir_missing_group_readable_or_foreign(tmp_path):
    uid = os.getuid()
    assert doctor.runtime_dir(False, uid, str(tmp_path / "gone")).status == FAIL
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    open_dir.chmod(0o755)
    result = doctor.runtime_dir(False, uid, str(open_dir))
    assert result.status == FAIL and "mode 0755, not 0700" in result.message and result.fix == f"chmod 0700 {open_dir}"
    open_dir.chmod(0o700)
    assert doctor.runtime_dir(False, uid, str(open_dir)).status == OK
    foreign = doctor.runtime_dir(False, uid + 1, str(open_dir))
    assert foreign.status == FAIL and "is owned by" in foreign.message and foreign.fix.startswith("sudo chown ")


def test_data_root_on_overlayfs(tmp_path):
    mountinfo = _mountinfo(tmp_path, ("/", "ext4", "errors=remount-ro"), (str(tmp_path), "overlay", "lowerdir=/x"))
    result = doctor.data_root(str(tmp_path / "minictr"), mountinfo)
    assert result.status == WARN and "on overlayfs" in result.message and "--data-root DIR" in result.fix


def test_data_root_short_of_space(tmp_path):
    mountinfo = _mountinfo(tmp_path, ("/", "ext4", "errors=remount-ro"))
    result = doctor.data_root(str(tmp_path / "minictr"), mountinfo, min_free=1 << 60)
    assert result.status == FAIL and "free, less than" in result.message and "free some space" in result.fix
    ok = doctor.data_root(str(tmp_path / "minictr"), mountinfo)
    assert ok.status == OK and "(ext4, " in ok.message


def test_data_root_not_writable(open_tmp):
    locked = os.path.join(open_tmp, "locked")
    os.mkdir(locked, 0o555)
    result = _as_nobody(lambda: doctor.data_root(os.path.join(locked, "minictr")))
    assert result.status == FAIL and f"{locked} is not writable" in result.message


def test_result_line_format():
    assert doctor.Result("tun device", OK, "fine").line() == "ok    tun device: fine"
    assert (doctor.Result("subordinate ids", FAIL, "none for alice", "sudo usermod …").line()
            == "FAIL  subordinate ids: none for alice — fix: sudo usermod …")


# the daemon's start-up errors point here

def test_daemon_start_up_errors_point_to_doctor(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(CannotStart) as raised:
        check_writable_dir(str(tmp_path / "file" / "data"), "data root")
    assert str(raised.value).endswith("; run `minictr doctor` to check this machine")
    assert stat.S_ISREG(os.stat(tmp_path / "file").st_mode)
