"""A data root on overlayfs, as in a CI job inside a container (issue 18): the kernel refuses an
overlay upper dir there, so the daemon falls back to fuse-overlayfs, which cannot make overlay's
whiteout devices either and writes `.wh.NAME` files and `.wh..wh..opq` markers instead. `diff`,
`commit`, `save`, `export` and `cp` must still show a deleted file as deleted.

The data root's overlay is mounted only where the daemon sees it: as root in a mount namespace of
the daemon's own; rootless in the daemon's namespaces (the holder's user + mount namespaces, where
the user is root and may mount overlayfs, Linux >= 5.11). Nothing is mounted on the machine."""

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from .conftest import IMAGE, ROOTLESS, Daemon, daemon_pid, mounts_of, overlay_backing_dir


class OverlayDataRootDaemon(Daemon):
    """A daemon whose data root is an overlay of three directories of `backing` (its upper dir,
    `backing/upper`, is where the data root's files land)."""

    def __init__(self, top: Path, backing: Path):
        super().__init__(top)
        self.backing = backing
        for name in ("lower", "upper", "work"):
            (self.backing / name).mkdir(parents=True)
        self.data_root.mkdir()
        self.holder = None

    def _overlay_options(self):
        b = self.backing
        return f"lowerdir={b}/lower,upperdir={b}/upper,workdir={b}/work"

    def _argv(self):
        if ROOTLESS:
            return super()._argv()
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'mount -t overlay overlay -o "$1" "$2" && shift 2 && exec "$@"', "sh",
                self._overlay_options(), str(self.data_root), *super()._argv()]

    def start(self):
        if ROOTLESS:
            self._mount_in_the_daemons_namespaces()
        super().start()

    def _mount_in_the_daemons_namespaces(self):
        # The namespaces every rootless daemon of this run directory joins (made here the way the
        # first daemon makes them), with the overlay mounted in them before the daemon starts.
        from minictr.daemon import rootless

        self.socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        uid_map, gid_map, _warning = rootless.id_mappings()
        self.holder = rootless._start_holder(str(self.socket.parent), uid_map, gid_map)
        subprocess.run(["nsenter", "-t", str(self.holder), "-U", "-m", "mount", "-t", "overlay", "overlay",
                        "-o", self._overlay_options(), str(self.data_root)],
                       check=True, capture_output=True, text=True)

    def teardown(self):
        super().teardown()
        if self.holder:  # the daemon stops it when it stops with no container; a failed start does not
            from minictr.daemon import rootless

            if rootless.live_holder(str(self.socket.parent)) == self.holder:
                rootless.stop_holder(str(self.socket.parent), self.holder)


@pytest.fixture
def overlay_daemon(busybox_tar):
    top = Path(tempfile.mkdtemp(prefix="minictr-ovlroot-"))
    os.chmod(top, 0o755)
    # The overlay's own upper dir cannot be on overlayfs (a CI container's /tmp): tmpfs there.
    backing = overlay_backing_dir("minictr-ovlroot-backing-")
    d = OverlayDataRootDaemon(top, backing)
    try:
        d.start()
        d.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), IMAGE)
        yield d
    finally:
        d.teardown()
        subprocess.run(["rm", "-rf", str(top), str(backing)], check=False)


def _fuse_overlayfs_processes(d):
    ps = subprocess.run(["pgrep", "-a", "fuse-overlayfs"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if str(d.data_root) in line]


# In busybox, /bin/ls and /bin/mt are hard links of one file; /usr/sbin holds applets too.
CHANGES = ("rm /bin/ls && rm -rf /usr/sbin && mkdir /usr/sbin && echo new > /usr/sbin/mine "
           "&& echo more >> /etc/group")


def test_a_data_root_on_overlayfs_runs_on_fuse_overlayfs_with_whiteout_files(overlay_daemon):
    d = overlay_daemon
    info = d.client().get("/info")
    assert info["Driver"] == "fuse-overlayfs", info["DriverStatus"]
    assert dict(info["DriverStatus"])["Backing Filesystem"] == "overlayfs"
    d.ok("run", "--name", "changed", IMAGE, "sh", "-c", CHANGES)
    try:
        # The form this file is about: fuse-overlayfs could not make a whiteout device here.
        upper = d.backing / "upper"
        assert [p.name for p in upper.glob("containers/*/diff/bin/.wh.ls")] == [".wh.ls"]
        assert list(upper.glob("containers/*/diff/usr/sbin/.wh..wh..opq"))
    finally:
        d.ok("rm", "changed")


def test_diff_shows_the_deleted_file_once_and_no_marker(overlay_daemon):
    d = overlay_daemon
    d.ok("run", "--name", "changed", IMAGE, "sh", "-c", CHANGES)
    try:
        assert d.ok("diff", "changed").splitlines() == [
            "C /bin", "D /bin/ls", "C /etc", "C /etc/group", "C /usr", "C /usr/sbin", "A /usr/sbin/mine"]
    finally:
        d.ok("rm", "changed")


def test_commit_keeps_the_deletions(overlay_daemon, tmp_path):
    d = overlay_daemon
    d.ok("run", "--name", "changed", IMAGE, "sh", "-c", CHANGES)
    try:
        d.ok("commit", "changed", "committed:1")
    finally:
        d.ok("rm", "changed")
    try:
        out = d.ok("run", "--rm", "committed:1", "sh", "-c",
                   "test -e /bin/ls && echo ls; test -e /bin/mt && echo mt; echo /usr/sbin/*; tail -n 1 /etc/group")
        assert out.splitlines() == ["mt", "/usr/sbin/mine", "more"]
        d.ok("save", "-o", str(tmp_path / "saved.tar"), "committed:1")
        names = _top_layer_names(tmp_path / "saved.tar")
        assert names.count("bin/.wh.ls") == 1 and "bin/ls" not in names and "bin/mt" not in names
        assert names.count("usr/sbin/.wh..wh..opq") == 1
        assert sorted(n for n in names if n.startswith("usr/sbin/")) == ["usr/sbin/.wh..wh..opq", "usr/sbin/mine"]
        fresh = d.ok("create", "committed:1", "true").strip()
        try:
            assert d.ok("diff", fresh) == ""
        finally:
            d.ok("rm", fresh)
    finally:
        d.ok("rmi", "committed:1")


def _top_layer_names(saved):
    with tarfile.open(saved) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        layer = archive.extractfile(manifest[0]["Layers"][-1])
        with tarfile.open(fileobj=layer) as tar:
            return [name.removeprefix("./").rstrip("/") for name in tar.getnames()]


@pytest.mark.parametrize("state", ["stopped", "running"])
def test_export_and_cp_show_the_container_s_files_without_markers(overlay_daemon, tmp_path, state):
    d = overlay_daemon
    command = CHANGES + (" && sleep 1000" if state == "running" else "")
    d.ok("run", "-d", "--name", "changed", IMAGE, "sh", "-c", command)
    try:
        if state == "running":
            _wait_for(lambda: "A /usr/sbin/mine" in d.ok("diff", "changed"))
        else:
            d.ok("wait", "changed")
        d.ok("export", "-o", str(tmp_path / "fs.tar"), "changed")
        with tarfile.open(tmp_path / "fs.tar") as tar:
            names = [name.removeprefix("./").rstrip("/") for name in tar.getnames()]
            assert "bin/ls" not in names and "bin/mt" in names
            assert not [n for n in names if os.path.basename(n).startswith(".wh.")]
            assert sorted(n for n in names if n.startswith("usr/sbin/")) == ["usr/sbin/mine"]
            assert tar.extractfile("etc/group").read().decode().endswith("more\n")
        d.ok("cp", "changed:/usr/sbin", str(tmp_path / "sbin"))
        assert os.listdir(tmp_path / "sbin") == ["mine"]
        missing = d.cli("cp", "changed:/bin/ls", str(tmp_path / "ls"))
        assert missing.returncode != 0 and "Traceback" not in missing.stderr
    finally:
        d.ok("rm", "-f", "changed")


def _wait_for(predicate, timeout=20):
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_containers_on_fuse_overlayfs_leave_no_mount_or_process(overlay_daemon, tmp_path):
    d = overlay_daemon
    container = d.ok("run", "-d", "-v", "ovlvol:/vol", IMAGE, "sleep", "1000").strip()
    try:
        assert _fuse_overlayfs_processes(d)
        assert d.ok("exec", container, "sh", "-c", "echo hi > /vol/x && cat /vol/x") == "hi\n"
        d.ok("exec", container, "rm", "/bin/ls")
        changes = d.ok("diff", container).splitlines()
        assert "D /bin/ls" in changes and not [c for c in changes if "/bin/mt" in c or ".wh." in c]
    finally:
        d.ok("rm", "-f", container)
    assert d.ok("run", "--rm", "-v", "ovlvol:/vol", IMAGE, "cat", "/vol/x") == "hi\n"
    d.ok("volume", "rm", "ovlvol")
    _wait_for(lambda: not _fuse_overlayfs_processes(d))
    assert [line for line in mounts_of(daemon_pid(d)).splitlines() if f"{d.data_root}/containers" in line] == []
    d.stop()
    assert _fuse_overlayfs_processes(d) == []


def test_doctor_names_the_overlayfs_data_root_as_the_cause(overlay_daemon):
    d = overlay_daemon
    # Where the daemon sees its data root: its mount namespace (rootless: its user namespace too).
    enter = ["nsenter", "-t", str(d.holder), "-U", "-m"] if ROOTLESS else ["nsenter", "-t", str(daemon_pid(d)), "-m"]
    # setns into a mount namespace moves the working directory to its root: an absolute PYTHONPATH.
    import minictr

    env = {**os.environ, "PYTHONPATH": str(Path(minictr.__file__).resolve().parents[1])}
    doctor = subprocess.run([*enter, sys.executable, "-m", "minictr", "doctor", "--data-root", str(d.data_root)],
                            capture_output=True, text=True, timeout=60, env=env)
    lines = doctor.stdout.splitlines()
    overlay = next(line for line in lines if line.startswith("warn  overlayfs:"))
    assert "the data root is on overlayfs" in overlay, doctor.stdout
    assert "fuse-overlayfs is used instead" in overlay and "tmpfs" in overlay and "kernel >=" not in overlay
    assert any(line.startswith("warn  storage driver: fuse-overlayfs") for line in lines)
