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


# ---- history --------------------------------------------------------------------------------


def test_history_shows_each_step_newest_first(daemon, image):
    daemon.ok("run", "--name", "history-base", image, "sh", "-c", "echo x > /x")
    daemon.ok("commit", "-m", "added x", "history-base", "with-history")
    daemon.ok("rm", "history-base")
    try:
        lines = daemon.ok("history", "with-history").splitlines()
        assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
        top = lines[1]
        image_id = _image(daemon, "with-history")["Id"]
        assert top.startswith(image_id.removeprefix("sha256:")[:12])
        assert "added x" in top and 'sh -c echo x > /x' in top and "2B" in top
        assert lines[2].startswith("<missing>") and "Imported from -" in lines[2]
        assert daemon.ok("history", "-q", "--no-trunc", "with-history").splitlines() == [image_id, "<missing>"]
        as_json = [json.loads(line) for line in daemon.ok("history", "--format", "json", "with-history").splitlines()]
        assert as_json[0]["Comment"] == "added x" and as_json[0]["Size"] == "2B"
        assert daemon.ok("history", "--format", "{{.Comment}}", "with-history") == "added x\nImported from -\n"
        missing = daemon.cli("history", "no-such-image")
        assert _one_line_error(missing) and "No such image: no-such-image" in missing.stderr
    finally:
        daemon.ok("rmi", "with-history")


# ---- image prune ----------------------------------------------------------------------------


def test_image_prune_removes_dangling_images_only_and_reports_the_space(daemon, image):
    daemon.ok("run", "--name", "prune-src", image, "sh", "-c", "head -c 5000 /dev/zero > /blob")
    daemon.ok("run", "--name", "prune-src2", image, "sh", "-c", "echo other > /other")
    dangling = daemon.ok("commit", "prune-src").strip()
    tagged = daemon.ok("commit", "prune-src2", "prune-tagged").strip()
    daemon.ok("rm", "prune-src", "prune-src2")
    daemon.ok("create", "--name", "prune-user", dangling, "true")
    try:
        out = daemon.ok("image", "prune", "-f")
        assert "Total reclaimed space: 0B" in out  # the dangling one is in use
        assert daemon.cli("image", "inspect", dangling).returncode == 0
    finally:
        daemon.ok("rm", "prune-user")
    out = daemon.ok("image", "prune", "-f")
    assert f"deleted: {dangling}" in out and "Total reclaimed space: 5" in out
    assert daemon.cli("image", "inspect", dangling).returncode == 1
    assert daemon.cli("image", "inspect", tagged).returncode == 0
    # -a: every image no container uses, tagged or not, filtered by label
    out = daemon.ok("image", "prune", "-a", "-f", "--filter", "label=never-set")
    assert "Total reclaimed space: 0B" in out and daemon.cli("image", "inspect", tagged).returncode == 0
    daemon.ok("create", "--name", "keeps-base", image, "true")
    try:
        out = daemon.ok("image", "prune", "-a", "-f", "--filter", "until=1s")
        assert "untagged: prune-tagged:latest" in out and f"deleted: {tagged}" in out
        assert daemon.cli("image", "inspect", image).returncode == 0
    finally:
        daemon.ok("rm", "keeps-base")
    bad = daemon.cli("image", "prune", "-f", "--filter", "colour=blue")
    assert _one_line_error(bad) and "invalid filter 'colour'" in bad.stderr


def test_image_prune_asks_first(daemon, image):
    daemon.ok("run", "--name", "ask-src", image, "true")
    dangling = daemon.ok("commit", "ask-src").strip()
    daemon.ok("rm", "ask-src")
    answered_no = daemon.cli("image", "prune", input="n\n")
    assert "WARNING! This will remove all dangling images." in answered_no.stdout
    assert daemon.cli("image", "inspect", dangling).returncode == 0
    assert f"deleted: {dangling}" in daemon.cli("image", "prune", input="y\n").stdout


# ---- system df ------------------------------------------------------------------------------


def test_system_df_counts_images_containers_and_volumes(daemon, image):
    daemon.ok("volume", "create", "df-volume")
    daemon.ok("run", "--name", "df-ctr", "-v", "df-volume:/data", image, "sh", "-c",
              "head -c 3000 /dev/zero > /data/f; head -c 7000 /dev/zero > /f")
    try:
        lines = daemon.ok("system", "df").splitlines()
        assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        rows = {line[:16].strip(): line[16:].split() for line in lines[1:]}
        assert set(rows) == {"Images", "Containers", "Local Volumes", "Build Cache"}
        assert rows["Build Cache"] == ["0", "0", "0B", "0B"]
        usage = json.loads(daemon.client().request("GET", "/system/df").read())
        mine = next(c for c in usage["Containers"] if c["Names"] == ["/df-ctr"])
        assert mine["SizeRw"] >= 7000
        volume = next(v for v in usage["Volumes"] if v["Name"] == "df-volume")
        assert volume["UsageData"] == {"Size": 3000, "RefCount": 1}
        base = next(i for i in usage["Images"] if image + ":latest" in i["RepoTags"])
        assert base["Containers"] >= 1 and base["SharedSize"] >= 0
        assert usage["BuildCache"] == [] and usage["LayersSize"] >= base["Size"]
        as_json = [json.loads(line) for line in daemon.ok("system", "df", "--format", "json").splitlines()]
        assert [row["Type"] for row in as_json] == ["Images", "Containers", "Local Volumes", "Build Cache"]
        verbose = daemon.ok("system", "df", "-v")
        assert "Local Volumes space usage:" in verbose and "df-volume" in verbose and "df-ctr" in verbose
    finally:
        daemon.ok("rm", "df-ctr")
        daemon.ok("volume", "rm", "df-volume")
