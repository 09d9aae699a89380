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
