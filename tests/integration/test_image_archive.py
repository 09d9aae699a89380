"""commit, tag, history, image prune, system df and save: what a user sees of them."""

import json
import subprocess
import tarfile
import time

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
    container_id = inspect(daemon, "to-commit")["Id"]
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
    # As Docker's commit: the container it came from, and that container's config.
    assert document["Container"] == container_id
    assert document["ContainerConfig"]["Cmd"][:2] == ["sh", "-c"]
    assert document["ContainerConfig"]["Hostname"] == container_id[:12]
    assert document["ContainerConfig"]["Image"] == image
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
        # The step below is the parent's, named by its id as Docker names a commit's parent.
        parent_id = _image(daemon, image)["Id"]
        assert lines[2].startswith(parent_id.removeprefix("sha256:")[:12]) and "Imported from -" in lines[2]
        assert daemon.ok("history", "-q", "--no-trunc", "with-history").splitlines() == [image_id, parent_id]
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
    time.sleep(1.5)  # until=1s: only images created more than a second ago
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


# ---- save -----------------------------------------------------------------------------------


def _committed_image(daemon, image, name):
    source = name.replace(":", "-") + "-src"
    daemon.ok("run", "--name", source, image, "sh", "-c", "echo saved > /saved-file && rm /bin/ls")
    daemon.ok("commit", "--change", 'CMD ["cat", "/saved-file"]', source, name)
    daemon.ok("rm", source)
    return _image(daemon, name)


def test_save_writes_dockers_archive_that_load_reads_back_with_the_same_id(daemon, image, clean_daemon, tmp_path):
    import hashlib

    original = _committed_image(daemon, image, "saved-image:v1")
    archive = tmp_path / "saved.tar"
    daemon.ok("save", "-o", str(archive), "saved-image:v1")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("manifest.json"))
        index = json.load(tar.extractfile("index.json"))
        assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= names
        assert manifest[0]["RepoTags"] == ["saved-image:v1"]
        assert manifest[0]["Config"] == "blobs/sha256/" + original["Id"].removeprefix("sha256:")
        for path, diff_id in zip(manifest[0]["Layers"], original["RootFS"]["Layers"]):
            # each layer file is exactly the bytes of its diff id
            assert hashlib.sha256(tar.extractfile(path).read()).hexdigest() == diff_id.removeprefix("sha256:")
        assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "docker.io/library/saved-image:v1"
    loaded = clean_daemon.ok("load", "-i", str(archive))
    assert loaded == "Loaded image: saved-image:v1\n"
    assert _image(clean_daemon, "saved-image:v1")["Id"] == original["Id"]
    assert clean_daemon.ok("run", "--rm", "saved-image:v1") == "saved\n"
    assert clean_daemon.cli("run", "--rm", "saved-image:v1", "test", "-e", "/bin/ls").returncode == 1
    daemon.ok("rmi", "saved-image:v1")


def test_load_of_what_is_not_a_tar_fails_in_one_line_quiet_or_not(daemon, tmp_path):
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"<html>no tar here</html>\n" * 40)
    for quiet in ([], ["-q"]):
        result = daemon.cli("load", *quiet, "-i", str(garbage))
        assert _one_line_error(result), result.stderr
        assert "Error processing tar file(exit status 1): archive/tar: invalid tar header" in result.stderr


def test_save_to_stdout_with_several_images(daemon, image, clean_daemon):
    _committed_image(daemon, image, "saved-a")
    saved = subprocess.run(daemon_cli_args(daemon, "save", "saved-a", image), capture_output=True, timeout=60)
    assert saved.returncode == 0, saved.stderr
    loaded = subprocess.run(daemon_cli_args(clean_daemon, "load"), input=saved.stdout, capture_output=True,
                            timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert b"Loaded image: saved-a:latest" in loaded.stdout and f"Loaded image: {image}:latest".encode() in loaded.stdout
    assert clean_daemon.ok("run", "--rm", "saved-a") == "saved\n"
    daemon.ok("rmi", "saved-a")


def test_save_of_an_unknown_image_writes_nothing(daemon, image, tmp_path):
    out = tmp_path / "never.tar"
    refused = daemon.cli("save", "-o", str(out), image, "no-such-image")
    assert _one_line_error(refused) and "No such image: no-such-image" in refused.stderr
    assert list(tmp_path.iterdir()) == []


def daemon_cli_args(daemon, *args):
    import sys

    return [sys.executable, "-m", "minictr", "-H", daemon.host, *args]


def _podman(top, *args):
    return subprocess.run(["podman", "--root", str(top / "root"), "--runroot", str(top / "run"),
                           "--storage-driver", "vfs", *args], capture_output=True, text=True, timeout=120)


if __import__("os").geteuid() == 0:  # podman as root only (/work/shared/PEERS.md); not defined rootless

    def test_podman_loads_our_archive_and_we_load_podmans_with_the_same_id(daemon, image, clean_daemon, tmp_path):
        original = _committed_image(daemon, image, "to-podman:v1")
        ours = tmp_path / "ours.tar"
        daemon.ok("save", "-o", str(ours), "to-podman:v1")
        import tempfile
        from pathlib import Path

        podman_top = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))  # podman: a runroot of 50 chars at most
        try:
            loaded = _podman(podman_top, "load", "-i", str(ours))
            assert loaded.returncode == 0, loaded.stderr
            assert "Loaded image: docker.io/library/to-podman:v1" in loaded.stdout
            ids = _podman(podman_top, "images", "--no-trunc", "--format", "{{.ID}}").stdout.split()
            assert original["Id"] in ids or original["Id"].removeprefix("sha256:") in ids
            for form in ("docker-archive", "oci-archive"):
                theirs = tmp_path / f"{form}.tar"
                saved = _podman(podman_top, "save", "--format", form, "-o", str(theirs), "docker.io/library/to-podman:v1")
                assert saved.returncode == 0, saved.stderr
                clean_daemon.ok("load", "-i", str(theirs))
                assert _image(clean_daemon, original["Id"])["Id"] == original["Id"]
                assert clean_daemon.ok("run", "--rm", original["Id"]) == "saved\n"
                clean_daemon.ok("rmi", "-f", original["Id"])
        finally:
            _podman(podman_top, "system", "reset", "-f")
            subprocess.run(["rm", "-rf", str(podman_top)], check=False)
        daemon.ok("rmi", "to-podman:v1")


# ---- the docker CLI -------------------------------------------------------------------------


def test_docker_cli_history_system_df_and_save(daemon, image, tmp_path):
    from tests.integration.test_docker_cli import docker

    history = docker(daemon, "history", image)
    assert history.returncode == 0, history.stderr
    assert history.stdout.split("\n")[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert "Imported from -" in history.stdout
    df = docker(daemon, "system", "df")
    assert df.returncode == 0, df.stderr
    assert [line.split()[0] for line in df.stdout.splitlines()[1:]] == ["Images", "Containers", "Local", "Build"]
    _committed_image(daemon, image, "docker-saved")
    archive = tmp_path / "by-docker.tar"
    saved = docker(daemon, "save", "-o", str(archive), "docker-saved")
    assert saved.returncode == 0, saved.stderr
    with tarfile.open(archive) as tar:
        assert json.load(tar.extractfile("manifest.json"))[0]["RepoTags"] == ["docker-saved:latest"]
    daemon.ok("rmi", "docker-saved")
