"""The image store: docker import and load, list/inspect/remove in the Engine API's shapes."""

import gzip
import hashlib
import io
import json
import os
import tarfile

import pytest

from minictr.db import Database
from minictr.errors import Conflict, InvalidArgument, NotFound
from minictr.images.layers import remove_tree
from minictr.images.store import SCHEMA, ImageStore


@pytest.fixture
def store(tmp_path):
    db = Database(tmp_path / "minictr.db", [SCHEMA])
    yield ImageStore(db, tmp_path, rootless=False)
    db.close()
    remove_tree(tmp_path)


def not_used(image_id):
    return False


class Unseekable:
    """An HTTP body: read() only."""

    def __init__(self, data: bytes):
        self._buffer = io.BytesIO(data)

    def read(self, size=-1):
        return self._buffer.read(size)


def tar_of(files: dict) -> bytes:
    """A tar of {name: bytes} (directories for names ending in /)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = 1_700_000_000
            if name.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


ROOTFS = tar_of({"bin/": b"", "bin/sh": b"#!fake\n", "etc/": b"", "etc/passwd": b"root:x:0:0::/root:/bin/sh\n"})


def stored_state(store):
    """What a failed operation must leave untouched."""
    rows = store.db.query("SELECT id FROM images") + store.db.query("SELECT diff_id FROM layers")
    files = [p for d in (store.layers_dir, store.configs_dir, store.tmp_dir) for p in os.listdir(d)]
    return rows, files


# --- import ---

def test_import_with_changes_produces_the_config_and_tags(store):
    changes = ['CMD ["sh"]', "ENTRYPOINT /init --fast", "ENV PATH=/bin:/usr/bin GREETING=\"hi there\"",
               "ENV LEGACY some value", "WORKDIR /srv", "USER nobody", "EXPOSE 80 53/udp",
               'LABEL org.example.a=1 b="two words"', 'VOLUME ["/data"]', "STOPSIGNAL SIGINT"]
    image_id = store.import_tar(io.BytesIO(gzip.compress(ROOTFS)), "busybox-local", changes, "from a tar")
    config = store.inspect(image_id)["Config"]
    assert config["Cmd"] == ["sh"]
    assert config["Entrypoint"] == ["/bin/sh", "-c", "/init --fast"]
    assert config["Env"] == ["PATH=/bin:/usr/bin", "GREETING=hi there", "LEGACY=some value"]
    assert (config["WorkingDir"], config["User"], config["StopSignal"]) == ("/srv", "nobody", "SIGINT")
    assert config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert config["Labels"] == {"org.example.a": "1", "b": "two words"}
    assert config["Volumes"] == {"/data": {}}
    inspect = store.inspect("busybox-local:latest")
    assert inspect["RepoTags"] == ["busybox-local:latest"]
    assert inspect["Comment"] == "from a tar"
    assert inspect["RootFS"] == {"Type": "layers", "Layers": ["sha256:" + sha256(ROOTFS)]}


def test_the_image_id_is_the_sha256_of_the_stored_config(store):
    image_id = store.import_tar(io.BytesIO(ROOTFS), None, [], "")
    config_bytes = (store.configs_dir / (image_id[7:] + ".json")).read_bytes()
    assert image_id == "sha256:" + sha256(config_bytes)


def test_import_without_changes_has_no_cmd(store):
    image = store.resolve(store.import_tar(Unseekable(ROOTFS), None, [], ""))
    assert image.config["Cmd"] is None and image.config["Entrypoint"] is None
    assert (image.layer_dirs[0] / "bin/sh").read_bytes() == b"#!fake\n"
    assert image.references == []


@pytest.mark.parametrize("change, reason", [
    ("RUN make", "RUN' is not a valid change command"),
    ("FROM scratch", "not a valid change command"),
    ("CMD", "requires an argument"),
    ("EXPOSE 99999", "invalid port"),
    ("ENV =x", "is not KEY=VALUE"),
    ("USER a b", "exactly one argument"),
])
def test_bad_changes_are_refused_before_reading_anything(store, change, reason):
    with pytest.raises(InvalidArgument, match=reason):
        store.import_tar(io.BytesIO(ROOTFS), None, [change], "")
    assert stored_state(store) == ([], [])


def test_importing_something_that_is_not_a_tar_leaves_nothing_behind(store):
    with pytest.raises(InvalidArgument, match="the input is not a tar archive"):
        store.import_tar(Unseekable(b"<html>not a tarball</html>" * 50), "x", [], "")
    assert stored_state(store) == ([], [])


def test_a_tag_moves_to_the_newly_imported_image(store):
    first = store.import_tar(io.BytesIO(ROOTFS), "app:1", [], "one")
    second = store.import_tar(io.BytesIO(ROOTFS), "app:1", [], "two")
    assert store.resolve("app:1").id == second
    assert store.inspect(first)["RepoTags"] == []


# --- docker load ---

def docker_save_legacy(layer: bytes, config: bytes, tags) -> bytes:
    return tar_of({
        f"{sha256(config)}.json": config,
        "0123abcd/": b"", "0123abcd/VERSION": b"1.0", "0123abcd/layer.tar": layer,
        "manifest.json": json.dumps([{"Config": f"{sha256(config)}.json", "RepoTags": tags,
                                      "Layers": ["0123abcd/layer.tar"]}]).encode(),
        "repositories": b"{}",
    })


def image_config(*layers: bytes, cmd=("sh",)) -> bytes:
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05.123456789Z",
        "config": {"Cmd": list(cmd), "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha256(layer) for layer in layers]},
        "history": [{"created": "2024-01-02T03:04:05.123456789Z"}],
    }).encode()


def test_load_of_a_legacy_docker_save_archive(store):
    config = image_config(ROOTFS)
    loaded = store.load(Unseekable(docker_save_legacy(ROOTFS, config, ["busybox-local:latest"])))
    assert loaded == ["busybox-local:latest"]
    inspect = store.inspect("busybox-local")
    assert inspect["Id"] == "sha256:" + sha256(config)
    assert inspect["Config"]["Cmd"] == ["sh"]
    assert inspect["Created"] == "2024-01-02T03:04:05.123456789Z"
    assert os.listdir(store.tmp_dir) == []


def oci_blobs(*blobs: bytes) -> dict:
    return {f"blobs/sha256/{sha256(blob)}": blob for blob in blobs}


def descriptor(media_type: str, blob: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": "sha256:" + sha256(blob), "size": len(blob), **extra}


def oci_manifest(config: bytes, layers: list, layer_type="application/vnd.oci.image.layer.v1.tar") -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [descriptor(layer_type, layer) for layer in layers],
    }).encode()


def test_load_of_a_docker_25_oci_form_save_archive_compressed(store):
    base = tar_of({"bin/": b"", "bin/sh": b"sh"})
    top = tar_of({"etc/": b"", "etc/motd": b"hello"})
    config = image_config(base, top)
    manifest = oci_manifest(config, [base, top])
    archive = tar_of({
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        **oci_blobs(base, top, config, manifest),
        "index.json": json.dumps({"schemaVersion": 2, "manifests": [descriptor(
            "application/vnd.oci.image.manifest.v1+json", manifest,
            annotations={"io.containerd.image.name": "docker.io/library/app:2",
                         "org.opencontainers.image.ref.name": "2"})]}).encode(),
        "manifest.json": json.dumps([{"Config": f"blobs/sha256/{sha256(config)}", "RepoTags": ["app:2"],
                                      "Layers": [f"blobs/sha256/{sha256(base)}", f"blobs/sha256/{sha256(top)}"]}]).encode(),
    })
    assert store.load(Unseekable(gzip.compress(archive))) == ["app:2"]
    image = store.resolve("app:2")
    assert [p.name for p in image.layer_dirs] == [sha256(top), sha256(base)]
    assert (image.layer_dirs[0] / "etc/motd").read_bytes() == b"hello"
    assert os.listdir(store.tmp_dir) == []


def test_load_of_an_oci_layout_with_gzip_layers_and_a_nested_index(store):
    layer = gzip.compress(tar_of({"hello": b"world"}))
    config = image_config(gzip.decompress(layer))
    manifest = oci_manifest(config, [layer], "application/vnd.oci.image.layer.v1.tar+gzip")
    index = json.dumps({"schemaVersion": 2, "manifests": [
        descriptor("application/vnd.oci.image.manifest.v1+json", manifest,
                   platform={"os": "linux", "architecture": "amd64"})]}).encode()
    layout = tar_of({
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        **oci_blobs(layer, config, manifest, index),
        "index.json": json.dumps({"schemaVersion": 2, "manifests": [descriptor(
            "application/vnd.oci.image.index.v1+json", index,
            annotations={"org.opencontainers.image.ref.name": "localhost:5000/hello:1"})]}).encode(),
    })
    assert store.load(io.BytesIO(layout)) == ["localhost:5000/hello:1"]
    assert store.inspect("localhost:5000/hello:1")["Id"] == "sha256:" + sha256(config)


def test_an_oci_layout_image_named_only_by_a_tag_loads_untagged(store):
    layer = tar_of({"f": b"1"})
    config = image_config(layer)
    manifest = oci_manifest(config, [layer])
    layout = tar_of({**oci_blobs(layer, config, manifest), "index.json": json.dumps({"manifests": [
        descriptor("application/vnd.oci.image.manifest.v1+json", manifest,
                   annotations={"org.opencontainers.image.ref.name": "latest"})]}).encode()})
    assert store.load(io.BytesIO(layout)) == ["sha256:" + sha256(config)]


def test_load_verifies_every_blob_and_leaves_nothing_when_one_is_wrong(store):
    layer = tar_of({"f": b"good"})
    config = image_config(layer)
    manifest = oci_manifest(config, [layer])
    blobs = oci_blobs(layer, config, manifest)
    blobs[f"blobs/sha256/{sha256(layer)}"] = tar_of({"f": b"evil"})
    layout = tar_of({**blobs, "index.json": json.dumps({"manifests": [
        descriptor("application/vnd.oci.image.manifest.v1+json", manifest)]}).encode()})
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        store.load(io.BytesIO(layout))
    assert stored_state(store) == ([], [])


def test_load_refuses_a_layer_that_is_not_the_configs_diff_id(store):
    config = image_config(tar_of({"other": b""}))
    with pytest.raises(InvalidArgument, match="diff id mismatch"):
        store.load(io.BytesIO(docker_save_legacy(ROOTFS, config, ["x:1"])))
    assert stored_state(store) == ([], [])


@pytest.mark.parametrize("data, words", [
    (b"definitely not a tar archive\n" * 100, "Error processing tar file(exit status 1): archive/tar: invalid tar header"),
    (b"short, and no tar\n", "Error processing tar file(exit status 1): unexpected EOF"),
])
def test_loading_something_that_is_not_a_tar_leaves_nothing_behind(store, data, words):
    # Docker 20.10's words: its untar's exit, then Go's archive/tar on the first 512-byte block.
    with pytest.raises(InvalidArgument) as error:
        store.load(Unseekable(data))
    assert str(error.value) == words
    assert stored_state(store) == ([], [])


def test_a_tar_that_is_not_an_image_archive_is_refused(store):
    with pytest.raises(InvalidArgument, match="neither manifest.json nor index.json"):
        store.load(io.BytesIO(ROOTFS))
    assert stored_state(store) == ([], [])


# --- list, inspect, lookups ---

def test_list_and_inspect_have_the_engine_api_shapes(store):
    image_id = store.import_tar(io.BytesIO(ROOTFS), "localhost:5000/x:1", ['LABEL a=b'], "")
    [summary] = store.list_images()
    assert set(summary) == {"Id", "ParentId", "RepoTags", "RepoDigests", "Created", "Size",
                            "SharedSize", "VirtualSize", "Labels", "Containers"}
    assert summary["Id"] == image_id and summary["RepoTags"] == ["localhost:5000/x:1"]
    assert isinstance(summary["Created"], int) and summary["Labels"] == {"a": "b"}
    assert summary["Size"] == len(b"#!fake\n") + len(b"root:x:0:0::/root:/bin/sh\n")
    inspect = store.inspect(image_id)
    for key in ("Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Container", "ContainerConfig",
                "DockerVersion", "Author", "Config", "Architecture", "Os", "Size", "GraphDriver", "RootFS", "Metadata"):
        assert key in inspect
    # An imported image was made by no container: Docker 20.10 shows an empty config, not a missing key.
    assert inspect["Container"] == ""
    assert inspect["ContainerConfig"]["Volumes"] is None and inspect["ContainerConfig"]["Cmd"] is None
    assert inspect["ContainerConfig"]["Hostname"] == "" and inspect["ContainerConfig"]["Tty"] is False
    assert inspect["GraphDriver"]["Name"] == "overlay2"
    assert inspect["Created"].endswith("Z") and "T" in inspect["Created"]
    assert inspect["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"


def test_images_are_found_by_reference_full_id_and_id_prefix(store):
    image_id = store.import_tar(io.BytesIO(ROOTFS), "alpine-ish", [], "")
    for name in ("alpine-ish", "alpine-ish:latest", "docker.io/library/alpine-ish:latest",
                 image_id, image_id[7:], image_id[7:19], "sha256:" + image_id[7:12]):
        assert store.resolve(name).id == image_id, name
    with pytest.raises(NotFound, match="No such image: alpine-ish:2"):
        store.resolve("alpine-ish:2")


def test_an_ambiguous_id_prefix_is_an_error(store):
    ids = [store.import_tar(io.BytesIO(ROOTFS), None, [], f"image {n}") for n in range(17)]
    shared = next(c for c in "0123456789abcdef" if sum(i[7] == c for i in ids) > 1)
    with pytest.raises(InvalidArgument, match="ambiguous"):
        store.resolve(shared)


def test_tag_adds_a_reference(store):
    image_id = store.import_tar(io.BytesIO(ROOTFS), "a:1", [], "")
    store.tag("a:1", "b/c:2")
    assert store.inspect(image_id)["RepoTags"] == ["a:1", "b/c:2"]


# --- remove ---

def test_remove_untags_only_while_other_tags_remain(store):
    image_id = store.import_tar(io.BytesIO(ROOTFS), "a:1", [], "")
    store.tag("a:1", "a:2")
    assert store.remove("a:1", False, not_used) == [{"Untagged": "a:1"}]
    assert store.resolve("a:2").id == image_id
    result = store.remove("a:2", False, not_used)
    assert result[:2] == [{"Untagged": "a:2"}, {"Deleted": image_id}]
    assert store.list_images() == []


def test_remove_refuses_an_image_in_use_unless_forced(store):
    image_id = store.import_tar(io.BytesIO(ROOTFS), "busy", [], "")
    in_use = lambda candidate: candidate == image_id  # noqa: E731
    with pytest.raises(Conflict, match="must force"):
        store.remove("busy", False, in_use)
    with pytest.raises(Conflict, match="must be forced"):
        store.remove(image_id, False, in_use)
    assert store.remove("busy", True, in_use) == [{"Untagged": "busy:latest"}]
    assert store.resolve(image_id).layer_dirs[0].is_dir(), "a container still runs on its layers"


def test_remove_by_id_refuses_an_image_in_several_repositories(store):
    image_id = store.import_tar(io.BytesIO(ROOTFS), "one", [], "")
    store.tag("one", "two")
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        store.remove(image_id[7:19], False, not_used)
    result = store.remove(image_id[7:19], True, not_used)
    assert {"Untagged": "one:latest"} in result and {"Deleted": image_id} in result


def test_layers_are_shared_between_images_and_freed_with_the_last(store):
    first = store.import_tar(io.BytesIO(ROOTFS), "first", [], "1")
    second = store.import_tar(io.BytesIO(gzip.compress(ROOTFS)), "second", [], "2")
    layer_dir = store.resolve(first).layer_dirs[0]
    assert store.resolve(second).layer_dirs == [layer_dir]
    assert os.listdir(store.layers_dir) == [layer_dir.name]
    assert store.remove("first", False, not_used)[-1] == {"Deleted": first}
    assert layer_dir.is_dir()
    result = store.remove("second", False, not_used)
    assert result[-1] == {"Deleted": "sha256:" + layer_dir.name}
    assert not layer_dir.exists()
    assert stored_state(store) == ([], [])


def test_remove_of_an_unknown_image_is_not_found(store):
    with pytest.raises(NotFound, match="No such image: nope:latest"):
        store.remove("nope", False, not_used)


def test_leftovers_of_a_crash_are_removed_at_start(store, tmp_path):
    (store.layers_dir / ".tmp-deadbeef").mkdir()
    (store.layers_dir / ("f" * 64)).mkdir()
    (store.tmp_dir / "spool").write_bytes(b"x")
    ImageStore(store.db, tmp_path, rootless=False)
    assert stored_state(store) == ([], [])
