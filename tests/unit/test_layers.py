"""Layer extraction treats every tar as hostile, keeps metadata and makes overlay whiteouts."""

import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile

import pytest

from minictr.errors import InvalidArgument
from minictr.images import layers
from minictr.images.layers import extract_layer

pytestmark = pytest.mark.whiteout_fs

try:
    import zstandard
except ImportError:
    zstandard = None


@pytest.fixture
def work(tmp_path):
    (tmp_path / "layers").mkdir()
    (tmp_path / "outside").mkdir()
    yield tmp_path
    layers.remove_tree(tmp_path)


def tar_bytes(*entries, fmt=tarfile.PAX_FORMAT) -> bytes:
    """entries: (name, kind, extra) with kind file|dir|symlink|link|chr|fifo."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for name, kind, *rest in entries:
            options = rest[0] if rest else {}
            info = tarfile.TarInfo(name)
            info.mtime = options.get("mtime", 1_700_000_000)
            info.uid, info.gid = options.get("owner", (0, 0))
            info.pax_headers = options.get("pax", {})
            data = options.get("data", b"")
            if kind == "file":
                info.size, info.mode = len(data), options.get("mode", 0o644)
                archive.addfile(info, io.BytesIO(data))
                continue
            info.type, info.mode = {
                "dir": (tarfile.DIRTYPE, 0o755), "symlink": (tarfile.SYMTYPE, 0o777),
                "link": (tarfile.LNKTYPE, 0o644), "chr": (tarfile.CHRTYPE, 0o666),
                "fifo": (tarfile.FIFOTYPE, 0o644),
            }[kind]
            info.mode = options.get("mode", info.mode)
            info.linkname = options.get("target", "")
            info.devmajor, info.devminor = options.get("dev", (0, 0))
            archive.addfile(info)
    return buffer.getvalue()


def extract(work, data: bytes, rootless=False, **options):
    staged = extract_layer(io.BytesIO(data), work / "layers", rootless=rootless, **options)
    path, _ = staged.install(work / "layers")
    return path


def assert_nothing_left(work):
    assert os.listdir(work / "layers") == [], "a partial layer was left behind"
    assert os.listdir(work / "outside") == [], "something was written outside the layer"


# --- what a layer keeps ---

def test_the_diff_id_is_the_sha256_of_the_uncompressed_tar_and_names_the_directory(work):
    data = tar_bytes(("etc", "dir"), ("etc/hostname", "file", {"data": b"box\n"}))
    compressed = gzip.compress(data)
    staged = extract_layer(io.BytesIO(compressed), work / "layers", rootless=False)
    assert staged.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert staged.digest == "sha256:" + hashlib.sha256(compressed).hexdigest()
    path, created = staged.install(work / "layers")
    assert created and path.name == hashlib.sha256(data).hexdigest()
    assert (path / "etc/hostname").read_bytes() == b"box\n"
    assert staged.size == 4


@pytest.mark.skipif(zstandard is None, reason="zstandard not installed")
def test_zstd_layers_are_detected_by_their_magic(work):
    data = tar_bytes(("a", "file", {"data": b"zstd"}))
    path = extract(work, zstandard.ZstdCompressor().compress(data))
    assert (path / "a").read_bytes() == b"zstd"
    assert path.name == hashlib.sha256(data).hexdigest()


def test_owners_modes_mtimes_and_xattrs_are_kept(work):
    data = tar_bytes(
        ("bin", "dir", {"mode": 0o711, "mtime": 1_600_000_000}),
        ("bin/su", "file", {"data": b"x", "mode": 0o4755, "owner": (0, 0)}),
        ("home", "dir"),
        ("home/u", "file", {"owner": (1000, 1001), "mode": 0o600,
                            "pax": {"SCHILY.xattr.user.note": "kept"}}),
        ("link", "symlink", {"target": "/bin/su", "owner": (1000, 1000)}),
        ("pipe", "fifo"),
    )
    path = extract(work, data)
    su = os.stat(path / "bin/su")
    assert stat.S_IMODE(su.st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(path / "bin").st_mode) == 0o711
    assert os.stat(path / "bin").st_mtime == 1_600_000_000
    home = os.stat(path / "home/u")
    assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)) == (1000, 1001, 0o600)
    assert os.getxattr(path / "home/u", "user.note") == b"kept"
    assert os.readlink(path / "link") == "/bin/su"
    assert os.lstat(path / "link").st_uid == 1000
    assert stat.S_ISFIFO(os.stat(path / "pipe").st_mode)


def test_a_layer_cannot_smuggle_overlay_xattrs(work):
    data = tar_bytes(("d", "dir", {"pax": {"SCHILY.xattr.trusted.overlay.redirect": "/etc"}}))
    path = extract(work, data)
    assert "trusted.overlay.redirect" not in os.listxattr(path / "d")


def test_hard_links_inside_the_layer_work(work):
    data = tar_bytes(("bin", "dir"), ("bin/busybox", "file", {"data": b"bb"}),
                     ("bin/sh", "link", {"target": "bin/busybox"}))
    path = extract(work, data)
    assert os.stat(path / "bin/sh").st_ino == os.stat(path / "bin/busybox").st_ino


def test_absolute_names_are_taken_relative_to_the_layer_root_as_docker_does(work):
    data = tar_bytes(("/abs", "file", {"data": b"1"}), ("/../up", "file", {"data": b"2"}))
    path = extract(work, data)
    assert (path / "abs").read_bytes() == b"1"
    assert (path / "up").read_bytes() == b"2"
    assert_nothing_outside(work)


def assert_nothing_outside(work):
    assert os.listdir(work / "outside") == []
    assert sorted(os.listdir(work)) == ["layers", "outside"]


def test_later_entries_replace_earlier_ones_and_directories_merge(work):
    data = tar_bytes(("d", "dir"), ("d/a", "file", {"data": b"old"}), ("d", "dir", {"mode": 0o700}),
                     ("d/a", "file", {"data": b"new"}), ("e", "dir"), ("e/x", "file"), ("e", "file"))
    path = extract(work, data)
    assert (path / "d/a").read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(path / "d").st_mode) == 0o700
    assert (path / "e").is_file()


def test_device_nodes_are_created_as_root_and_skipped_rootless(work):
    data = tar_bytes(("null", "chr", {"dev": (1, 3)}))
    assert stat.S_ISCHR(os.stat(extract(work, data) / "null").st_mode)
    shutil.rmtree(work / "layers")
    (work / "layers").mkdir()
    assert not os.path.lexists(extract(work, data, rootless=True) / "null")


def test_an_existing_layer_is_shared_and_the_new_copy_discarded(work):
    data = tar_bytes(("a", "file"))
    first = extract_layer(io.BytesIO(data), work / "layers", rootless=False)
    second = extract_layer(io.BytesIO(data), work / "layers", rootless=False)
    assert first.install(work / "layers")[1] is True
    path, created = second.install(work / "layers")
    assert created is False and path == first.path
    assert os.listdir(work / "layers") == [path.name]


# --- hostile archives ---

def test_dot_dot_names_are_refused(work):
    with pytest.raises(InvalidArgument, match=r"layer entry `\.\./outside/x` escapes the layer directory"):
        extract(work, tar_bytes(("ok", "file"), ("../outside/x", "file", {"data": b"pwned"})))
    assert_nothing_left(work)


def test_names_that_climb_out_after_cleaning_are_refused(work):
    with pytest.raises(InvalidArgument, match="escapes the layer directory"):
        extract(work, tar_bytes(("a/../../outside/x", "file")))
    assert_nothing_left(work)


def test_entries_below_a_symlinked_parent_are_refused(work):
    data = tar_bytes(("evil", "symlink", {"target": str(work / "outside")}),
                     ("evil/pwned", "file", {"data": b"pwned"}))
    with pytest.raises(InvalidArgument, match="layer entry `evil/pwned` goes through `evil`, a symbolic link"):
        extract(work, data)
    assert_nothing_left(work)


def test_entries_below_a_relative_symlink_are_refused_too(work):
    data = tar_bytes(("d", "dir"), ("d/up", "symlink", {"target": "../../outside"}), ("d/up/x", "file"))
    with pytest.raises(InvalidArgument, match="symbolic link"):
        extract(work, data)
    assert_nothing_left(work)


def test_hard_links_out_of_the_layer_are_refused(work):
    (work / "secret").write_text("s")
    with pytest.raises(InvalidArgument, match="hard link to `../secret`, outside the layer"):
        extract(work, tar_bytes(("h", "link", {"target": "../secret"})))
    (work / "secret").unlink()
    assert_nothing_left(work)


def test_absolute_hard_links_only_reach_inside_the_layer(work):
    with pytest.raises(InvalidArgument, match="hard link to `/etc/passwd`.*is not in the layer"):
        extract(work, tar_bytes(("h", "link", {"target": "/etc/passwd"})))
    assert_nothing_left(work)


def test_hard_links_through_a_symlink_are_refused(work):
    (work / "outside" / "secret").write_text("s")
    data = tar_bytes(("s", "symlink", {"target": str(work / "outside")}),
                     ("h", "link", {"target": "s/secret"}))
    with pytest.raises(InvalidArgument, match=r"hard link to `s/secret`\) goes through `s`, a symbolic link"):
        extract(work, data)
    assert os.stat(work / "outside" / "secret").st_nlink == 1
    (work / "outside" / "secret").unlink()
    assert_nothing_left(work)


def test_layers_over_the_size_limit_are_refused(work):
    data = tar_bytes(("big", "file", {"data": b"\0" * 200_000}))
    with pytest.raises(InvalidArgument, match="larger than the limit of 100000 bytes"):
        extract(work, gzip.compress(data), max_size=100_000)
    assert_nothing_left(work)


@pytest.mark.parametrize("data", [b"this is not a tar archive at all" * 40, b"", gzip.compress(b"text" * 300)])
def test_not_a_tar_is_refused(work, data):
    with pytest.raises(InvalidArgument, match="is not a tar archive"):
        extract(work, data)
    assert_nothing_left(work)


def test_a_truncated_archive_is_refused(work):
    data = gzip.compress(tar_bytes(("f", "file", {"data": b"x" * 5000})))
    with pytest.raises(InvalidArgument):
        extract(work, data[: len(data) // 2])
    assert_nothing_left(work)


# --- whiteouts ---

def whiteout_layers(work, rootless=False):
    lower = extract(work, tar_bytes(
        ("keep", "file", {"data": b"k"}), ("gone", "file"),
        ("d", "dir"), ("d/old", "file"), ("d/older", "file"),
    ), rootless=rootless)
    upper = extract(work, tar_bytes(
        (".wh.gone", "file"), ("d", "dir"), ("d/.wh..wh..opq", "file"), ("d/new", "file"),
    ), rootless=rootless)
    return lower, upper


def test_whiteouts_become_overlay_whiteouts_and_opaque_dirs(work):
    _, upper = whiteout_layers(work)
    gone = os.lstat(upper / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == os.makedev(0, 0)
    assert os.getxattr(upper / "d", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(upper)) == ["d", "gone"]
    assert os.listdir(upper / "d") == ["new"]


def test_rootless_opaque_dirs_use_user_xattrs(work):
    _, upper = whiteout_layers(work, rootless=True)
    assert os.getxattr(upper / "d", "user.overlay.opaque") == b"y"
    assert stat.S_ISCHR(os.lstat(upper / "gone").st_mode)


def test_rootless_whiteouts_fall_back_to_xattr_whiteouts_when_mknod_is_refused(work, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(layers.os, "mknod", refuse)
    path = extract(work, tar_bytes(("d", "dir"), ("d/.wh.x", "file")), rootless=True)
    assert (path / "d/x").is_file()
    assert os.getxattr(path / "d/x", "user.overlay.whiteout") == b""
    assert os.getxattr(path / "d", "user.overlay.opaque") == b"x"


def test_a_whiteout_never_hides_its_own_layers_entries(work):
    path = extract(work, tar_bytes(("f", "file", {"data": b"mine"}), (".wh.f", "file")))
    assert (path / "f").read_bytes() == b"mine"


def overlay_listing(lowerdirs, options=""):
    """`ls` of an overlay of the layers, mounted in a private mount namespace of its own."""
    script = ('set -e; m=$(mktemp -d); mount -t overlay overlay -o "lowerdir=$1$2" "$m"; '
              'cd "$m"; ls -A . d; cd /; umount "$m"; rmdir "$m"')
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                             ":".join(str(p) for p in lowerdirs), options],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount overlay here: {result.stderr.strip()}")
    return result.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting overlay needs root")
def test_overlay_applies_the_whiteouts(work):
    lower, upper = whiteout_layers(work)
    listing = overlay_listing([upper, lower])
    assert listing == ".:\nd\nkeep\n\nd:\nnew\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting overlay needs root")
def test_overlay_with_userxattr_applies_rootless_whiteouts(work):
    lower, upper = whiteout_layers(work, rootless=True)
    listing = overlay_listing([upper, lower], ",userxattr")
    assert listing == ".:\nd\nkeep\n\nd:\nnew\n"
