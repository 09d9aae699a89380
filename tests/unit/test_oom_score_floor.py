"""--oom-score-adj against the daemon's own score: a user's systemd runs its services (the rootless daemon)
at oom_score_adj 200, and a container that asks for nothing must still start there."""

import pytest

from minictr.containers import resources
from minictr.errors import InvalidArgument


class _NoCgroups:
    controllers = frozenset()


@pytest.fixture
def rootless_at_200(monkeypatch):
    monkeypatch.setattr(resources, "_own_oom_score_adj", lambda: 200)
    return resources.Resources(_NoCgroups(), rootless=True)


def test_a_container_that_asks_for_no_score_starts_under_a_daemon_at_200(rootless_at_200):
    for host_config in ({}, {"OomScoreAdj": 0}, {"OomScoreAdj": None}):
        assert rootless_at_200.check(dict(host_config)) == []


def test_a_score_below_the_daemons_is_refused_in_one_line(rootless_at_200):
    with pytest.raises(InvalidArgument, match="--oom-score-adj 100 is below the daemon's own 200"):
        rootless_at_200.check({"OomScoreAdj": 100})
    assert rootless_at_200.check({"OomScoreAdj": 300}) == []
