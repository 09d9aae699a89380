"""spec/restart.py: one restart policy for the CLI's --restart, the daemon's create and update
checks, and inspect's view."""

import pytest

from minictr.errors import InvalidArgument
from minictr.spec import restart


@pytest.mark.parametrize("text, policy", [
    ("no", {"Name": "", "MaximumRetryCount": 0}),
    ("always", {"Name": "always", "MaximumRetryCount": 0}),
    ("unless-stopped", {"Name": "unless-stopped", "MaximumRetryCount": 0}),
    ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
    ("on-failure:5", {"Name": "on-failure", "MaximumRetryCount": 5}),
])
def test_restart_policies_parse_as_docker_does(text, policy):
    assert restart.parse(text) == policy


@pytest.mark.parametrize("text", ["sometimes", "always:3", "on-failure:x", "on-failure:-1"])
def test_bad_restart_policies_are_refused(text):
    with pytest.raises(InvalidArgument):
        restart.parse(text)


@pytest.mark.parametrize("policy, auto_remove, message", [
    ({"Name": "sometimes"}, False, "invalid restart policy 'sometimes'"),
    ({"Name": "always", "MaximumRetryCount": 3}, False, "can only be used with 'on-failure'"),
    ({"Name": "on-failure", "MaximumRetryCount": -1}, False, "cannot be negative"),
    ({"Name": "always"}, True, "can't create 'AutoRemove' container with restart policy"),
])
def test_the_daemon_refuses_bad_policies_in_dockers_words(policy, auto_remove, message):
    with pytest.raises(InvalidArgument, match=message):
        restart.check(policy, auto_remove)


def test_what_the_cli_sends_passes_the_daemons_check():
    for text in ("no", "always", "unless-stopped", "on-failure:5"):
        restart.check(restart.parse(text))
    restart.check(restart.parse("no"), auto_remove=True)
    restart.check(None)


def test_an_update_gives_a_policy_only_when_it_names_one():
    assert restart.updated({"AutoRemove": False}, None) is None
    assert restart.updated({"AutoRemove": False}, {"Name": ""}) is None
    assert restart.updated({"AutoRemove": False}, {"Name": "on-failure", "MaximumRetryCount": 2}) == {
        "Name": "on-failure", "MaximumRetryCount": 2}
    with pytest.raises(InvalidArgument, match="AutoRemove is enabled"):
        restart.updated({"AutoRemove": True}, {"Name": "always"})


def test_inspect_shows_an_empty_policy_as_no():
    assert restart.normalize({"Name": "", "MaximumRetryCount": 0}) == {"Name": "no", "MaximumRetryCount": 0}
    assert restart.normalize(None) == {"Name": "no", "MaximumRetryCount": 0}
    assert restart.normalize({"Name": "always"}) == {"Name": "always", "MaximumRetryCount": 0}
