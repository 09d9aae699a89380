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
