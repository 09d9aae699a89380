"""The image store under a real daemon: whiteouts, many layers, storage drivers and their fallbacks,
a store other users cannot enter, failed loads that change nothing."""

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from .conftest import ROOTLESS, Daemon, daemon_pid, expected_storage_driver, mounts_of, overlay_backing_dir

SETUID_PROBE = "suid-file"


# --- archives built here ----------------------------------------------------------------------


def _tar(entries) -> bytes:
    """A layer tar from (name, kind, payload) with kind file/dir/char/link."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tar.addfile(info)
            else:
                data = payload.encode() if isinstance(payload, str) else payload
                info.size, info.mode = len(data), (0o4755 if name == SETUID_PROBE else 0o644)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _docker_save(path: Path, layers: list, tag: str, cmd=None) -> Path:
    """A `docker save` archive of an image with these layer tars (bottom first)."""
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": cmd or ["sh"], "Env": ["PATH=/bin:/usr/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    names = [f"{d.removeprefix('sha256:')}/layer.tar" for d in diff_ids]
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": names}]).encode()
    seen = set()
    with tarfile.open(path, "w") as tar:
        for name, data in [(config_name, config), *zip(names, layers), ("manifest.json", manifest)]:
            if name in seen:
                continue
            seen.add(name)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _whiteout_image(busybox_tar: Path, path: Path, tag: str) -> Path:
    """busybox, then a layer with /data/{keep,gone} and /opq/old, then one that deletes
    /data/gone (a whiteout) and makes /opq opaque with /opq/new in it."""
    second = _tar([("data", "dir", None), ("data/keep", "file", "kept\n"), ("data/gone", "file", "gone\n"),
                   ("opq", "dir", None), ("opq/old", "file", "old\n")])
    third = _tar([("data", "dir", None), ("data/.wh.gone", "file", ""),
                  ("opq", "dir", None), ("opq/.wh..wh..opq", "file", ""), ("opq/new", "file", "new\n")])
    return _docker_save(path, [busybox_tar.read_bytes(), second, third], tag)


def _tree(root: Path) -> dict:
    """Every path below `root` with its type, mode and size (and a link's target)."""
    listing = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            listing[os.path.relpath(path, root)] = (st.st_mode, st.st_size if not os.path.isdir(path) else 0,
                                                   os.readlink(path) if os.path.islink(path) else None)
    return listing


# --- whiteouts and many layers ----------------------------------------------------------------


def test_a_multi_layer_image_shows_whiteouts_and_opaque_dirs_as_deleted(daemon, busybox_tar, tmp_path):
    daemon.ok("load", "-i", str(_whiteout_image(busybox_tar, tmp_path / "wh.tar", "whiteouts:1")))
    try:
        out = daemon.ok("run", "--rm", "whiteouts:1", "sh", "-c",
                        "ls -a /data; echo --; ls -a /opq; echo --; cat /data/gone 2>&1 || echo absent")
        assert out.split("--\n") == [".\n..\nkeep\n", ".\n..\nnew\n", "cat: can't open '/data/gone': "
                                     "No such file or directory\nabsent\n"]
    finally:
        daemon.ok("rmi", "whiteouts:1")


def test_an_image_of_120_layers_runs(daemon, busybox_tar, tmp_path):
    layers = [busybox_tar.read_bytes()]
    layers += [_tar([("layers", "dir", None), (f"layers/{n:03d}", "file", f"{n}\n"), ("top", "file", f"{n}\n")])
               for n in range(1, 120)]
    daemon.ok("load", "-i", str(_docker_save(tmp_path / "many.tar", layers, "many-layers:1")))
    try:
        assert len(json.loads(daemon.ok("image", "inspect", "many-layers:1"))[0]["RootFS"]["Layers"]) == 120
        out = daemon.ok("run", "--rm", "many-layers:1", "sh", "-c", "ls /layers | wc -l; cat /top")
        assert out.split() == ["119", "119"]
    finally:
        daemon.ok("rmi", "many-layers:1")


def test_layer_links_are_short_and_inside_the_store(daemon, image):
    daemon.ok("run", "--rm", image, "true")
    links = daemon.data_root / "image" / "l"
    names = os.listdir(links)
    assert names and all(len(name) == 26 for name in names)
    for name in names:
        target = os.readlink(links / name)
        assert target.startswith("../layers/") and (links / target).is_dir()


def test_info_and_doctor_name_the_storage_driver(daemon):
    info = daemon.client().get("/info")
    driver = expected_storage_driver(daemon.data_root)
    assert info["Driver"] == driver
    doctor = subprocess.run([*daemon_cli_prefix(), "doctor", "--data-root", str(daemon.data_root)],
                            capture_output=True, text=True)
    # overlay2 is "ok"; the fuse-overlayfs fallback (a data root on overlayfs) is a warning that says why.
    status = "ok" if driver == "overlay2" else "warn"
    assert any(line.split()[:3] == [status, "storage", "driver:"] and line.split()[3].rstrip(":") == driver
               for line in doctor.stdout.splitlines()), doctor.stdout


def daemon_cli_prefix():
    import sys

    return [sys.executable, "-m", "minictr"]


# --- a store other users cannot enter -------------------------------------------------------


def test_setuid_files_are_kept_but_the_store_is_closed_to_other_users(daemon, busybox_tar, tmp_path):
    layer = _tar([(SETUID_PROBE, "file", "#!/bin/sh\necho hi\n")])
    daemon.ok("load", "-i", str(_docker_save(tmp_path / "suid.tar", [busybox_tar.read_bytes(), layer], "suid:1")))
    try:
        diff_id = json.loads(daemon.ok("image", "inspect", "suid:1"))[0]["RootFS"]["Layers"][1]
        path = daemon.data_root / "image" / "layers" / diff_id.removeprefix("sha256:") / SETUID_PROBE
        assert os.stat(path).st_mode & 0o7777 == 0o4755
        for directory in (daemon.data_root / "image", daemon.data_root / "image" / "layers"):
            assert os.stat(directory).st_mode & 0o077 == 0, f"{directory} is open to other users"
        if not ROOTLESS:  # another host user cannot even reach it
            other = subprocess.run(["runuser", "-u", "nobody", "--", "stat", str(path)],
                                   capture_output=True, text=True)
            assert other.returncode != 0 and "Permission denied" in other.stderr
    finally:
        daemon.ok("rmi", "suid:1")


# --- failed loads change nothing ------------------------------------------------------------


def _hostile_archives(busybox_tar, tmp_path):
    base = busybox_tar.read_bytes()
    escape = _tar([("../escaped", "file", "x")])
    through_symlink = _tar([("etc", "symlink", "/etc"), ("etc/passwd", "file", "owned\n")])
    good = _tar([("fine", "file", "fine\n")])
    wrong_digest = _docker_save(tmp_path / "wrong.tar", [base, good], "hostile:wrong")
    with tarfile.open(wrong_digest) as tar:  # rewrite the config's diff id for the second layer
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    return {
        "escape": _docker_save(tmp_path / "escape.tar", [base, escape], "hostile:escape"),
        "symlink": _docker_save(tmp_path / "symlink.tar", [base, through_symlink], "hostile:symlink"),
        "digest": _with_wrong_layer(tmp_path / "digest.tar", members),
    }


def _with_wrong_layer(path, members):
    layer_names = [n for n in members if n.endswith("/layer.tar")]
    members[layer_names[-1]] = _tar([("not-what-the-config-says", "file", "x")])
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("case", ["escape", "symlink", "digest"])
def test_a_failed_load_leaves_the_store_exactly_as_it_was(daemon, image, busybox_tar, tmp_path, case):
    archive = _hostile_archives(busybox_tar, tmp_path)[case]
    before = _tree(daemon.data_root / "image")
    images_before = daemon.ok("images", "-q", "--no-trunc")
    result = daemon.cli("load", "-i", str(archive))
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert _tree(daemon.data_root / "image") == before
    assert daemon.ok("images", "-q", "--no-trunc") == images_before
    assert open("/etc/passwd").read().find("owned") < 0


# --- fallbacks: fuse-overlayfs and vfs ------------------------------------------------------


class _DriverDaemon(Daemon):
    def __init__(self, top, env):
        super().__init__(top)
        self.env = env

    def start(self):
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            super().start()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _driver_daemon(env, data_mount=None):
    top = Path(tempfile.mkdtemp(prefix="minictr-drv-"))
    os.chmod(top, 0o755)
    return _DriverDaemon(top, env)


def _check_a_container_runs_and_keeps_its_writes(d: Daemon, busybox_tar, tmp_path, driver):
    info = d.client().get("/info")
    assert info["Driver"] == driver, info["DriverStatus"]
    assert f"Storage Driver: {driver}" in d.ok("info")
    d.ok("load", "-i", str(_whiteout_image(busybox_tar, tmp_path / "wh.tar", "whiteouts:1")))
    out = d.ok("run", "--name", "writer", "whiteouts:1", "sh", "-c",
               "echo written > /data/keep; echo new > /made-here; ls /data; ls /opq; cat /data/keep")
    assert out.split() == ["keep", "new", "written"]
    # Another user of the container reads its files too (fuse: allow_other).
    assert d.ok("run", "--rm", "-u", "nobody", "whiteouts:1", "cat", "/opq/new") == "new\n"
    # The writes went to the container, not to the image's layers.
    # Read where the daemon sees its data root: its own mount namespace may hold it.
    layers = getattr(d, "seen_data_root", lambda: d.data_root)() / "image" / "layers"
    assert not list(layers.glob("*/made-here"))
    assert [p.read_text() for p in layers.glob("*/data/keep")] == ["kept\n"]
    # Started again: the container's own writes are still there.
    d.ok("start", "writer")
    try:
        assert d.ok("wait", "writer", timeout=20).strip() == "0"
    except subprocess.TimeoutExpired:
        raise AssertionError(f"wait hung: {d.cli('inspect', 'writer').stdout[:1500]}\n{d.log_tail(60)}") from None
    assert d.ok("logs", "writer").split()[-1] == "written"
    d.ok("rm", "writer")
    assert d.ok("run", "--rm", "whiteouts:1", "cat", "/data/keep") == "kept\n"
    # Nothing stays mounted: not in the daemon's namespace, no fuse-overlayfs process left.
    mounted = [line for line in mounts_of(daemon_pid(d)).splitlines() if f"{d.data_root}/containers" in line]
    assert mounted == []
    leftovers = subprocess.run(["pgrep", "-a", "-f", f"upperdir={d.data_root}"], capture_output=True, text=True)
    assert leftovers.stdout == ""
    d.ok("rmi", "whiteouts:1")


@pytest.mark.parametrize("driver", ["fuse-overlayfs", "vfs"])
def test_a_forced_fallback_driver_runs_containers(busybox_tar, tmp_path, driver):
    d = _driver_daemon({"MINICTR_STORAGE_DRIVER": driver})
    try:
        d.start()
        _check_a_container_runs_and_keeps_its_writes(d, busybox_tar, tmp_path, driver)
    finally:
        d.stop()
        subprocess.run(["rm", "-rf", str(d.top)], check=False)


def test_fuse_overlayfs_roots_honour_setuid_and_device_nodes(busybox_tar, tmp_path):
    """fuse-overlayfs mounts nosuid,nodev unless told otherwise: the container's setuid programs and,
    as root, its --device nodes must work as on overlay2 (a CI container's data root is on overlayfs,
    where fuse-overlayfs is what runs)."""
    d = _driver_daemon({"MINICTR_STORAGE_DRIVER": "fuse-overlayfs"})
    try:
        d.start()
        d.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), "busybox-fuse")
        root_mount = d.ok("run", "--rm", "busybox-fuse", "sh", "-c", "grep ' / / ' /proc/self/mountinfo")
        assert "fuse-overlayfs" in root_mount and "nosuid" not in root_mount, root_mount
        if not ROOTLESS:  # a user namespace's mounts are nodev whatever they ask, as Podman's
            assert "nodev" not in root_mount, root_mount
            out = d.ok("run", "--rm", "--device", "/dev/zero:/dev/myzero", "busybox-fuse",
                       "sh", "-c", "head -c 4 /dev/myzero | od -An -tx1")
            assert out.split() == ["00", "00", "00", "00"]
    finally:
        d.stop()
        subprocess.run(["rm", "-rf", str(d.top)], check=False)


if not ROOTLESS:
    class _OverlayDriverDaemon(_DriverDaemon):
        """A daemon whose data root is an overlay mounted in a mount namespace of its own (as in a CI
        job inside a container); nothing is mounted on the machine, and it goes with the daemon."""

        def __init__(self, top, env, backing):
            super().__init__(top, env)
            self.backing = backing
            self.data_root.mkdir()

        def _argv(self):
            b = self.backing
            return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    'mount -t overlay overlay -o "$1" "$2" && shift 2 && exec "$@"', "sh",
                    f"lowerdir={b}/lower,upperdir={b}/upper,workdir={b}/work", str(self.data_root),
                    *super()._argv()]

        def seen_data_root(self) -> Path:
            return Path(f"/proc/{daemon_pid(self)}/root{self.data_root}")

    @pytest.fixture
    def overlay_daemon_of(tmp_path):
        made = []

        def make(env):
            top = Path(tempfile.mkdtemp(prefix="minictr-ovl-"))
            os.chmod(top, 0o755)
            backing = overlay_backing_dir("minictr-ovl-backing-")
            for name in ("lower", "upper", "work"):
                (backing / name).mkdir(parents=True)
            made.append(_OverlayDriverDaemon(top, env, backing))
            return made[-1]

        yield make
        for d in made:
            d.stop()
            subprocess.run(["rm", "-rf", str(d.top), str(d.backing)], check=False)

    def test_a_data_root_on_overlayfs_falls_back_to_fuse_overlayfs(overlay_daemon_of, busybox_tar, tmp_path):
        d = overlay_daemon_of({})
        d.start()
        _check_a_container_runs_and_keeps_its_writes(d, busybox_tar, tmp_path, "fuse-overlayfs")
        status = dict(d.client().get("/info")["DriverStatus"])
        assert status["Backing Filesystem"] == "overlayfs" and "overlayfs does not work" in status["Reason"]
        doctor = subprocess.run(["nsenter", "-t", str(daemon_pid(d)), "-m", *daemon_cli_prefix(), "doctor",
                                 "--data-root", str(d.data_root)], capture_output=True, text=True)
        assert any(line.startswith("warn  storage driver: fuse-overlayfs") for line in doctor.stdout.splitlines())

    def test_a_data_root_on_overlayfs_without_fuse_overlayfs_falls_back_to_copies(
            overlay_daemon_of, busybox_tar, tmp_path):
        bare = tmp_path / "bin"  # a PATH without fuse-overlayfs
        bare.mkdir()
        for tool in ("unshare", "sh", "mount"):  # what the namespace's set-up runs before the daemon
            (bare / tool).symlink_to(shutil.which(tool))
        d = overlay_daemon_of({"PATH": str(bare)})
        d.start()
        _check_a_container_runs_and_keeps_its_writes(d, busybox_tar, tmp_path, "vfs")
