"""The volume service on its own: names, options, the table and the dirs, users, prune, crash recovery."""

import os
import stat

import pytest

from minictr.db import Database
from minictr.errors import Conflict, InvalidArgument, NotFound
from minictr.volumes.service import ANONYMOUS_LABEL, SCHEMA, VolumeService


class Events:
    def __init__(self):
        self.seen = []

    def emit(self, type_, action, actor_id, attributes=None):
        self.seen.append((type_, action, actor_id, attributes))


@pytest.fixture
def volume_users():
    """Volume name -> the ids of the containers that use it, as the container store answers."""
    return {}


@pytest.fixture
def service(tmp_path, volume_users):
    svc = VolumeService(Database(tmp_path / "db", [SCHEMA]), tmp_path, Events(),
                        users=lambda name: volume_users.get(name, []))
    svc.load()
    return svc


def test_create_makes_docker_layout_0755_and_emits(service, tmp_path):
    old = os.umask(0o077)
    try:
        volume = service.create("data1", labels={"a": "b"})
    finally:
        os.umask(old)
    assert volume.created_now and volume.mountpoint == str(tmp_path / "volumes" / "data1" / "_data")
    for path in (tmp_path / "volumes" / "data1", tmp_path / "volumes" / "data1" / "_data"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o755
    assert service.events.seen == [("volume", "create", "data1", {"driver": "local"})]
    api = volume.to_api()
    assert api["Labels"] == {"a": "b"} and api["Scope"] == "local" and api["Driver"] == "local"
    assert api["CreatedAt"].endswith("Z") and api["Options"] is None


def test_create_again_returns_the_same_volume_without_an_event(service):
    service.create("same")
    again = service.create("same")
    assert not again.created_now and [e[1] for e in service.events.seen] == ["create"]


def test_no_name_gives_a_random_64_hex_name(service):
    name = service.create().name
    assert len(name) == 64 and int(name, 16) >= 0


@pytest.mark.parametrize("name", ["a", "-x", "has space", "a/b", "../x", ".hidden"])
def test_bad_names_are_refused_and_leave_nothing(service, tmp_path, name):
    with pytest.raises(InvalidArgument, match="invalid characters"):
        service.create(name)
    assert os.listdir(tmp_path / "volumes") == [] and service.list() == []


@pytest.mark.parametrize("opts,message", [
    ({"type": "nfs", "device": ":/x"}, 'volume type "nfs" is not supported'),
    ({"foo": "bar"}, 'invalid option key: "foo"'),
    ({"type": "none", "device": "/nonexistent-dir", "o": "bind"}, "no such directory"),
    ({"type": "none", "device": "rel", "o": "bind"}, "absolute path"),
    ({"type": "none", "device": "/tmp"}, "needs o=bind"),
    ({"type": "tmpfs", "o": "size=lots"}, "invalid tmpfs size"),
    ({"type": "tmpfs", "o": "exec"}, "invalid tmpfs option"),
])
def test_unsupported_options_are_refused_at_create(service, tmp_path, opts, message):
    with pytest.raises(InvalidArgument, match=message):
        service.create("v1", options=opts)
    assert os.listdir(tmp_path / "volumes") == []


def test_mount_source_of_each_kind(service, tmp_path):
    device = tmp_path / "dev"
    device.mkdir()
    plain = service.create("plain")
    assert service.mount_source(plain) == ("bind", plain.mountpoint, "")
    assert service.mount_source("plain") == ("bind", plain.mountpoint, "")
    tmpfs = service.create("tmp", options={"type": "tmpfs", "device": "tmpfs", "o": "size=10m"})
    assert service.mount_source(tmpfs) == ("tmpfs", "", "size=10m")
    bound = service.create("bound", options={"type": "none", "o": "bind", "device": str(device)})
    assert service.mount_source(bound) == ("bind", str(device), "")


def test_removing_a_bind_device_volume_keeps_the_device(service, tmp_path):
    device = tmp_path / "dev"
    device.mkdir()
    (device / "keep").write_text("x")
    service.create("bound", options={"type": "none", "o": "bind", "device": str(device)})
    service.remove("bound")
    assert (device / "keep").read_text() == "x"


def test_seed_flag_is_kept_once(service):
    service.create("seedme")
    assert service.needs_seed("seedme")
    service.mark_seeded("seedme")
    assert not service.needs_seed("seedme")
    service.create("tm", options={"type": "tmpfs"})
    assert not service.needs_seed("tm")


def test_get_of_a_missing_volume(service):
    with pytest.raises(NotFound, match="^get nope: no such volume$"):
        service.get("nope")


def test_remove_refuses_a_volume_in_use_even_forced(service, volume_users):
    service.create("busy")
    volume_users["busy"] = ["c1", "c2"]
    for force in (False, True):
        with pytest.raises(Conflict, match=r"^remove busy: volume is in use - \[c1, c2\]$"):
            service.remove("busy", force=force)
    assert service.get("busy")


def test_remove_deletes_row_dir_and_emits_destroy(service, tmp_path):
    service.create("gone")
    (tmp_path / "volumes" / "gone" / "_data" / "f").write_bytes(b"12345")
    assert service.remove("gone") == 5
    assert not (tmp_path / "volumes" / "gone").exists()
    assert service.events.seen[-1] == ("volume", "destroy", "gone", {"driver": "local"})
    with pytest.raises(NotFound):
        service.remove("gone")
    assert service.remove("gone", force=True) == 0


def test_ensure_anonymous_is_labelled_and_pruned_by_default(service):
    anon = service.ensure(None)
    assert anon.anonymous and anon.created_now and anon.labels == {ANONYMOUS_LABEL: ""}
    named = service.ensure("named")
    assert not named.anonymous and service.ensure("named").created_now is False
    deleted, _ = service.prune()
    assert deleted == [anon.name]
    assert [v.name for v in service.list()] == ["named"]
    assert service.prune({"all": ["true"]})[0] == ["named"]


def test_prune_skips_volumes_in_use_and_honours_labels(service, volume_users):
    service.create("used", labels={"k": "v"})
    service.create("free", labels={"k": "v"})
    service.create("other", labels={"k": "w"})
    volume_users["used"] = ["c"]
    assert service.prune({"all": ["1"], "label": ["k=v"]})[0] == ["free"]
    assert service.prune({"all": ["1"], "label!": ["k=w"]})[0] == []
    with pytest.raises(InvalidArgument):
        service.prune({"dangling": ["true"]})


def test_list_filters(service, volume_users):
    service.create("alpha", labels={"env": "prod"})
    service.create("beta")
    volume_users["alpha"] = ["c"]
    names = lambda f: [v.name for v in service.list(f)]
    assert names({"dangling": ["true"]}) == ["beta"]
    assert names({"dangling": ["false"]}) == ["alpha"]
    assert names({"name": ["alp"]}) == ["alpha"]
    assert names({"label": ["env"]}) == ["alpha"] and names({"label": ["env=dev"]}) == []
    assert names({"driver": ["local"]}) == ["alpha", "beta"] and names({"driver": ["nfs"]}) == []
    with pytest.raises(InvalidArgument):
        service.list({"dangling": ["maybe"]})
    with pytest.raises(InvalidArgument):
        service.list({"colour": ["red"]})


def test_load_removes_dirs_without_rows_and_restores_dirs_of_rows(service, tmp_path):
    service.create("kept")
    (tmp_path / "volumes" / "orphan" / "_data").mkdir(parents=True)
    (tmp_path / "volumes" / ".removing-x-1234").mkdir()
    os.rmdir(tmp_path / "volumes" / "kept" / "_data")
    service.load()
    assert sorted(os.listdir(tmp_path / "volumes")) == ["kept"]
    assert (tmp_path / "volumes" / "kept" / "_data").is_dir()


def test_a_failed_insert_leaves_no_dir(service, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(service.db, "transaction", broken)
    with pytest.raises(RuntimeError):
        service.create("half")
    assert os.listdir(tmp_path / "volumes") == []


def test_other_drivers_are_not_found(service):
    with pytest.raises(NotFound, match="plugin"):
        service.create("x", driver="nfs")
