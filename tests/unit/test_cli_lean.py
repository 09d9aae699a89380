"""The CLI's hot path stays lean: `minictr run --rm IMG CMD` and the other plain container
commands import none of the pure-Python stdlib modules that cost milliseconds each (json, re,
enum, socket, signal, threading, …), so that the CLI adds little more than Python's own start-up
to every container run. Each command runs for real, against a fake daemon."""

import json
import socket
import subprocess
import sys
import threading

import pytest

from minictr.cli import bodies
from minictr.cli.fast_spec import SPEC

# With what each imports, 3 to 9 ms apiece; the C modules beneath them (_json, _socket, _signal,
# _thread) cost nothing and are what the hot path uses.
HEAVY = ("enum", "re", "json", "socket", "signal", "threading", "selectors", "struct", "functools",
         "collections", "contextlib", "typing",
         "minictr.spec.schema")  # the Engine API's types: the daemon's door checks bodies, not the CLI

ID = "c0ffee" * 10 + "abcd"
SUMMARY = {"Id": ID, "Names": ["/c1"], "Image": "bb", "ImageID": "sha256:" + "b" * 64, "Command": "sleep 9",
           "Created": 1700000000, "Ports": [], "State": "running", "Status": "Up 2 minutes"}
ANSWERS = {
    ("POST", "/containers/create"): (201, {"Id": ID, "Warnings": []}),
    ("POST", f"/containers/{ID}/start"): (204, None),
    ("POST", f"/containers/{ID}/wait"): (200, {"StatusCode": 0, "Error": None}),
    ("POST", "/containers/c1/wait"): (200, {"StatusCode": 3, "Error": None}),
    ("POST", "/containers/c1/stop"): (204, None),
    ("POST", "/containers/c1/kill"): (204, None),
    ("DELETE", "/containers/c1"): (204, None),
    ("GET", "/containers/json"): (200, [SUMMARY]),
    ("POST", "/containers/c1/exec"): (201, {"Id": "e1"}),
    ("GET", "/exec/e1/json"): (200, {"ID": "e1", "Running": False, "ExitCode": 0}),
}
# Hijacked streams: one line of stdout in Docker's frame, then the end of the stream.
HIJACKED = {f"/containers/{ID}/attach", "/exec/e1/start"}
OUTPUT = b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"


class FakeDaemon:
    """Canned answers of the Engine API on a Unix socket, any number of connections at once."""

    def __init__(self, path):
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        self.server.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.server.close()

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        with connection, connection.makefile("rb") as requests:
            while line := requests.readline():
                method, target, _ = line.decode().split(" ")
                headers = {}
                while (header := requests.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                requests.read(int(headers.get("content-length", 0)))
                path = "/" + target.split("?")[0].split("/", 2)[2]  # without the /v1.43
                if path in HIJACKED:
                    connection.sendall(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + OUTPUT)
                    return
                status, answer = ANSWERS.get((method, path), (404, {"message": f"fake daemon: no {method} {path}"}))
                body = b"" if answer is None else json.dumps(answer).encode()
                connection.sendall(b"HTTP/1.1 %d Fake\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                   % (status, len(body), body))


@pytest.fixture
def daemon_socket(tmp_path):
    path = str(tmp_path / "minictr.sock")
    daemon = FakeDaemon(path)
    yield path
    daemon.close()


# Run the CLI; report on stderr the heavy modules it imported (beyond any that Python's own
# start-up, site and .pth files, imported already).
_PROBE = """
import sys
heavy = sys.argv.pop(1).split(",")
before = {name for name in heavy if name in sys.modules}
try:
    from minictr.cli import main
    main()
finally:
    print("imported:", " ".join(name for name in heavy if name in sys.modules and name not in before), file=sys.stderr)
"""


# Each command line with what it prints (None: not checked here).
COMMANDS = [
    (["run", "--rm", "bb", "true"], "hi\n"),
    (["run", "--rm", "--name", "web", "-e", "A=1", "-l", "k=v", "-w", "/", "--network", "none", "bb", "sh", "-c",
      "echo hi"], "hi\n"),
    (["run", "-d", "bb", "sleep", "9"], ID + "\n"),
    (["create", "bb"], ID + "\n"),
    (["exec", "c1", "echo", "hi"], "hi\n"),
    (["ps"], None),
    (["ps", "-a", "-q"], "c0ffeec0ffee\n"),
    (["stop", "c1"], "c1\n"),
    (["kill", "c1"], "c1\n"),
    (["rm", "-f", "c1"], "c1\n"),
    (["wait", "c1"], "3\n"),
]


@pytest.mark.parametrize("argv, output", COMMANDS, ids=[" ".join(argv) for argv, _ in COMMANDS])
def test_the_hot_commands_import_no_heavy_module(daemon_socket, argv, output):
    result = subprocess.run([sys.executable, "-c", _PROBE, ",".join(HEAVY), "-H", f"unix://{daemon_socket}", *argv],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    *errors, imported = result.stderr.splitlines()
    assert (result.returncode, errors) == (0, [])
    assert output is None or result.stdout == output
    assert imported == "imported: "


def test_ps_prints_docker_s_table():
    # (the table the lean `ps` prints without re: fields alone take the template lexer's short way)
    from minictr.cli.container_format import DEFAULT_TABLE, render_ps

    lines = render_ps([SUMMARY], DEFAULT_TABLE, trunc=True).splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert lines[1].startswith("c0ffeec0ffee   bb        \"sleep 9\"   ") and lines[1].endswith("  c1")


def test_resource_options_reach_the_create_body():
    # (spec/resources.py, which the lean path imports, parses sizes with re only when given one)
    options = {option["name"]: option["default"] for option in SPEC["run"]["options"]}
    options.update(image="bb", command=(), memory="64m", ulimit=("nofile=10:20",))
    host_config = bodies.create_body(options)["HostConfig"]
    assert host_config["Memory"] == 64 * 1024 * 1024
    assert host_config["Ulimits"] == [{"Name": "nofile", "Soft": 10, "Hard": 20}]
