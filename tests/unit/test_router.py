"""The API router: one handler per (method, path), path arguments decoded as clients quote them."""

import pytest

from minictr.api import router


@pytest.fixture
def scratch_routes(monkeypatch):
    """Routes registered by a test vanish after it (the table is module-global)."""
    monkeypatch.setattr(router, "_ROUTES", list(router._ROUTES))


async def _handler(request):
    return None


async def _other_handler(request):
    return None


def test_a_second_handler_for_the_same_route_is_refused(scratch_routes):
    router.route("POST", "/scratch/{id}/poke")(_handler)
    with pytest.raises(ValueError, match="duplicate route POST /scratch/{id}/poke"):
        router.route("POST", "/scratch/{id}/poke")(_other_handler)


def test_the_same_path_with_another_method_is_a_route_of_its_own(scratch_routes):
    router.route("POST", "/scratch/{id}/poke")(_handler)
    router.route("DELETE", "/scratch/{id}/poke")(_other_handler)
    assert router.match("DELETE", "/scratch/x/poke")[0] is _other_handler


def test_quoted_path_arguments_reach_the_handler_decoded(scratch_routes):
    router.route("GET", "/scratch/{id}/json")(_handler)
    router.route("GET", "/scratch-images/{name*}/json")(_other_handler)
    assert router.match("GET", "/v1.41/scratch/a%20b%3Fc%23d%25/json") == (_handler, {"id": "a b?c#d%"})
    assert router.match("GET", "/scratch-images/localhost%3A5000/a/b%3Av1/json") == (
        _other_handler, {"name": "localhost:5000/a/b:v1"})


def test_the_real_route_table_has_no_duplicates():
    import minictr.api.server  # noqa: F401  (imports every handler module, registering its routes)

    seen = [(method, regex.pattern) for method, regex, _ in router._ROUTES]
    assert len(seen) == len(set(seen))


def _request(chunks, headers=None):
    sent = []

    async def body_reader():
        for chunk in chunks:
            sent.append(chunk)
            yield chunk

    return router.Request("POST", "/x", headers or {}, {}, body_reader, None), sent


def _json(request, struct=None):
    import asyncio

    return asyncio.run(request.json(struct))


def test_a_json_body_past_the_bound_is_a_413_and_the_rest_is_not_read():
    chunk = b" " * (1024 * 1024)
    request, sent = _request([b"{}"] + [chunk] * 100)
    with pytest.raises(router.BodyTooLarge) as e:
        _json(request)
    assert e.value.status == 413 and len(sent) < 10
    announced, sent = _request([chunk], {"content-length": str(100 * 1024 * 1024)})
    with pytest.raises(router.BodyTooLarge):
        _json(announced)
    assert sent == []


def test_a_json_body_nested_too_deep_is_a_400():
    from minictr.errors import InvalidArgument

    for depth in (router.MAX_JSON_DEPTH + 1, 100_000):
        request, _ = _request([b"[" * depth + b"]" * depth])
        with pytest.raises(InvalidArgument, match="nested deeper than"):
            _json(request)
    request, _ = _request([b'{"a": [[[{"b": 1}]]]}'])
    assert _json(request) == {"a": [[[{"b": 1}]]]}


def test_a_json_body_is_decoded_as_the_api_type_it_is():
    from minictr.errors import InvalidArgument

    request, _ = _request([b'{"Image": "x", "Cmd": "sh"}'])
    assert _json(request, "ContainerConfig") == {"Image": "x", "Cmd": ["sh"]}
    request, _ = _request([b'{"Image": "x", "Cmd": [1]}'])
    with pytest.raises(InvalidArgument, match="ContainerConfig.Cmd of type string"):
        _json(request, "ContainerConfig")


def test_a_json_body_as_deep_as_the_bound_is_taken():
    depth = router.MAX_JSON_DEPTH
    request, _ = _request([b'{"a": ' * (depth - 1) + b"1" + b"}" * (depth - 1)])
    assert _json(request)
