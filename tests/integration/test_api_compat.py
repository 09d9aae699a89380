"""API details clients depend on, over raw HTTP on the daemon's socket: the expected bodies and
statuses are Docker's own (bench/docker_compat.py runs the same requests against dockerd;
bench/results/issue8/compat.md has its answers)."""

import base64
import http.client
import json
import socket
import subprocess
import urllib.parse

import pytest

from minictr import API_VERSION, MIN_API_VERSION

from tests.integration.dockercli import PATH as DOCKER_PATH, not_found, run_error
from .test_docker_cli import docker


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(self.unix_path)


def call(daemon, method, path, body=None, headers=None):
    """(status, headers, parsed body) of one request on a fresh connection."""
    conn = _UnixConnection(str(daemon.socket))
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload
    finally:
        conn.close()


def docker_env(daemon, env, *args):
    """The docker CLI with extra environment (DOCKER_API_VERSION, DOCKER_BUILDKIT)."""
    docker(daemon, "version", "--format", "{{.Client.Version}}")  # the one check that the CLI is there
    return subprocess.run(["docker", "-H", daemon.host, *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": DOCKER_PATH, "HOME": str(daemon.top), **env})


def _minor(version):
    return int(version.split(".")[1])


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_ping_headers_as_docker(daemon, method):
    status, headers, body = call(daemon, method, "/_ping")
    assert status == 200
    assert headers["api-version"] == API_VERSION
    assert headers["docker-experimental"] == "false"
    assert headers["ostype"] == "linux"
    assert headers["builder-version"] == "1"
    assert "no-cache" in headers["cache-control"]
    assert headers["pragma"] == "no-cache"
    assert body == ("OK" if method == "GET" else None)


def test_every_api_version_from_min_to_max_is_served(daemon):
    for minor in range(_minor(MIN_API_VERSION), _minor(API_VERSION) + 1):
        status, _, body = call(daemon, "GET", f"/v1.{minor}/version")
        assert status == 200, (minor, body)
        assert body["ApiVersion"] == API_VERSION
    status, _, body = call(daemon, "GET", "/version")
    assert status == 200 and body["ApiVersion"] == API_VERSION


def test_a_version_above_max_is_refused_with_dockers_message(daemon):
    status, _, body = call(daemon, "GET", "/v1.99/info")
    assert status == 400
    assert body == {"message": f"client version 1.99 is too new. Maximum supported API version is {API_VERSION}"}


def test_a_version_below_min_is_refused_with_dockers_message(daemon):
    status, _, body = call(daemon, "GET", "/v1.5/info")
    assert status == 400
    assert body == {"message": f"client version 1.5 is too old. Minimum supported API version is "
                               f"{MIN_API_VERSION}, please upgrade your client to a newer version"}


def test_docker_cli_pinned_to_an_old_version_works_and_a_too_new_one_fails_clearly(daemon):
    old = docker_env(daemon, {"DOCKER_API_VERSION": "1.30"}, "version", "--format", "{{.Server.APIVersion}}")
    assert old.returncode == 0, old.stderr
    new = docker_env(daemon, {"DOCKER_API_VERSION": "1.99"}, "ps")
    assert new.returncode != 0
    assert "client version 1.99 is too new" in new.stderr


def test_filters_both_json_forms_and_bad_json(daemon, image):
    status, _, created = call(daemon, "POST", "/containers/create?name=compat-filters",
                              {"Image": image, "Cmd": ["true"], "Labels": {"compat": "yes"}})
    assert status == 201, created
    try:
        for form in ({"label": ["compat=yes"]}, {"label": {"compat=yes": True}}):
            q = urllib.parse.quote(json.dumps(form))
            status, _, listing = call(daemon, "GET", f"/containers/json?all=1&filters={q}")
            assert status == 200, listing
            assert [c["Id"] for c in listing] == [created["Id"]], form
        q = urllib.parse.quote(json.dumps({"label": ["compat=no"]}))
        assert call(daemon, "GET", f"/containers/json?all=1&filters={q}")[2] == []
        for path in ("/containers/json", "/volumes", "/networks"):
            status, _, body = call(daemon, "GET", f"{path}?filters=%7Bbad")
            assert status == 400, (path, body)
            assert body["message"].startswith("invalid filter"), body
    finally:
        call(daemon, "DELETE", f"/containers/{created['Id']}?force=1")


@pytest.mark.parametrize("path,message", [
    ("/containers/nosuch/json", "No such container: nosuch"),
    ("/images/nosuch/json", "No such image: nosuch"),
    ("/exec/nosuch/json", "No such exec instance: nosuch"),
    ("/volumes/nosuch", "get nosuch: no such volume"),
])
def test_404_bodies_say_no_such(daemon, path, message):
    status, _, body = call(daemon, "GET", path)
    assert status == 404
    # Docker 20.10 says "no such image: nosuch: No such image: nosuch:latest"; clients match on
    # the "No such image: " part, which both have.
    assert message in body["message"], body


def test_409_name_in_use_and_running_container_rm(daemon, image):
    status, _, first = call(daemon, "POST", "/containers/create?name=compat-409",
                            {"Image": image, "Cmd": ["sleep", "100"]})
    assert status == 201, first
    try:
        status, _, body = call(daemon, "POST", "/containers/create?name=compat-409",
                               {"Image": image, "Cmd": ["true"]})
        assert status == 409
        assert 'The container name "/compat-409" is already in use' in body["message"], body
        assert call(daemon, "POST", f"/containers/{first['Id']}/start")[0] == 204
        status, _, body = call(daemon, "DELETE", f"/containers/{first['Id']}")
        assert status == 409
        assert "cannot remove" in body["message"].lower() and "running" in body["message"].lower(), body
        status, _, body = call(daemon, "DELETE", f"/images/{image}")
        assert status == 409, body
        assert "conflict" in body["message"].lower() or "in use" in body["message"].lower(), body
    finally:
        assert call(daemon, "DELETE", f"/containers/{first['Id']}?force=1")[0] == 204
    assert call(daemon, "GET", "/containers/compat-409/json")[0] == 404


def test_x_registry_auth_is_accepted_and_a_bad_one_refused(daemon):
    good = base64.urlsafe_b64encode(json.dumps({"username": "u", "password": "p",
                                                "serveraddress": "127.0.0.1:1"}).encode()).decode()
    # A push of an image that is not there: the header is decoded, then the image is looked up.
    status, _, body = call(daemon, "POST", "/images/127.0.0.1:1/nosuch/push?tag=latest",
                           headers={"X-Registry-Auth": good})
    assert status == 404, body
    assert body["message"] == "An image does not exist locally with the tag: 127.0.0.1:1/nosuch"  # Docker's words
    status, _, body = call(daemon, "POST", "/images/127.0.0.1:1/nosuch/push?tag=latest",
                           headers={"X-Registry-Auth": "%%%not-base64"})
    assert status == 400
    assert "X-Registry-Auth" in body["message"], body


@pytest.mark.parametrize("method,path", [("GET", "/nope"), ("GET", "/v1.43/containers/x/nope"),
                                         ("DELETE", "/info"), ("POST", "/containers/json")])
def test_unknown_endpoint_or_wrong_method_is_404_naming_it(daemon, method, path):
    status, _, body = call(daemon, method, path)
    assert status == 404  # Docker answers a wrong method with 404 "page not found" as well
    assert body["message"].startswith("page not found"), body
    assert path in body["message"], body


@pytest.mark.parametrize("method,path,feature", [
    ("POST", "/swarm/init", "swarm"), ("POST", "/v1.43/swarm/join", "swarm"),
    ("GET", "/plugins", "plugins"), ("POST", "/build", "build"),
    ("GET", "/distribution/busybox/json", "distribution"), ("POST", "/session", "session"),
])
def test_unsupported_sections_answer_501_naming_the_feature(daemon, method, path, feature):
    status, _, body = call(daemon, method, path)
    assert status == 501
    bare = path.replace("/v1.43", "")
    assert body == {"message": f"minictr does not support {feature}: {bare}"}


@pytest.mark.parametrize("method,path,message", [
    ("POST", "/swarm/leave?force=1", "This node is not part of a swarm"),
    *[(method, path, 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
                     'this node to swarm and try again.')
      for method, path in [("GET", "/v1.43/swarm"), ("GET", "/nodes"), ("GET", "/services"), ("GET", "/tasks"),
                           ("GET", "/secrets"), ("POST", "/configs/create"), ("GET", "/services/x/logs")]],
])
def test_swarm_endpoints_answer_as_a_docker_engine_in_no_swarm(daemon, method, path, message):
    # moby's daemon/cluster: errNoSwarm for leave, errNoManager for the rest, both 503.
    status, _, body = call(daemon, method, path)
    assert (status, body) == (503, {"message": message})


@pytest.mark.parametrize("args,line", [
    (["swarm", "leave", "--force"], "Error response from daemon: This node is not part of a swarm"),
    (["node", "ls"], 'Error response from daemon: This node is not a swarm manager. Use "docker swarm init" or '
                     '"docker swarm join" to connect this node to swarm and try again.'),
])
def test_docker_cli_swarm_commands_fail_as_with_docker_in_no_swarm(daemon, args, line):
    result = docker(daemon, *args)
    assert result.returncode == 1
    assert result.stderr.strip() == line


def test_info_says_debug_and_an_inactive_swarm(daemon):
    status, _, body = call(daemon, "GET", "/info")
    assert status == 200
    assert body["Debug"] is False
    assert body["Swarm"] == {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                             "Error": "", "RemoteManagers": None}
    assert docker(daemon, "info", "--format", "{{.Swarm.LocalNodeState}} {{.Debug}}").stdout == "inactive false\n"


@pytest.mark.parametrize("args,feature", [
    (["swarm", "init"], "swarm"),
    (["plugin", "ls"], "plugins"),
])
def test_docker_cli_unsupported_commands_fail_with_one_clear_line(daemon, args, feature):
    result = docker(daemon, *args)
    assert result.returncode != 0
    assert f"minictr does not support {feature}" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_docker_build_fails_clearly(daemon, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = docker_env(daemon, {"DOCKER_BUILDKIT": "0"}, "build", "-q", str(tmp_path))
    assert result.returncode != 0
    assert "minictr does not support build" in result.stderr, result.stderr


@pytest.mark.parametrize("flags,message", [
    (["--security-opt", "label=type:svirt_t"], "minictr does not support SELinux: --security-opt label=type:svirt_t (only label=disable is accepted)"),
    (["--security-opt", "apparmor=docker-default"], "minictr does not support AppArmor: --security-opt apparmor=docker-default (only apparmor=unconfined is accepted)"),
    (["--device-read-bps", "/dev/null:1mb"], "minictr does not support --device-read-bps (HostConfig.BlkioDeviceReadBps)"),
    (["--blkio-weight", "100"], "minictr does not support --blkio-weight (HostConfig.BlkioWeight)"),
    (["--memory-reservation", "10m"], "minictr does not support --memory-reservation (HostConfig.MemoryReservation)"),
    (["--cgroup-parent", "elsewhere"], "minictr does not support --cgroup-parent (HostConfig.CgroupParent)"),
    (["--storage-opt", "size=1G"], "minictr does not support --storage-opt (HostConfig.StorageOpt): minictr's storage "
                                   "drivers (overlay, fuse-overlayfs, vfs) cannot limit a container's size"),
])
def test_docker_run_flags_minictr_would_ignore_fail_clearly(daemon, image, flags, message):
    before = docker(daemon, "ps", "-aq").stdout
    result = docker(daemon, "run", "--rm", *flags, image, "true")
    assert result.returncode == 125, result.stderr
    # The CLI's own frame around the daemon's line, as against Docker: the line, then its usage hint.
    assert result.stderr.splitlines()[0] == run_error(message), result.stderr
    assert "Traceback" not in result.stderr
    assert docker(daemon, "ps", "-aq").stdout == before  # nothing created


@pytest.mark.parametrize("opt", ["label=disable", "label:disable", "apparmor=unconfined"])
def test_security_opts_asking_for_no_lsm_are_accepted(daemon, image, opt):
    result = docker(daemon, "run", "--rm", "--security-opt", opt, image, "echo", "ok")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_minictr_cli_refuses_selinux_label_too(daemon, image):
    result = daemon.cli("run", "--rm", "--security-opt", "label=level:s0:c1", image, "true")
    assert result.returncode != 0
    assert "minictr does not support SELinux" in result.stderr
    assert "Traceback" not in result.stderr


def test_docker_outputs_as_dockers_own(daemon, image):
    """Outputs bench/docker_compat.py saw Docker 20.10 give for the same commands (bench/results/issue8)."""
    assert docker(daemon, "run", "--name", "cmp-exit", image, "sh", "-c", "exit 3").returncode == 3
    try:
        ps = docker(daemon, "ps", "-a", "--filter", "name=cmp-exit", "--format", "{{.Names}}|{{.Image}}|{{.Command}}")
        assert ps.stdout == f"cmp-exit|{image}|\"sh -c 'exit 3'\"\n"
        fmt = ("{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{.Config.Cmd}} {{.Path}} {{.Args}} "
               "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.LogConfig.Type}} {{.Config.Image}}")
        assert docker(daemon, "inspect", "--format", fmt, "cmp-exit").stdout == \
            f"/cmp-exit exited 3 [sh -c exit 3] sh [-c exit 3] no json-file {image}\n"
        cid = docker(daemon, "inspect", "--format", "{{.Id}}", "cmp-exit").stdout.strip()
        image_id = docker(daemon, "image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
        rmi = docker(daemon, "rmi", image)
        assert rmi.returncode == 1
        assert rmi.stderr == (f'Error response from daemon: conflict: unable to remove repository reference "{image}" '
                              f"(must force) - container {cid[:12]} is using its referenced image "
                              f"{image_id.removeprefix('sha256:')[:12]}\n")
        created = docker(daemon, "create", "--name", "cmp-exit", image, "true")
        assert created.returncode == 1
        assert created.stderr == (f'Error response from daemon: Conflict. The container name "/cmp-exit" is already in '
                                  f'use by container "{cid}". You have to remove (or rename) that container to be able '
                                  f"to reuse that name.\n")
        assert docker(daemon, "inspect", "nosuch").stderr == "Error: No such object: nosuch\n"
        assert docker(daemon, "network", "inspect", "nosuch").stderr == \
            not_found("network", "nosuch", "network nosuch not found") + "\n"
    finally:
        docker(daemon, "rm", "-f", "cmp-exit")


def test_volume_prune_before_api_1_42_takes_named_volumes_too(daemon):
    """Docker's router adds all=true for a client older than 1.42 (the docker CLI 20.10 speaks 1.41)."""
    only_ours = urllib.parse.quote(json.dumps({"label": ["cmp-prune"]}))
    for name in ("cmp-named", "cmp-anonymous"):
        labels = {"cmp-prune": ""} | ({"com.docker.volume.anonymous": ""} if name == "cmp-anonymous" else {})
        assert call(daemon, "POST", "/volumes/create", {"Name": name, "Labels": labels})[0] == 201
    try:
        for path in (f"/volumes/prune?filters={only_ours}", f"/v1.42/volumes/prune?filters={only_ours}"):
            status, _, body = call(daemon, "POST", path)
            assert status == 200 and body["VolumesDeleted"] in (["cmp-anonymous"], None), (path, body)
        status, _, body = call(daemon, "POST", f"/v1.41/volumes/prune?filters={only_ours}")
        assert status == 200 and body["VolumesDeleted"] == ["cmp-named"]
    finally:
        for name in ("cmp-named", "cmp-anonymous"):
            call(daemon, "DELETE", f"/volumes/{name}")
