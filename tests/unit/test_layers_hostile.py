"""Hostile archives: each crafted tarball below must change nothing outside the layer directory
(compared as a listing of the whole work tree, the host's `outside` dir with its secret file
included), and a load that fails leaves the store exactly as it was."""

import gzip
import hashlib
import io
import json
import logging
import os
import tarfile

import pytest

from minictr.db import Database
from minictr.errors import InvalidArgument
from minictr.images import archive, layers
from minictr.images.layers import extract_layer
from minictr.images.store import SCHEMA, ImageStore


@pytest.fixture
def work(tmp_path):
    (tmp_path / "layers").mkdir()
    outside = tmp_path / "outside"
    (outside / "etc").mkdir(parents=True)
    (outside / "secret").write_text("secret\n")
    (outside / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    yield tmp_path
    layers.remove_tree(tmp_path)


def entry(name, kind="file", data=b"", target="", mode=None, dev=(0, 0)):
    return dict(name=name, kind=kind, data=data, target=target, mode=mode, dev=dev)


def tar_bytes(*entries) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as out:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.mtime = 1_700_000_000
            kind = e["kind"]
            if kind == "file":
                info.size, info.mode = len(e["data"]), e["mode"] or 0o644
                out.addfile(info, io.BytesIO(e["data"]))
                continue
            info.type, info.mode = {"dir": (tarfile.DIRTYPE, 0o755), "symlink": (tarfile.SYMTYPE, 0o777),
                                    "link": (tarfile.LNKTYPE, 0o644), "chr": (tarfile.CHRTYPE, 0o666),
                                    "blk": (tarfile.BLKTYPE, 0o660)}[kind]
            info.linkname = e["target"]
            info.devmajor, info.devminor = e["dev"]
            out.addfile(info)
    return buffer.getvalue()


def listing(root, dir_mtimes=True) -> dict:
    """Every path below `root` (the layers dir excluded) with what could change about it.
    Without `dir_mtimes`, a directory's mtime is left out (a staging dir made and removed in it)."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.samefile(dirpath, root):
            dirnames[:] = [d for d in dirnames if d != "layers"]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            content = open(path, "rb").read() if os.path.isfile(path) and not os.path.islink(path) else None
            mtime = st.st_mtime_ns if dir_mtimes or not os.path.isdir(path) else None
            result[os.path.relpath(path, root)] = (st.st_mode, st.st_nlink, mtime, content)
    return result


def refused(work, data: bytes, match: str, **options):
    """Extracting `data` fails with InvalidArgument matching `match`, leaving nothing anywhere."""
    before = listing(work)
    with pytest.raises(InvalidArgument, match=match):
        extract_layer(io.BytesIO(data), work / "layers", rootless=options.pop("rootless", False), **options)
    assert listing(work) == before, "something outside the layer changed"
    assert os.listdir(work / "layers") == [], "a partial layer was left behind"


def extracted(work, data: bytes, rootless=False):
    before = listing(work)
    staged = extract_layer(io.BytesIO(data), work / "layers", rootless=rootless)
    path, _ = staged.install(work / "layers")
    assert listing(work) == before, "something outside the layer changed"
    return path


# --- names ---------------------------------------------------------------------------------


def test_a_dot_dot_name_is_refused(work):
    refused(work, tar_bytes(entry("../outside/secret", data=b"overwritten")), "escapes the layer")


def test_a_name_that_climbs_out_after_cleaning_is_refused(work):
    refused(work, tar_bytes(entry("a/../../outside/new", data=b"x")), "escapes the layer")


def test_an_absolute_name_lands_inside_the_layer(work):
    absolute = str(work / "outside" / "secret")
    layer = extracted(work, tar_bytes(entry(absolute, data=b"inside")))
    assert (layer / absolute.lstrip("/")).read_bytes() == b"inside"
    assert (work / "outside" / "secret").read_text() == "secret\n"


# --- symlinks ------------------------------------------------------------------------------


def test_a_file_through_a_symlink_to_an_absolute_etc_is_refused(work):
    refused(work, tar_bytes(entry("etc", "symlink", target=str(work / "outside" / "etc")),
                            entry("etc/passwd", data=b"evil::0:0::/:/bin/sh\n")),
            "symbolic link")


def test_a_file_through_a_symlink_to_etc_is_refused(work):
    refused(work, tar_bytes(entry("etc", "symlink", target="/etc"), entry("etc/passwd", data=b"evil\n")),
            "symbolic link")


def test_a_file_through_a_symlink_to_a_parent_is_refused(work):
    refused(work, tar_bytes(entry("up", "symlink", target="../outside"), entry("up/secret", data=b"x")),
            "symbolic link")


def test_a_file_through_a_chain_of_symlinks_is_refused(work):
    refused(work, tar_bytes(entry("a", "symlink", target="b"), entry("b", "symlink", target=".."),
                            entry("a/outside/secret", data=b"x")), "symbolic link")


# --- hard links ----------------------------------------------------------------------------


def test_a_hard_link_to_a_path_outside_is_refused(work):
    refused(work, tar_bytes(entry("stolen", "link", target="../outside/secret")), "outside the layer")


def test_an_absolute_hard_link_only_reaches_inside_the_layer(work):
    refused(work, tar_bytes(entry("stolen", "link", target=str(work / "outside" / "secret"))),
            "not in the layer")


def test_a_hard_link_through_a_symlinked_directory_is_refused(work):
    refused(work, tar_bytes(entry("d", "symlink", target=str(work / "outside")),
                            entry("stolen", "link", target="d/secret")), "symbolic link")


def test_a_hard_link_then_written_through_cannot_reach_outside(work):
    # A link to a symlink links the symlink itself, never what it points to.
    layer = extracted(work, tar_bytes(entry("s", "symlink", target=str(work / "outside" / "secret")),
                                      entry("h", "link", target="s")))
    assert os.path.islink(layer / "h") and os.lstat(layer / "h").st_ino == os.lstat(layer / "s").st_ino


# --- whiteouts -----------------------------------------------------------------------------


def test_a_whiteout_through_a_symlink_is_refused(work):
    refused(work, tar_bytes(entry("s", "symlink", target=str(work / "outside")), entry("s/.wh.secret")),
            "symbolic link")


def test_an_opaque_marker_through_a_symlink_is_refused(work):
    refused(work, tar_bytes(entry("s", "symlink", target=str(work / "outside")), entry("s/.wh..wh..opq")),
            "symbolic link")


@pytest.mark.parametrize("name", [".wh...", "sub/.wh...", ".wh..", ".wh."])
def test_a_whiteout_of_dot_dot_or_nothing_is_refused(work, name):
    refused(work, tar_bytes(entry(name)), "not a valid whiteout")


def test_a_whiteout_that_climbs_out_is_refused(work):
    refused(work, tar_bytes(entry("../outside/.wh.secret")), "escapes the layer")


# --- device nodes, setuid ---------------------------------------------------------------------


def test_device_nodes_are_skipped_with_a_warning_when_rootless(work, caplog):
    with caplog.at_level(logging.WARNING, logger="minictr.images"):
        layer = extracted(work, tar_bytes(entry("dev", "dir"), entry("dev/sda", "blk", dev=(8, 0)),
                                          entry("dev/mem", "chr", dev=(1, 1))), rootless=True)
    assert os.listdir(layer / "dev") == []
    assert "dev/sda" in caplog.text and "dev/mem" in caplog.text and "skipped" in caplog.text


if os.geteuid() == 0:  # creating device nodes needs root
    def test_device_nodes_are_created_as_root(work):
        layer = extracted(work, tar_bytes(entry("null", "chr", dev=(1, 3))))
        assert os.stat(layer / "null").st_rdev == os.makedev(1, 3)


def test_setuid_files_are_kept(work):
    layer = extracted(work, tar_bytes(entry("su", data=b"#!/bin/sh\n", mode=0o4755),
                                      entry("sg", data=b"#!/bin/sh\n", mode=0o2755)))
    assert os.stat(layer / "su").st_mode & 0o7777 == 0o4755
    assert os.stat(layer / "sg").st_mode & 0o7777 == 0o2755


# --- size bounds -------------------------------------------------------------------------------


def test_a_layer_that_decompresses_past_the_bound_fails_cleanly(work):
    bomb = gzip.compress(tar_bytes(entry("zeros", data=bytes(8 << 20))), compresslevel=9)
    assert len(bomb) < 64 << 10
    refused(work, bomb, "larger than the limit", max_size=1 << 20)


# --- load: a failure leaves the store exactly as it was ---------------------------------------


@pytest.fixture
def store(tmp_path):
    db = Database(tmp_path / "minictr.db", [SCHEMA])
    yield ImageStore(db, tmp_path / "root", rootless=False)
    db.close()
    layers.remove_tree(tmp_path)


def docker_save(layer_tars, config_extra=None, wrong_diff_id=False, manifest_pad=0) -> bytes:
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in layer_tars]
    if wrong_diff_id:
        diff_ids[-1] = "sha256:" + "0" * 64
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}, **(config_extra or {})}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    names = [f"l{n}/layer.tar" for n in range(len(layer_tars))]
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["hostile:1"], "Layers": names,
                            "Pad": "x" * manifest_pad}]).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        for name, data in [(config_name, config), *zip(names, layer_tars), ("manifest.json", manifest)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def store_listing(store) -> tuple:
    rows = [tuple(r) for table in ("images", "layers", "image_layers", "image_references")
            for r in store.db.query(f"SELECT * FROM {table}")]
    return rows, listing(store.root, dir_mtimes=False)


GOOD = tar_bytes(entry("bin", "dir"), entry("bin/sh", data=b"#!fake\n"))


def failed_load_changes_nothing(store, data: bytes, match: str):
    store.load(io.BytesIO(docker_save([GOOD])))  # something already there, that must stay
    before = store_listing(store)
    with pytest.raises(InvalidArgument, match=match):
        store.load(io.BytesIO(data))
    assert store_listing(store) == before


def test_a_load_with_a_hostile_layer_changes_nothing(store):
    hostile = tar_bytes(entry("etc", "symlink", target="/etc"), entry("etc/passwd", data=b"evil\n"))
    failed_load_changes_nothing(store, docker_save([GOOD, tar_bytes(entry("fine")), hostile]), "symbolic link")


def test_a_load_whose_layer_does_not_match_its_digest_changes_nothing(store):
    failed_load_changes_nothing(store, docker_save([GOOD, tar_bytes(entry("x"))], wrong_diff_id=True),
                                "diff id mismatch")


def test_a_load_with_a_manifest_over_the_bound_changes_nothing(store, monkeypatch):
    monkeypatch.setattr(archive, "MAX_JSON_BLOB", 4096)
    failed_load_changes_nothing(store, docker_save([GOOD], manifest_pad=8192), "manifest.json.*too large")


def test_a_load_with_a_config_over_the_bound_changes_nothing(store, monkeypatch):
    monkeypatch.setattr(archive, "MAX_JSON_BLOB", 4096)
    failed_load_changes_nothing(store, docker_save([GOOD], config_extra={"pad": "x" * 8192}), "too large")


def test_a_load_with_a_layer_past_the_size_bound_changes_nothing(store):
    store.max_layer_size = 1 << 20
    bomb = gzip.compress(tar_bytes(entry("zeros", data=bytes(4 << 20))))
    failed_load_changes_nothing(store, docker_save([GOOD, bomb]), "larger than the limit")
