"""Storage drivers: the vfs copy of layers, whiteouts of both forms applied; doctor's driver line."""

import io
import os
import stat
import tarfile

import pytest

from minictr import doctor
from minictr.images import driver
from minictr.images.layers import extract_layer, remove_tree
from minictr.images.overlay_upper import Marker, overlay_marker


def layer(tmp_path, name, *entries):
    """A layer directory extracted (as the store does) from (name, kind, data) entries."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as out:
        for path, kind, data in entries:
            info = tarfile.TarInfo(path)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                out.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, data
                out.addfile(info)
            else:
                info.size, info.mode = len(data), 0o4755 if path.endswith("suid") else 0o644
                out.addfile(info, io.BytesIO(data))
    layers_dir = tmp_path / "layers"
    layers_dir.mkdir(exist_ok=True)
    staged = extract_layer(io.BytesIO(buffer.getvalue()), layers_dir, rootless=False)
    final = tmp_path / name
    os.rename(staged.path, final)
    return final


@pytest.fixture
def top(tmp_path):
    (tmp_path / "c" / "rootfs").mkdir(parents=True)
    yield tmp_path
    remove_tree(tmp_path)


def test_vfs_copies_layers_bottom_up_applying_whiteouts_and_opaque_dirs(top):
    bottom = layer(top, "l1", ("data", "dir", b""), ("data/keep", "file", b"kept"), ("data/gone", "file", b"x"),
                   ("opq", "dir", b""), ("opq/old", "file", b"old"), ("bin", "dir", b""),
                   ("bin/suid", "file", b"s"), ("bin/hard", "link", "bin/suid"))
    upper = layer(top, "l2", ("data", "dir", b""), ("data/.wh.gone", "file", b""),
                  ("opq", "dir", b""), ("opq/.wh..wh..opq", "file", b""), ("opq/new", "file", b"new"))
    driver.copy_layers([upper, bottom], str(top / "c"))
    rootfs = top / "c" / "rootfs"
    assert sorted(os.listdir(rootfs / "data")) == ["keep"]
    assert sorted(os.listdir(rootfs / "opq")) == ["new"]
    assert os.stat(rootfs / "bin" / "suid").st_mode & 0o7777 == 0o4755
    assert os.stat(rootfs / "bin" / "hard").st_ino == os.stat(rootfs / "bin" / "suid").st_ino
    # The layers are untouched, and a second start does not copy again.
    assert (bottom / "data" / "gone").exists() and (bottom / "opq" / "old").exists()
    (rootfs / "data" / "mine").write_text("written")
    driver.copy_layers([upper, bottom], str(top / "c"))
    assert (rootfs / "data" / "mine").read_text() == "written"


def test_vfs_reads_the_oci_form_of_whiteouts_too(top):
    bottom = layer(top, "l1", ("d", "dir", b""), ("d/a", "file", b"a"), ("d/b", "file", b"b"))
    upper = top / "l2"
    (upper / "d").mkdir(parents=True)
    (upper / "d" / ".wh.a").write_bytes(b"")
    driver.copy_layers([upper, bottom], str(top / "c"))
    assert os.listdir(top / "c" / "rootfs" / "d") == ["b"]


def test_doctor_names_the_fallback_driver(tmp_path):
    failed = doctor.Result("overlayfs", doctor.FAIL, "mount overlay: Invalid argument (on /x)", "fix")
    assert doctor.storage_driver(doctor.Result("overlayfs", doctor.OK, "works", "")).message == "overlay2"
    with_fuse = doctor.storage_driver(failed)
    assert with_fuse.status == doctor.WARN and with_fuse.message.startswith("fuse-overlayfs")
    empty = tmp_path / "bin"
    empty.mkdir()
    without = doctor.storage_driver(failed, search_path=str(empty))
    assert without.status == doctor.WARN and without.message.startswith("vfs") and "fuse-overlayfs" in without.fix


@pytest.mark.whiteout_fs
def test_a_whiteout_device_counts_as_a_whiteout(top):
    path = top / "wh"
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert overlay_marker(fd, "wh", os.lstat(path)) == Marker("wh")
    finally:
        os.close(fd)
