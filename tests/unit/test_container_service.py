"""The container service built on its own — a temporary database, fake images, volumes and
networks, no kernel — seen the way a user sees containers: create, ps, inspect, rename, rm."""

import asyncio
import types

import pytest

from minictr.containers.service import ContainerService
from minictr.containers.state import State
from minictr.containers.store import SCHEMA, ContainerStore
from minictr.db import Database
from minictr.errors import Conflict, InvalidArgument, NotFound
from minictr.networks.links import SCHEMA as LINKS_SCHEMA, Links

IMAGE = types.SimpleNamespace(id="sha256:" + "ab" * 32, config={"Cmd": ["sh"], "Env": ["A=1"]}, layer_dirs=[],
                              document={})


class Events:
    def __init__(self):
        self.seen = []

    def emit(self, type_, action, actor_id, attributes=None):
        self.seen.append((action, actor_id, attributes))


class Images:
    def resolve(self, ref):
        if ref not in ("busybox", IMAGE.id):
            raise NotFound(f"No such image: {ref}")
        return IMAGE

    def inspect(self, ref):
        return {"Size": 1000}


class Volumes:
    def __init__(self, root):
        self.root = root
        self.made, self.removed = {}, []

    def ensure(self, name, anonymous=False):
        volume = types.SimpleNamespace(name=name, mountpoint=str(self.root / name))
        self.made[name] = volume
        return volume

    def needs_seed(self, name):
        return False

    def get(self, name):
        return self.made[name]

    def remove(self, name, force=False):
        self.removed.append(name)


class Networks:
    """Endpoints faked; the legacy links are the real ones (networks/links.py), on the same database."""

    def __init__(self, store):
        self.removed = []
        self.links = Links(store.db, store)

    def plan(self, container_id, host_config, networking_config, mac_address=None):
        return [container_id]

    def record(self, endpoints):
        pass

    def write_files(self, container):
        pass

    def settings(self, container):
        return {"IPAddress": ""}

    def list_settings(self, containers):
        return {c.id: {} for c in containers}

    def container_removed(self, container_id, wait=True):
        self.removed.append(container_id)
        self.links.forget(container_id)


class Driver:
    def unmount(self, top):
        pass


@pytest.fixture
def service(tmp_path):
    store = ContainerStore(Database(tmp_path / "db", [SCHEMA, LINKS_SCHEMA]), str(tmp_path / "data"),
                           str(tmp_path / "run"), Events())
    service = ContainerService(store, Images(), Volumes(tmp_path / "volumes"), Networks(store), None, Driver(),
                               data_root=str(tmp_path / "data"), rootless=True, uid_ranges=[], gid_ranges=[])
    service.load()
    return service


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_created_container_is_listed_and_inspected_as_docker_shows_it(service):
    container_id, warnings = run(service.create({"Image": "busybox", "Cmd": ["echo", "hi"]}, "web"))
    assert warnings == []
    [summary] = service.list(all=True)
    assert summary["Id"] == container_id and summary["Names"] == ["/web"] and summary["State"] == "created"
    assert service.list() == []  # `ps` without -a: only running ones
    document = service.inspect("web")
    assert document["Name"] == "/web" and document["State"]["Status"] == "created"
    assert document["Config"]["Cmd"] == ["echo", "hi"] and "A=1" in document["Config"]["Env"]
    assert service.get(container_id[:12]).name == "web"
    assert [e[0] for e in service.store.events.seen] == ["create"]


def test_create_returns_the_warnings_instead_of_keeping_them_on_the_record(service, monkeypatch):
    monkeypatch.setattr(service.resources, "check", lambda host_config: ["Memory limit discarded"])
    container_id, warnings = run(service.create({"Image": "busybox"}, "warned"))
    assert warnings == ["Memory limit discarded"]
    assert not hasattr(service.get(container_id), "warnings")


def test_create_refuses_a_taken_name_a_missing_image_and_no_command(service):
    run(service.create({"Image": "busybox"}, "taken"))
    with pytest.raises(Conflict, match="already in use"):
        run(service.create({"Image": "busybox"}, "taken"))
    with pytest.raises(NotFound):
        run(service.create({"Image": "nothere"}, "other"))
    with pytest.raises(InvalidArgument, match="No image specified"):
        run(service.create({}, "other"))
    assert [c["Names"] for c in service.list(all=True)] == [["/taken"]]


def test_rename_changes_the_name_everywhere_and_survives_a_reload(service, tmp_path):
    container_id, _ = run(service.create({"Image": "busybox"}, "old"))
    run(service.rename("old", "new"))
    assert service.inspect(container_id)["Name"] == "/new"
    with pytest.raises(NotFound):
        service.get("old")
    with pytest.raises(Conflict, match="same name"):
        run(service.rename("new", "new"))
    again = ContainerStore(service.store.db, str(tmp_path / "data"), str(tmp_path / "run"), Events())
    assert [c.name for c in again.load()] == ["new"]


def test_remove_takes_the_record_its_endpoints_and_with_v_its_anonymous_volumes(service):
    container_id, _ = run(service.create({"Image": "busybox", "Volumes": {"/cache": {}}}, "gone"))
    [mount] = service.inspect("gone")["Mounts"]
    assert mount["Destination"] == "/cache" and mount["Type"] == "volume"
    run(service.remove("gone", volumes=True))
    assert service.list(all=True) == [] and service.ids() == []
    assert service.mounting.volumes.removed == [mount["Name"]]
    assert service.deleter.networks.removed == [container_id]
    assert [e[0] for e in service.store.events.seen] == ["create", "destroy"]


def test_a_running_container_is_removed_only_by_force(service):
    container_id, _ = run(service.create({"Image": "busybox"}, "busy"))
    service.store.write(service.get(container_id), state=State.RUNNING.value)  # as a started one is
    with pytest.raises(Conflict, match="container is running"):
        run(service.remove("busy"))
    assert service.running_ids() == {container_id} and service.any_alive()


def test_a_legacy_link_is_kept_by_id_and_inspected_as_docker_shows_it(service):
    run(service.create({"Image": "busybox"}, "db"))
    run(service.create({"Image": "busybox"}, "cache"))
    app_id, _ = run(service.create({"Image": "busybox", "HostConfig": {
        "Links": ["db:database", "cache", "/cache:/other/database"]}}, "app"))
    # The second link named `database` is ignored (Docker keeps the first); `cache` is its own alias.
    assert service.inspect(app_id)["HostConfig"]["Links"] == ["/db:/app/database", "/cache:/app/cache"]
    run(service.rename("db", "store"))
    assert service.inspect(app_id)["HostConfig"]["Links"] == ["/store:/app/database", "/cache:/app/cache"]
    run(service.remove("cache"))
    assert service.inspect(app_id)["HostConfig"]["Links"] == ["/store:/app/database"]


def test_a_link_to_a_missing_container_creates_nothing(service):
    with pytest.raises(InvalidArgument, match="could not get container for ghost: No such container: ghost"):
        run(service.create({"Image": "busybox", "HostConfig": {"Links": ["ghost:g"]}}, "app"))
    with pytest.raises(InvalidArgument, match="bad format for links: a:b:c"):
        run(service.create({"Image": "busybox", "HostConfig": {"Links": ["a:b:c"]}}, "app"))
    assert service.list(all=True) == []
    assert service.store.db.query("SELECT * FROM links") == []


def test_links_on_a_user_network_are_not_legacy_links(service):
    run(service.create({"Image": "busybox"}, "db"))
    app_id, _ = run(service.create({"Image": "busybox", "HostConfig": {
        "NetworkMode": "appnet", "Links": ["db:database", "absent:x"]}}, "app"))
    assert service.inspect(app_id)["HostConfig"]["Links"] is None


def test_links_conflict_with_the_host_network(service):
    with pytest.raises(InvalidArgument, match="host type networking can't be used with links"):
        run(service.create({"Image": "busybox", "HostConfig": {"NetworkMode": "host", "Links": ["x"]}}, "app"))
    run(service.create({"Image": "busybox", "HostConfig": {"NetworkMode": "host"}}, "hostly"))
    with pytest.raises(InvalidArgument, match="host type networking can't be used with links"):
        run(service.create({"Image": "busybox", "HostConfig": {"Links": ["hostly:h"]}}, "app"))
