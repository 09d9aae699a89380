"""commit, tag, history, image prune, system df and save: what a user sees of them."""

import json
import subprocess
import tarfile

import pytest

from tests.integration.conftest import inspect


def _image(daemon, ref):
    return json.loads(daemon.ok("image", "inspect", ref))[0]


def _one_line_error(result):
    lines = result.stderr.strip().splitlines()
    return result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr


# ---- commit ---------------------------------------------------------------------------------


def test_commit_keeps_changes_and_deletions_of_a_stopped_container(daemon, image):
    daemon.ok("run", "--name", "to-commit", image, "sh", "-c",
              "echo kept > /added && rm /bin/ls && rm -rf /usr/sbin && mkdir /usr/sbin && echo new > /usr/sbin/only"
              " && mkdir -p /srv/sub && echo inner > /srv/sub/file")
    image_id = daemon.ok("commit", "-m", "my changes", "-a", "me <me@example.com>", "to-commit", "committed:v1").strip()
    daemon.ok("rm", "to-commit")
    assert image_id.startswith("sha256:")
    shown = daemon.ok("run", "--rm", "committed:v1", "sh", "-c",
                      "cat /added; test -e /bin/ls && echo ls-there; ls /usr/sbin; cat /srv/sub/file")
    assert shown == "kept\nonly\ninner\n"
    document = _image(daemon, "committed:v1")
    parent = _image(daemon, image)
    assert document["Id"] == image_id
    assert document["Comment"] == "my changes" and document["Author"] == "me <me@example.com>"
    assert document["RootFS"]["Layers"][:-1] == parent["RootFS"]["Layers"]
    assert len(document["RootFS"]["Layers"]) == len(parent["RootFS"]["Layers"]) + 1
    daemon.ok("rmi", "committed:v1")


def test_commit_of_a_running_container_with_changes(daemon, image):
    daemon.ok("run", "-d", "--name", "running-commit", image, "sh", "-c", "echo live > /live; sleep 300")
    try:
        from tests.integration.conftest import wait_until
        wait_until(lambda: daemon.cli("exec", "running-commit", "cat", "/live").stdout == "live\n", what="file")
        daemon.ok("commit", "--change", "ENV COMMITTED=yes", "--change", 'CMD ["sh", "-c", "echo $COMMITTED; cat /live"]',
                  "running-commit", "committed-live")
        assert inspect(daemon, "running-commit")["State"]["Running"] is True
        assert daemon.ok("run", "--rm", "committed-live") == "yes\nlive\n"
        assert _image(daemon, "committed-live")["Config"]["Env"][-1] == "COMMITTED=yes"
    finally:
        daemon.ok("rm", "-f", "running-commit")
    daemon.ok("rmi", "committed-live")


def test_commit_leaves_out_the_monitors_mount_points(daemon, image):
    daemon.ok("run", "--name", "clean-commit", image, "true")
    image_id = daemon.ok("commit", "clean-commit").strip()
    daemon.ok("rm", "clean-commit")
    daemon.ok("tag", image_id, "clean-commit-image")
    daemon.ok("create", "--name", "diff-of-commit", "clean-commit-image", "true")
    try:
        assert daemon.ok("diff", "diff-of-commit") == ""
    finally:
        daemon.ok("rm", "diff-of-commit")
    assert _image(daemon, image_id)["RepoTags"] == ["clean-commit-image:latest"]
    daemon.ok("rmi", "clean-commit-image")


def test_commit_refuses_a_bad_change_and_an_unknown_container(daemon, image):
    daemon.ok("create", "--name", "bad-change", image, "true")
    before = daemon.ok("images", "-q", "--no-trunc")
    try:
        refused = daemon.cli("commit", "--change", "FROB x", "bad-change", "never")
        assert _one_line_error(refused) and "FROB" in refused.stderr
        missing = daemon.cli("commit", "no-such-container", "never")
        assert _one_line_error(missing) and "No such container: no-such-container" in missing.stderr
    finally:
        daemon.ok("rm", "bad-change")
    assert daemon.ok("images", "-q", "--no-trunc") == before


# ---- tag ------------------------------------------------------------------------------------


def test_tag_names_an_image_and_rmi_untags_it(daemon, image):
    daemon.ok("tag", image, "another/name:v2")
    assert "another/name:v2" in _image(daemon, image)["RepoTags"]
    assert daemon.ok("rmi", "another/name:v2") == "Untagged: another/name:v2\n"
    missing = daemon.cli("tag", "no-such-image", "x:y")
    assert _one_line_error(missing) and "No such image: no-such-image" in missing.stderr
    bad = daemon.cli("tag", image, "Bad Name")
    assert _one_line_error(bad)
