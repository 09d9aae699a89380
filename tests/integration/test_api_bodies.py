"""Bad API bodies are refused at the door (issue 17, item 4): a 4xx naming the field, nothing
stored, and the daemon keeps serving everyone."""

import json
import os
import socket

import pytest

from tests.integration.conftest import IMAGE
from tests.schema_corpus import malformed_bodies


def request(daemon, method, path, body=b"", headers=()):
    """(status, parsed JSON body) of one request on its own connection."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    head = [f"{method} {path} HTTP/1.1", "Host: x", "Connection: close", "Content-Type: application/json",
            f"Content-Length: {len(body)}", *headers]
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(daemon.socket))
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    payload = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(payload) if payload else None


def _stored(daemon):
    """What a refused body must not change: the listing, and the containers' directories."""
    status, listing = request(daemon, "GET", "/containers/json?all=1")
    assert status == 200, listing
    return sorted(c["Id"] for c in listing), sorted(os.listdir(daemon.data_root / "containers"))


@pytest.fixture
def nothing_stored(daemon, image):
    before = _stored(daemon)
    yield
    assert _stored(daemon) == before


@pytest.mark.parametrize("body, field", [
    ({"Image": IMAGE, "Cmd": [1, 2]}, "ContainerConfig.Cmd"),
    ({"Image": IMAGE, "Env": {"A": "1"}}, "ContainerConfig.Env"),
    ({"Image": IMAGE, "User": 0}, "ContainerConfig.User"),
    ({"Image": IMAGE, "Entrypoint": {"a": "b"}}, "ContainerConfig.Entrypoint"),
    ({"Image": IMAGE, "Volumes": {"/x": 5}}, "ContainerConfig.Volumes"),
    ({"Image": IMAGE, "HostConfig": {"CpuShares": 1e308}}, "HostConfig.CpuShares"),
    ({"Image": IMAGE, "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "abc"}]}}}, "abc"),
], ids=["cmd-numbers", "env-object", "user-number", "entrypoint-object", "volumes-number", "cpushares-1e308",
        "hostport-abc"])
def test_the_issues_create_bodies_are_a_400_naming_the_field(daemon, nothing_stored, body, field):
    status, answer = request(daemon, "POST", "/v1.43/containers/create", body)
    assert status == 400 and field in answer["message"], answer


def test_every_malformed_create_body_is_refused_and_nothing_is_stored(daemon, nothing_stored):
    bodies = malformed_bodies("ContainerConfig", {"Image": IMAGE})
    assert len(bodies) > 300  # every field of ContainerConfig, HostConfig, NetworkingConfig and their parts
    for field, body in bodies:
        status, answer = request(daemon, "POST", "/containers/create", body)
        assert status == 400 and f"Go struct field {field} " in answer["message"], (body, answer)


def test_malformed_update_network_and_volume_bodies_are_refused(daemon, nothing_stored):
    container = daemon.ok("create", IMAGE, "true").strip()
    try:
        cases = [(f"/containers/{container}/update", malformed_bodies("UpdateConfig", {})),
                 ("/networks/create", malformed_bodies("NetworkCreateRequest", {"Name": "h7-bad"})),
                 ("/volumes/create", malformed_bodies("VolumeCreateRequest", {"Name": "h7-bad"}))]
        for path, bodies in cases:
            for field, body in bodies:
                status, answer = request(daemon, "POST", path, body)
                assert status == 400 and f"Go struct field {field} " in answer["message"], (path, body, answer)
        assert "h7-bad" not in daemon.ok("network", "ls") + daemon.ok("volume", "ls")
        host_config = json.loads(daemon.ok("inspect", "-f", "{{json .HostConfig}}", container))
        assert not host_config.get("CpuShares") and not host_config.get("Memory")
    finally:
        daemon.ok("rm", container)


def test_bodies_real_clients_send_still_create(daemon, image):
    from tests.unit.test_schema import DOCKER_CLI, DOCKER_PY

    for body in (DOCKER_CLI, DOCKER_PY):
        # Without what minictr refuses as unsupported (sysctls) or needs more set up for.
        body = {**body, "Image": image, "HostConfig": {**body["HostConfig"], "Binds": None, "Mounts": None,
                                                       "PortBindings": None, "Sysctls": None}}
        status, answer = request(daemon, "POST", "/v1.43/containers/create", body)
        assert status == 201, answer
        daemon.ok("rm", answer["Id"])


def test_a_deeply_nested_body_is_a_400(daemon, nothing_stored):
    for depth in (100, 100_000):
        deep = b'{"Image": "' + IMAGE.encode() + b'", "Labels2": ' + b"[" * depth + b"]" * depth + b"}"
        status, answer = request(daemon, "POST", "/containers/create", deep)
        assert status == 400 and "nested deeper" in answer["message"], answer


def _answer(sock):
    """All the daemon sends until it closes the connection (within 10 s)."""
    sock.settimeout(10)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_body_too_large_is_a_413_without_being_read(daemon, nothing_stored):
    # Announced: answered before a byte of the body is sent.
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(daemon.socket))
        sock.sendall(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 104857600\r\n\r\n")
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert b"too large" in answer
    # Sent chunked, without a length: refused once past the bound.
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(daemon.socket))
        sock.sendall(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b" " * 65536
        try:
            for _ in range(200):  # 12.5 MiB at most
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed after the answer: what is left is not read
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer



@pytest.mark.parametrize("method, path, body", [
    ("POST", "/images/create?fromImage=UPPER/case&tag=latest", b""),
    ("POST", "/containers/create", {"Image": "UPPER/case"}),
    ("POST", "/images/create?fromImage=Ns/app&tag=1", b""),
])
def test_an_uppercase_reference_is_a_400_without_any_lookup(daemon, nothing_stored, method, path, body):
    # MINICTR_REGISTRY_LOOPBACK_ONLY (conftest) turns a registry lookup into another answer.
    status, answer = request(daemon, method, path, body)
    assert status == 400 and "invalid reference format: repository name must be lowercase" in answer["message"], answer
