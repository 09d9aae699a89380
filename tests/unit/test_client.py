"""The CLI's transport: paths and query strings as the Docker API expects them."""

import pytest

from minictr.client import api_path, quote_path, urlencode


def test_urlencode_repeats_list_values_and_drops_none():
    query = {"fromSrc": "-", "changes": ['CMD ["sh"]', "ENV A=b c"], "repo": None, "all": 1}
    assert urlencode(query) == "fromSrc=-&changes=CMD%20%5B%22sh%22%5D&changes=ENV%20A%3Db%20c&all=1"


def test_quote_path_escapes_slashes_and_unicode():
    assert quote_path("a/b:c") == "a%2Fb%3Ac"
    assert quote_path("é") == "%C3%A9"


def _target_sent(tmp_path, path):
    """The request target a Client sends for PATH, as a daemon's socket receives it."""
    import socket
    import threading

    from minictr.client import Client

    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "d.sock"))
    server.listen()
    received = []

    def answer():
        connection, _ = server.accept()
        with connection, connection.makefile("rb") as requests:
            received.append(requests.readline().decode().split(" ")[1])
            while requests.readline() not in (b"\r\n", b""):
                pass
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        Client(str(tmp_path / "d.sock")).get(path)
    finally:
        thread.join(10)
        server.close()
    return received[0]


@pytest.mark.parametrize("name", ["a/b", "what?x=1", "no#fragment", "two words", "100%", "%41 once", "../../images/x"])
def test_a_name_reaches_the_daemon_as_one_path_segment(tmp_path, name):
    from minictr.api import router
    from minictr.api.containers import inspect_container

    target = _target_sent(tmp_path, api_path("/containers/{}/json", name))
    handler, params = router.match("GET", target.partition("?")[0])
    # Decoded once, by the router: `%41` stays `%41`.
    assert handler is inspect_container and params == {"id": name}


def test_the_cli_builds_every_api_path_with_api_path():
    # An f-string path (`f"/containers/{ref}/json"`) is how a quoting was forgotten before.
    import ast
    import pathlib

    import minictr.cli

    offenders = []
    for source in pathlib.Path(minictr.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant) \
                    and str(node.values[0].value).startswith("/") and any(isinstance(v, ast.FormattedValue) for v in node.values):
                offenders.append(f"{source.name}:{node.lineno}")
    assert offenders == []


class _FakeDaemon:
    """A daemon socket whose answers the test scripts: `answers` is a list, one per request, of
    "ok" (200, the connection kept), "close" (200, then the connection closed) or "die" (the
    request read, the connection closed with no answer). Records each request's method."""

    def __init__(self, path, answers):
        import socket
        import threading

        self.answers = list(answers)
        self.received = []
        self.hung_up = threading.Event()  # set each time the daemon has closed a connection
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        self.server.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.answers:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection, connection.makefile("rb") as requests:
                while self.answers:
                    line = requests.readline()
                    if not line:
                        break
                    length = 0
                    while (header := requests.readline()) not in (b"\r\n", b""):
                        if header.lower().startswith(b"content-length:"):
                            length = int(header.split(b":")[1])
                    requests.read(length)
                    self.received.append(line.split(b" ")[0].decode())
                    answer = self.answers.pop(0)
                    if answer == "die":
                        break
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                    if answer == "close":
                        break
            self.hung_up.set()

    def close(self):
        import socket

        self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept of a test that did not use every answer
        self.server.close()
        self.thread.join(5)


def test_a_post_the_daemon_received_before_it_died_is_not_sent_again(tmp_path):
    """A request that may have been carried out (a create) is never re-sent on a new connection:
    the CLI says in one line that the daemon went away."""
    from minictr.client import Client
    from minictr.errors import DaemonUnavailable

    daemon = _FakeDaemon(str(tmp_path / "d.sock"), ["ok", "die", "ok"])
    try:
        client = Client(str(tmp_path / "d.sock"))
        client.get("/_ping")
        with pytest.raises(DaemonUnavailable, match="before answering POST /containers/create") as raised:
            client.post("/containers/create", body={"Image": "x"})
        assert "\n" not in str(raised.value)
    finally:
        daemon.close()
    assert daemon.received == ["GET", "POST"]


def test_a_request_after_the_daemon_closed_an_idle_connection_goes_on_a_new_one(tmp_path):
    from minictr.client import Client

    daemon = _FakeDaemon(str(tmp_path / "d.sock"), ["close", "ok"])
    try:
        client = Client(str(tmp_path / "d.sock"))
        client.get("/_ping")
        assert daemon.hung_up.wait(5)
        client.post("/containers/x/start")
    finally:
        daemon.close()
    assert daemon.received == ["GET", "POST"]
