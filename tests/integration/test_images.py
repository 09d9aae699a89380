"""Images from tarballs: `import`, `load`, `images`, `image inspect`, `rmi` — and hostile tarballs refused."""

import io
import json
import hashlib
import os
import tarfile

import pytest


def test_import_applies_changes_and_lists_the_image(daemon, busybox_tar):
    daemon.ok("import", "--change", "ENV GREETING hi there", "--change", "WORKDIR /srv",
              "--change", 'ENTRYPOINT ["/bin/sh", "-c"]', "--change", 'CMD ["echo $GREETING from $(pwd)"]',
              str(busybox_tar), "imported:v1")
    assert daemon.ok("run", "--rm", "imported:v1") == "hi there from /srv\n"
    listing = daemon.ok("images")
    assert any(line.split()[:2] == ["imported", "v1"] for line in listing.splitlines())
    inspect = json.loads(daemon.ok("image", "inspect", "imported:v1"))[0]
    assert inspect["Config"]["WorkingDir"] == "/srv"
    assert inspect["RepoTags"] == ["imported:v1"]
    assert inspect["Id"].startswith("sha256:") and len(inspect["RootFS"]["Layers"]) == 1
    removed = daemon.ok("rmi", "imported:v1")
    assert "Untagged: imported:v1" in removed and "Deleted: sha256:" in removed
    assert daemon.cli("image", "inspect", "imported:v1").returncode == 1


def test_entrypoint_override_drops_the_image_cmd(daemon, busybox_tar):
    daemon.ok("import", "--change", 'ENTRYPOINT ["echo", "from-entrypoint"]', "--change", 'CMD ["from-cmd"]',
              str(busybox_tar), "entry")
    assert daemon.ok("run", "--rm", "entry") == "from-entrypoint from-cmd\n"
    assert daemon.ok("run", "--rm", "entry", "other") == "from-entrypoint other\n"
    assert daemon.ok("run", "--rm", "--entrypoint", "echo", "entry") == "\n"
    assert daemon.ok("run", "--rm", "--entrypoint", "echo", "entry", "x") == "x\n"
    daemon.ok("rmi", "entry")


def test_image_user_applies_unless_overridden(daemon, busybox_tar):
    daemon.ok("import", "--change", "USER nobody", str(busybox_tar), "as-nobody")
    assert daemon.ok("run", "--rm", "as-nobody", "id", "-un") == "nobody\n"
    assert daemon.ok("run", "--rm", "-u", "0", "as-nobody", "id", "-un") == "root\n"
    daemon.ok("rmi", "as-nobody")


def _docker_save_archive(busybox_tar, path, tag):
    layer = busybox_tar.read_bytes()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["echo", "loaded"], "Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["abc/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in ((config_name, config), ("abc/layer.tar", layer), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_load_a_docker_save_archive_and_run_it(daemon, busybox_tar, tmp_path):
    archive = _docker_save_archive(busybox_tar, tmp_path / "saved.tar", "saved:1")
    assert "Loaded image: saved:1" in daemon.ok("load", "-i", str(archive))
    assert daemon.ok("run", "--rm", "saved:1") == "loaded\n"
    daemon.ok("rmi", "saved:1")


def test_rmi_refuses_an_image_in_use(daemon, busybox_tar):
    daemon.ok("import", str(busybox_tar), "in-use")
    daemon.ok("create", "--name", "user-of-image", "in-use", "true")
    refused = daemon.cli("rmi", "in-use")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    daemon.ok("rm", "user-of-image")
    daemon.ok("rmi", "in-use")


def _one_line_error(result):
    return result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_unknown_image_is_one_line(daemon):
    result = daemon.cli("run", "--rm", "--pull", "never", "no-such-image", "true")
    assert _one_line_error(result) and "no-such-image" in result.stderr
    assert daemon.ok("ps", "-a", "-q") == ""


def test_not_a_tarball_is_refused_and_leaves_nothing(daemon, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(4096))
    before = daemon.ok("images", "-q")
    result = daemon.cli("import", str(junk), "junk")
    assert _one_line_error(result) and "tar" in result.stderr
    assert daemon.ok("images", "-q") == before
    assert not os.listdir(daemon.data_root / "image" / "tmp")


def _hostile_tar(path, build):
    with tarfile.open(path, "w") as tar:
        build(tar)
    return path


def _add_file(tar, name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_link(tar, name, target, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tar.addfile(info)


HOSTILE = {
    "dot-dot": lambda tar: _add_file(tar, "../escaped"),
    "deep-dot-dot": lambda tar: _add_file(tar, "a/../../escaped"),
    "symlinked-parent": lambda tar: (_add_link(tar, "evil", "/tmp", tarfile.SYMTYPE),
                                     _add_file(tar, "evil/escaped")),
    "hard-link-out": lambda tar: _add_link(tar, "passwd-copy", "../../../../etc/passwd", tarfile.LNKTYPE),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_tar_entries_that_leave_the_layer_are_refused(daemon, tmp_path, case):
    archive = _hostile_tar(tmp_path / f"{case}.tar", HOSTILE[case])
    before = daemon.ok("images", "-q")
    result = daemon.cli("import", str(archive), f"hostile-{case}")
    assert _one_line_error(result), result.stderr
    assert daemon.ok("images", "-q") == before
    assert not (tmp_path.parent / "escaped").exists() and not os.path.exists("/tmp/escaped")
    layers = daemon.data_root / "image" / "layers"
    assert all(not name.startswith(".") for name in os.listdir(layers)) if layers.exists() else True


def test_absolute_names_stay_inside_the_layer(daemon, tmp_path):
    """Docker cleans `/x` to `x` inside the layer: it never writes to the host's /x."""
    marker = f"/tmp/minictr-absolute-{os.getpid()}"
    archive = _hostile_tar(tmp_path / "absolute.tar", lambda tar: _add_file(tar, marker, b"inside\n"))
    result = daemon.cli("import", str(archive), "absolute")
    assert not os.path.exists(marker)
    if result.returncode == 0:
        daemon.ok("rmi", "absolute")
    else:
        assert _one_line_error(result)
