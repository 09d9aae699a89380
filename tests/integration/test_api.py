"""The Docker Engine API on the socket: versioned and unversioned paths, headers, error bodies."""

import json
import socket

from .conftest import expected_storage_driver


def raw_request(daemon, method, path):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(daemon.socket))
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_ping_answers_ok_with_the_api_version(daemon):
    status, headers, body = raw_request(daemon, "GET", "/_ping")
    assert (status, body) == (200, b"OK")
    assert headers["api-version"] == "1.43" and headers["ostype"] == "linux"
    status, headers, body = raw_request(daemon, "HEAD", "/_ping")
    assert status == 200 and body == b""


def test_versioned_and_unversioned_paths_are_the_same(daemon, image):
    for prefix in ("", "/v1.43", "/v1.24"):
        status, _, body = raw_request(daemon, "GET", f"{prefix}/images/json")
        assert status == 200
        assert any(f"{image}:latest" in item["RepoTags"] for item in json.loads(body))


def test_errors_have_a_message_body_and_docker_status(daemon):
    status, headers, body = raw_request(daemon, "GET", "/v1.43/containers/nosuch/json")
    assert status == 404 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"message": "No such container: nosuch"}
    status, _, body = raw_request(daemon, "GET", "/no/such/endpoint")
    assert status == 404 and "message" in json.loads(body)


def test_version_and_info(daemon):
    version = daemon.client().get("/version")
    assert version["ApiVersion"] == "1.43" and version["Os"] == "linux"
    info = daemon.client().get("/info")
    assert info["Driver"] == expected_storage_driver(daemon.data_root) and info["DockerRootDir"] == str(daemon.data_root)
    assert ("name=rootless" in info["SecurityOptions"]) == (__import__("os").geteuid() != 0)


def test_a_create_body_with_a_bad_extra_host_is_refused_with_400(daemon, image):
    # The CLI refuses `--add-host foo`; a raw API client is checked by the daemon alike, rather
    # than given a container whose /etc/hosts has a line "\tfoo".
    body = json.dumps({"Image": image, "Cmd": ["true"], "HostConfig": {"ExtraHosts": ["foo"]}}).encode()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(daemon.socket))
        sock.sendall(b"POST /v1.43/containers/create?name=bad-extra-host HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, answer = data.partition(b"\r\n\r\n")
    assert int(head.split()[1]) == 400
    assert "ExtraHosts" in json.loads(answer)["message"] and "host:ip" in json.loads(answer)["message"]
    status, _, _ = raw_request(daemon, "GET", "/v1.43/containers/bad-extra-host/json")
    assert status == 404  # nothing was created
