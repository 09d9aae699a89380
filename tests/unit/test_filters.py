"""`ps --filter` as Docker's daemon matches it, and the filters query in both of Docker's forms."""

from types import SimpleNamespace

import pytest

from minictr.cli.filters import filters_query
from minictr.containers.filters import ContainerFilter
from minictr.errors import InvalidArgument, NotFound


def container(cid, name, state, exit_code=0, labels=None, image="sha256:aaa"):
    return SimpleNamespace(id=cid, name=name, state=state, exit_code=exit_code, image_id=image,
                           config={"Labels": labels or {}}, host_config={"NetworkMode": "default"})


# newest first, as the service hands them over
ALL = [container("ccc333", "web-2", "running", labels={"tier": "web", "env": "prod"}),
       container("bbb222", "db", "exited", exit_code=3, labels={"tier": "db"}, image="sha256:bbb"),
       container("aaa111", "web-1", "created")]


def names(filters, **kwargs):
    lookup = {c.name: c for c in ALL}

    def get(ref):
        if ref not in lookup:
            raise NotFound(f"No such container: {ref}")
        return lookup[ref]

    kwargs.setdefault("ancestor_ids", lambda ref: {"sha256:bbb"} if ref == "dbimage" else set())
    chosen = ContainerFilter(filters, lookup=get, **kwargs).select(ALL, lambda c: c.state)
    return [c.name for c in chosen]


def test_cli_flags_become_the_query():
    assert filters_query(["Status=running", "name= x ", "status=exited"]) == '{"status": ["running", "exited"], "name": ["x"]}'
    assert filters_query([]) is None
    with pytest.raises(InvalidArgument, match="bad format of filter"):
        filters_query(["nonsense"])


def test_default_shows_running_and_all_shows_every_state():
    assert names({}) == ["web-2"]
    assert names({}, all=True) == ["web-2", "db", "web-1"]


def test_status_filter_looks_at_every_state():
    assert names({"status": ["exited"]}) == ["db"]
    assert names({"status": ["created", "running"]}) == ["web-2", "web-1"]


@pytest.mark.parametrize("filters, message", [
    ({"nope": ["x"]}, "invalid filter 'nope'"),
    ({"status": ["sleeping"]}, "invalid filter 'status=sleeping'"),
    ({"exited": ["x"]}, 'parsing "x": invalid syntax'),
    ({"health": ["sick"]}, "invalid filter 'health=sick'"),
])
def test_invalid_filters_are_refused_in_dockers_words(filters, message):
    with pytest.raises(InvalidArgument, match=message):
        names(filters)


def test_name_is_a_regular_expression_search():
    assert names({"name": ["web"]}, all=True) == ["web-2", "web-1"]
    assert names({"name": ["^web-1$"]}, all=True) == ["web-1"]
    assert names({"name": ["/db"]}, all=True) == ["db"]


def test_id_matches_a_prefix():
    assert names({"id": ["bbb"]}, all=True) == ["db"]


def test_labels_must_all_hold():
    assert names({"label": ["tier"]}, all=True) == ["web-2", "db"]
    assert names({"label": ["tier=web", "env=prod"]}, all=True) == ["web-2"]
    assert names({"label": ["tier=web", "env=dev"]}, all=True) == []


def test_exited_matches_the_exit_code_of_stopped_containers():
    assert names({"exited": ["3"]}, all=True) == ["db"]
    assert names({"exited": ["0"]}, all=True) == []


def test_ancestor_matches_the_image_and_its_children():
    assert names({"ancestor": ["dbimage"]}, all=True) == ["db"]
    assert names({"ancestor": ["unknown"]}, all=True) == []


def test_before_and_since_are_relative_to_a_container():
    assert names({"before": ["web-2"]}, all=True) == ["db", "web-1"]
    assert names({"since": ["web-1"]}, all=True) == ["web-2", "db"]
    with pytest.raises(NotFound):
        names({"since": ["ghost"]})


def test_limit_keeps_the_last_created_in_any_state():
    assert names({}, limit=2) == ["web-2", "db"]
    assert names({"status": ["exited", "created"]}, limit=1) == ["db"]
