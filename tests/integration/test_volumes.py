"""Volumes as objects: `volume create/ls/inspect/rm/prune`, `system prune`, the API, the docker CLI."""

import json
import os
import shutil
import subprocess

import pytest

from tests.integration.dockercli import PATH as DOCKER_PATH, not_found, older_than


@pytest.fixture
def volumes(daemon):
    """Names of volumes a test makes: removed afterwards, whatever happened."""
    made = []
    yield made
    for name in made:
        daemon.cli("volume", "rm", "-f", name)


def names_listed(daemon, *flags):
    return daemon.ok("volume", "ls", "-q", *flags).split()


def test_create_inspect_ls_rm(daemon, volumes):
    volumes.append("vol-a")
    assert daemon.ok("volume", "create", "--label", "env=prod", "vol-a") == "vol-a\n"
    info = json.loads(daemon.ok("volume", "inspect", "vol-a"))
    assert len(info) == 1
    info = info[0]
    assert info["Name"] == "vol-a" and info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Labels"] == {"env": "prod"} and info["Options"] is None
    assert info["Mountpoint"] == str(daemon.data_root / "volumes" / "vol-a" / "_data")
    assert os.path.isdir(info["Mountpoint"]) and info["CreatedAt"].endswith("Z")
    listing = daemon.ok("volume", "ls").splitlines()
    assert listing[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert ["local", "vol-a"] in [line.split() for line in listing[1:]]
    assert daemon.ok("volume", "rm", "vol-a") == "vol-a\n"
    assert "vol-a" not in names_listed(daemon)
    assert not (daemon.data_root / "volumes" / "vol-a").exists()


def test_create_without_a_name_makes_a_random_one(daemon, volumes):
    name = daemon.ok("volume", "create").strip()
    volumes.append(name)
    assert len(name) == 64 and all(c in "0123456789abcdef" for c in name)
    assert name in names_listed(daemon)


def test_bad_input_is_one_line_and_leaves_nothing(daemon):
    before = sorted(os.listdir(daemon.data_root / "volumes"))
    for args, message in [
        (["volume", "create", "bad name"], "includes invalid characters"),
        (["volume", "create", "--opt", "type=nfs", "vnfs"], 'volume type "nfs" is not supported'),
        (["volume", "create", "--opt", "bogus=1", "vbogus"], 'invalid option key: "bogus"'),
        (["volume", "create", "-d", "nfs", "vdrv"], "plugin"),
        (["volume", "inspect", "no-such-vol"], "get no-such-vol: no such volume"),
        (["volume", "rm", "no-such-vol"], "get no-such-vol: no such volume"),
        (["volume", "ls", "--filter", "colour=red"], "invalid filter"),
    ]:
        result = daemon.cli(*args)
        assert result.returncode != 0, args
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(os.listdir(daemon.data_root / "volumes")) == before
    assert daemon.cli("volume", "rm", "-f", "no-such-vol").returncode == 0


def test_inspect_several_reports_the_missing_and_exits_1(daemon, volumes):
    volumes.append("vol-i")
    daemon.ok("volume", "create", "vol-i")
    result = daemon.cli("volume", "inspect", "vol-i", "no-such-vol")
    assert result.returncode == 1 and "get no-such-vol: no such volume" in result.stderr
    assert [v["Name"] for v in json.loads(result.stdout)] == ["vol-i"]


def test_ls_filters(daemon, volumes):
    volumes.extend(["flt-one", "flt-two"])
    daemon.ok("volume", "create", "--label", "tier=db", "flt-one")
    daemon.ok("volume", "create", "--label", "tier", "flt-two")
    assert names_listed(daemon, "--filter", "name=flt-") == ["flt-one", "flt-two"]
    assert names_listed(daemon, "--filter", "label=tier=db") == ["flt-one"]
    assert set(names_listed(daemon, "--filter", "label=tier")) >= {"flt-one", "flt-two"}
    assert "flt-one" in names_listed(daemon, "--filter", "driver=local")
    assert names_listed(daemon, "--filter", "driver=other") == []
    assert "flt-two" in names_listed(daemon, "--filter", "dangling=true")
    assert "flt-two" not in names_listed(daemon, "--filter", "dangling=false")


def test_tmpfs_and_bind_device_options_are_stored(daemon, volumes, tmp_path):
    volumes.extend(["vol-tmpfs", "vol-bound"])
    daemon.ok("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=16m", "vol-tmpfs")
    opts = json.loads(daemon.ok("volume", "inspect", "vol-tmpfs"))[0]["Options"]
    assert opts == {"type": "tmpfs", "device": "tmpfs", "o": "size=16m"}
    device = tmp_path / "device"
    device.mkdir()
    (device / "precious").write_text("keep")
    os.chmod(tmp_path, 0o755)
    daemon.ok("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={device}", "vol-bound")
    daemon.ok("volume", "rm", "vol-bound")
    assert (device / "precious").read_text() == "keep"
    result = daemon.cli("volume", "create", "--opt", "type=tmpfs", "--opt", "o=size=huge", "vol-badtmpfs")
    assert result.returncode != 0 and "invalid tmpfs size" in result.stderr


def test_prune_removes_only_anonymous_unless_all(daemon, volumes):
    client = daemon.client()
    anon = client.post("/volumes/create", body={"Name": "prune-anon",
                                                "Labels": {"com.docker.volume.anonymous": ""}}).json()["Name"]
    volumes.extend([anon, "prune-named"])
    daemon.ok("volume", "create", "--label", "keep=no", "prune-named")
    out = daemon.ok("volume", "prune", "-f")
    assert "Deleted Volumes:\nprune-anon\n" in out and out.rstrip().endswith("Total reclaimed space: 0B")
    assert "prune-named" in names_listed(daemon)
    out = daemon.ok("volume", "prune", "-f", "-a", "--filter", "label=keep=no")
    assert "prune-named" in out and "prune-named" not in names_listed(daemon)
    assert daemon.ok("volume", "prune", "-f").strip() == "Total reclaimed space: 0B"


def test_prune_asks_first(daemon, volumes):
    volumes.append("ask-me")
    daemon.ok("volume", "create", "ask-me")
    out = daemon.ok("volume", "prune", "-a", input="n\n")
    assert "WARNING! This will remove all local volumes not used by at least one container." in out
    assert "ask-me" in names_listed(daemon)
    daemon.ok("volume", "prune", "-a", "--filter", "label!=nothing", input="y\n")
    assert "ask-me" not in names_listed(daemon)


def test_volumes_survive_a_daemon_restart(daemon, volumes):
    volumes.append("survivor")
    daemon.ok("volume", "create", "survivor")
    (daemon.data_root / "volumes" / "survivor" / "_data" / "file").write_text("still here")
    daemon.stop()
    daemon.start()
    info = json.loads(daemon.ok("volume", "inspect", "survivor"))[0]
    assert open(os.path.join(info["Mountpoint"], "file")).read() == "still here"


def test_a_crash_leftover_dir_is_cleaned_at_start(daemon):
    orphan = daemon.data_root / "volumes" / "orphan-dir"
    (orphan / "_data").mkdir(parents=True)
    daemon.kill()
    daemon.start()
    assert not orphan.exists() and "orphan-dir" not in names_listed(daemon)


def test_events_for_create_and_destroy(daemon, volumes):
    import time

    since = str(int(time.time()) - 1)
    daemon.ok("volume", "create", "evt-vol")
    daemon.ok("volume", "rm", "evt-vol")
    until = str(int(time.time()) + 1)
    out = daemon.ok("events", "--since", since, "--until", until, "--filter", "type=volume",
                    "--format", "{{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"driver\"}}")
    assert "create evt-vol local" in out and "destroy evt-vol local" in out


def test_system_prune_removes_stopped_containers_and_with_volumes_anonymous_ones(daemon, image, volumes):
    client = daemon.client()
    client.post("/volumes/create", body={"Name": "sys-anon", "Labels": {"com.docker.volume.anonymous": ""}})
    volumes.extend(["sys-anon", "sys-named"])
    daemon.ok("volume", "create", "sys-named")
    stopped = daemon.ok("create", image, "true").strip()
    running = daemon.ok("run", "-d", image, "sleep", "60").strip()
    try:
        out = daemon.ok("system", "prune", "-f")
        assert f"Deleted Containers:\n{stopped}\n" in out and running not in out
        assert "Total reclaimed space:" in out and "sys-anon" in names_listed(daemon)
        out = daemon.ok("system", "prune", "-f", "--volumes")
        assert "Deleted Volumes:\nsys-anon\n" in out
        assert "sys-named" in names_listed(daemon) and "sys-anon" not in names_listed(daemon)
        assert daemon.ok("ps", "-q", "--no-trunc").split() == [running]
    finally:
        daemon.cli("rm", "-f", running)
        daemon.cli("rm", "-f", stopped)


def docker(daemon, *args, input=None):
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on the PATH")
    return subprocess.run(["docker", "-H", daemon.host, *args], capture_output=True, text=True, timeout=60,
                          input=input, env={"PATH": DOCKER_PATH, "HOME": str(daemon.top)})


def test_docker_cli_volume_commands(daemon, volumes):
    volumes.append("dk-vol")
    result = docker(daemon, "volume", "create", "--label", "a=b", "dk-vol")
    assert result.returncode == 0 and result.stdout == "dk-vol\n", result.stderr
    result = docker(daemon, "volume", "ls")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert ["local", "dk-vol"] in [line.split() for line in result.stdout.splitlines()]
    assert docker(daemon, "volume", "ls", "-q", "--filter", "label=a=b").stdout.split() == ["dk-vol"]
    info = json.loads(docker(daemon, "volume", "inspect", "dk-vol").stdout)[0]
    assert info["Name"] == "dk-vol" and info["Labels"] == {"a": "b"} and info["Scope"] == "local"
    result = docker(daemon, "volume", "rm", "dk-vol")
    assert result.returncode == 0 and result.stdout == "dk-vol\n", result.stderr
    result = docker(daemon, "volume", "inspect", "dk-vol")
    assert result.returncode == 1 and not_found("volume", "dk-vol", "get dk-vol: no such volume") in result.stderr


def test_docker_cli_prunes(daemon, image, volumes):
    client = daemon.client()
    client.post("/volumes/create", body={"Name": "dk-anon", "Labels": {"com.docker.volume.anonymous": ""}})
    volumes.extend(["dk-anon", "dk-named"])
    docker(daemon, "volume", "create", "dk-named")
    stopped = daemon.ok("create", image, "true").strip()
    try:
        result = docker(daemon, "system", "prune", "-f", "--volumes")
        assert result.returncode == 0, result.stderr
        assert f"Deleted Containers:\n{stopped}\n" in result.stdout
        assert "Total reclaimed space:" in result.stdout
        if older_than(23):
            # The CLI 20.10 speaks API 1.41, where prune takes every unused volume (and it has no -a):
            # Docker's daemon answers it so, and so does ours.
            assert "Deleted Volumes:\n" in result.stdout
            assert {"dk-anon", "dk-named"} <= set(result.stdout.split("Deleted Volumes:\n")[1].split("\n\n")[0].split())
            assert not {"dk-anon", "dk-named"} & set(names_listed(daemon))
            return
        # From API 1.42 prune takes anonymous volumes only, unless -a.
        assert "Deleted Volumes:\ndk-anon\n" in result.stdout
        assert "dk-named" in names_listed(daemon) and "dk-anon" not in names_listed(daemon)
        result = docker(daemon, "volume", "prune", "-a", "-f")
        assert result.returncode == 0 and "dk-named" in result.stdout, result.stderr
    finally:
        daemon.cli("rm", "-f", stopped)


# With the container side (issue #6 part 2: `-v`, and the container store answering which containers use a volume).

def test_a_volume_in_use_is_refused_even_forced_running_or_not(daemon, image, volumes):
    volumes.append("busy-vol")
    container = daemon.ok("create", "-v", "busy-vol:/data", image, "true").strip()
    try:
        for args in (["volume", "rm", "busy-vol"], ["volume", "rm", "-f", "busy-vol"]):
            result = daemon.cli(*args)
            assert result.returncode == 1
            assert f"remove busy-vol: volume is in use - [{container}]" in result.stderr
        assert "busy-vol" not in daemon.ok("volume", "prune", "-f", "-a")
        assert "busy-vol" in names_listed(daemon, "--filter", "dangling=false")
    finally:
        daemon.cli("rm", "-f", container)
    daemon.ok("volume", "rm", "busy-vol")


def test_data_survives_the_container_and_a_daemon_restart(daemon, image, volumes):
    volumes.append("keep-data")
    daemon.ok("run", "--rm", "-v", "keep-data:/data", image, "sh", "-c", "echo kept > /data/file")
    daemon.stop()
    daemon.start()
    assert daemon.ok("run", "--rm", "-v", "keep-data:/data", image, "cat", "/data/file") == "kept\n"
