"""The real docker CLI drives minictr's images, volumes and system commands as Docker's: `images`
(table, -q, --format, filters), `tag`, `rmi`, `commit`, `history`, `export`, `import`, `save` to
stdout, `load` (-i and stdin), anonymous volumes and `volume prune`, `system prune -f`, `events
--filter`. (pull/push: test_pull.py, test_push.py; networks: test_network_api.py; `save -o`,
`system df`: test_image_archive.py; volume create/ls/inspect/rm: test_volumes.py.)"""

import io
import json
import re
import subprocess
import tarfile
import time

import pytest

from tests.integration.dockercli import PATH as DOCKER_PATH, not_found, older_than
from tests.integration.registry import registry, registry_manifest  # noqa: F401 - fixtures
from tests.integration.test_docker_cli import docker

SHORT_ID = re.compile(r"^[0-9a-f]{12}$")


def ok(daemon, *args, input=None):
    result = docker(daemon, *args, input=input)
    assert result.returncode == 0, f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr}"
    return result.stdout


def piped(daemon, *args, stdin):
    """`docker ARGS` reading the binary file `stdin` (a tar) on its standard input. (Only after a
    docker() call in the test: that one is the check that the CLI is there.)"""
    with open(stdin, "rb") as source:
        return subprocess.run(["docker", "-H", daemon.host, *args], stdin=source, capture_output=True, text=True,
                              timeout=60, env={"PATH": DOCKER_PATH, "HOME": str(daemon.top)})


def image_id(daemon, ref):
    return ok(daemon, "image", "inspect", "--format", "{{.Id}}", ref).strip()


@pytest.fixture
def refs(daemon):
    """Image references a test makes: removed at the end whatever happens."""
    made = []
    yield made
    for ref in made:
        daemon.cli("rmi", "-f", ref)


def test_images_table_quiet_format_and_filters(daemon, image, refs):
    refs.extend(["dki-a/one:1", "dki-a/two:2", "dki-b:1"])
    for ref in refs:
        ok(daemon, "tag", image, ref)
    full = image_id(daemon, image)
    short = full.removeprefix("sha256:")[:12]
    table = ok(daemon, "images", "dki-a/one").splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert len(table) == 2 and table[1].split()[:3] == ["dki-a/one", "1", short]
    assert ok(daemon, "images", "-q", "dki-b").split() == [short]
    listed = ok(daemon, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "-f", "reference=dki-a/*")
    assert sorted(listed.splitlines()) == [f"dki-a/one:1 {short}", f"dki-a/two:2 {short}"]
    # `*` does not cross a `/` (Go's path.Match), a tag pattern matches `name:tag`.
    assert ok(daemon, "images", "-q", "-f", "reference=dki-*").split() == [short]
    assert ok(daemon, "images", "--format", "{{.Repository}}", "-f", "reference=*/*:2").split() == ["dki-a/two"]
    assert ok(daemon, "images", "--no-trunc", "-q", "dki-b").split() == [full]
    assert "dki-" not in ok(daemon, "images", "-f", "dangling=true")
    assert short in ok(daemon, "images", "-q", "-f", "dangling=false")
    assert ok(daemon, "images", "-q", "-f", "label=no-such-label") == ""
    if older_than(23):
        # The CLI 20.10 has no `--format json`: the word is a template of its own, printed once a row.
        assert ok(daemon, "images", "--format", "json", "dki-b") == "json\n"
        lines = ok(daemon, "images", "--format", "{{json .}}", "dki-b")
    else:
        lines = ok(daemon, "images", "--format", "json", "dki-b")
    as_json = [json.loads(line) for line in lines.splitlines()]
    assert [(row["Repository"], row["Tag"], row["ID"]) for row in as_json] == [("dki-b", "1", short)]
    for bad, message in ((["-f", "bogus=1"], "invalid filter 'bogus'"),
                         (["-f", "dangling=maybe"], "invalid filter 'dangling=maybe'"),
                         (["-f", "before=dki-none"], "No such image: dki-none:latest")):
        result = docker(daemon, "images", *bad)
        assert result.returncode == 1 and result.stderr.strip() == f"Error response from daemon: {message}"


def test_images_before_and_since_and_label(daemon, image, refs):
    refs.append("dki-labelled:1")
    ok(daemon, "run", "--name", "dki-lab-src", image, "true")
    try:
        time.sleep(1.1)  # Created has seconds: the new image must be newer than the base
        ok(daemon, "commit", "-c", "LABEL tier=dki", "dki-lab-src", "dki-labelled:1")
    finally:
        daemon.cli("rm", "-f", "dki-lab-src")
    fmt = ["--format", "{{.Repository}}"]
    assert ok(daemon, "images", *fmt, "-f", "label=tier=dki").split() == ["dki-labelled"]
    assert "dki-labelled" in ok(daemon, "images", *fmt, "-f", f"since={image}").split()
    assert image not in ok(daemon, "images", *fmt, "-f", f"since={image}").split()
    assert image in ok(daemon, "images", *fmt, "-f", "before=dki-labelled:1").split()
    assert "dki-labelled" not in ok(daemon, "images", *fmt, "-f", "before=dki-labelled:1").split()


def test_tag_rmi_and_their_events(daemon, image, refs):
    refs.extend(["dki-tag:1", "dki-tag:2"])
    since = f"{time.time() - 1:.3f}"
    full = image_id(daemon, image)
    assert ok(daemon, "tag", image, "dki-tag:1") == ""
    ok(daemon, "tag", "dki-tag:1", "dki-tag:2")
    assert image_id(daemon, "dki-tag:2") == full
    assert ok(daemon, "rmi", "dki-tag:1", "dki-tag:2") == "Untagged: dki-tag:1\nUntagged: dki-tag:2\n"
    assert ok(daemon, "images", "-q", "dki-tag") == ""
    missing = docker(daemon, "rmi", "dki-tag:1")
    assert missing.returncode == 1
    assert missing.stderr.strip() == not_found("image", "dki-tag:1", "No such image: dki-tag:1")
    bad = docker(daemon, "tag", image, "Dki-Upper")
    assert bad.returncode != 0 and "must be lowercase" in bad.stderr
    until = f"{time.time() + 0.5:.3f}"
    events = ok(daemon, "events", "--since", since, "--until", until, "--filter", f"image={full}",
                "--filter", "event=tag", "--filter", "event=untag",
                "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}")
    assert events.splitlines() == [f"tag {full} dki-tag:1", f"tag {full} dki-tag:2",
                                   f"untag {full} dki-tag:1", f"untag {full} dki-tag:2"]


def test_commit_history_export_and_import(daemon, image, refs, tmp_path):
    refs.extend(["dki-commit:1", "dki-imported:1", "dki-imported:2"])
    ok(daemon, "run", "--name", "dki-cm-src", image, "sh", "-c", "echo hello > /greeting")
    try:
        committed = ok(daemon, "commit", "-m", "add greeting", "-c", "ENV GREETED=yes",
                       "-c", 'CMD ["cat", "/greeting"]', "dki-cm-src", "dki-commit:1").strip()
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", committed)
        assert image_id(daemon, "dki-commit:1") == committed
        exported = subprocess.run(["docker", "-H", daemon.host, "export", "dki-cm-src"], capture_output=True,
                                  timeout=60, env={"PATH": DOCKER_PATH, "HOME": str(daemon.top)})
        assert exported.returncode == 0, exported.stderr
        assert tarfile.open(fileobj=io.BytesIO(exported.stdout)).extractfile("greeting").read() == b"hello\n"
        archive = tmp_path / "rootfs.tar"
        assert ok(daemon, "export", "-o", str(archive), "dki-cm-src") == ""
    finally:
        daemon.cli("rm", "-f", "dki-cm-src")
    assert ok(daemon, "run", "--rm", "dki-commit:1") == "hello\n"
    assert ok(daemon, "run", "--rm", "dki-commit:1", "sh", "-c", "echo $GREETED") == "yes\n"
    assert ok(daemon, "inspect", "--format", "{{.Comment}}|{{json .Config.Cmd}}", "dki-commit:1") == \
        'add greeting|["cat","/greeting"]\n'
    history = ok(daemon, "history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
                 "dki-commit:1").splitlines()
    assert history[0] == f"{committed}|sh -c echo hello > /greeting|add greeting"
    # The step below is the parent's (Docker's Parent, the container's image), named by its id.
    parent = image_id(daemon, image)
    assert ok(daemon, "inspect", "--format", "{{.Parent}}", "dki-commit:1").strip() == parent
    assert history[1].startswith(f"{parent}|") and len(history) == 2
    assert ok(daemon, "history", "-q", "dki-commit:1").split() == [committed.removeprefix("sha256:")[:12],
                                                                    parent.removeprefix("sha256:")[:12]]
    refused = docker(daemon, "rmi", parent)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (f"Error response from daemon: conflict: unable to delete "
                                      f"{parent.removeprefix('sha256:')[:12]} (cannot be forced) - "
                                      "image has dependent child images")
    missing = docker(daemon, "commit", "dki-no-such-container")
    assert missing.returncode == 1 and "No such container: dki-no-such-container" in missing.stderr

    result = piped(daemon, "import", "-m", "from stdin", "-c", 'CMD ["cat", "/greeting"]', "-", "dki-imported:1",
                   stdin=archive)
    assert result.returncode == 0, result.stderr
    imported = result.stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", imported)
    assert ok(daemon, "run", "--rm", "dki-imported:1") == "hello\n"
    assert ok(daemon, "history", "--format", "{{.Comment}}", "dki-imported:1").strip() == "from stdin"
    ok(daemon, "import", str(archive), "dki-imported:2")
    assert ok(daemon, "run", "--rm", "dki-imported:2", "cat", "/greeting") == "hello\n"
    absent = docker(daemon, "import", str(tmp_path / "absent.tar"), "dki-imported:3")
    assert absent.returncode == 1 and "no such file or directory" in absent.stderr


def test_save_to_stdout_and_load_from_stdin_and_file(daemon, image, refs, tmp_path):
    refs.append("dki-saved:1")
    ok(daemon, "tag", image, "dki-saved:1")
    full = image_id(daemon, image)
    archive = tmp_path / "saved.tar"
    env = {"PATH": DOCKER_PATH, "HOME": str(daemon.top)}
    with open(archive, "wb") as out:  # `docker save` to a pipe: the archive on stdout
        saved = subprocess.run(["docker", "-H", daemon.host, "save", "dki-saved:1"], stdout=out,
                               stderr=subprocess.PIPE, env=env, timeout=60)
    assert saved.returncode == 0, saved.stderr
    with tarfile.open(archive) as tar:
        assert json.load(tar.extractfile("manifest.json"))[0]["RepoTags"] == ["dki-saved:1"]
    ok(daemon, "rmi", "dki-saved:1")
    loaded = piped(daemon, "load", stdin=archive)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout == "Loaded image: dki-saved:1\n"
    assert image_id(daemon, "dki-saved:1") == full
    ok(daemon, "rmi", "dki-saved:1")
    assert ok(daemon, "load", "-q", "-i", str(archive)) == "Loaded image: dki-saved:1\n"
    assert image_id(daemon, "dki-saved:1") == full
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not a tar archive" * 100)
    bad = docker(daemon, "load", "-i", str(garbage))
    # Docker streams the error of a load: the CLI prints its message alone.
    assert bad.returncode == 1
    assert bad.stderr == "Error processing tar file(exit status 1): archive/tar: invalid tar header\n"


def test_anonymous_volume_and_prune_and_ls_filters(daemon, image):
    made = []
    try:
        name = ok(daemon, "volume", "create").strip()
        made.append(name)
        assert re.fullmatch(r"[0-9a-f]{64}", name)
        labels = json.loads(ok(daemon, "volume", "inspect", "--format", "{{json .Labels}}", name))
        assert labels == {"com.docker.volume.anonymous": ""}
        made.append("dki-named")
        ok(daemon, "volume", "create", "--label", "dki=1", "dki-named")
        assert ok(daemon, "volume", "ls", "--format", "{{.Name}} {{.Driver}}", "-f", "name=dki-nam") == \
            "dki-named local\n"
        assert ok(daemon, "volume", "ls", "-q", "-f", "label=dki=1") == "dki-named\n"
        assert name in ok(daemon, "volume", "ls", "-q", "-f", "dangling=true").split()
        assert ok(daemon, "volume", "inspect", "--format", "{{.Mountpoint}}", "dki-named").strip().endswith(
            "/volumes/dki-named/_data")
        ok(daemon, "run", "--rm", "-v", f"{name}:/data", image, "dd", "if=/dev/zero", "of=/data/f", "bs=1024",
           "count=100")
        # Without -a only anonymous volumes go, as with Docker >= 23; what their files held is reclaimed.
        out = ok(daemon, "volume", "prune", "-f", "--filter", "label=com.docker.volume.anonymous")
        assert out == f"Deleted Volumes:\n{name}\n\nTotal reclaimed space: 102.4kB\n"
        assert "dki-named" in ok(daemon, "volume", "ls", "-q").split()
        missing = docker(daemon, "volume", "rm", "dki-no-such-volume")
        assert missing.returncode == 1
        assert not_found("volume", "dki-no-such-volume", "get dki-no-such-volume: no such volume") in missing.stderr
        assert ok(daemon, "volume", "rm", "dki-named") == "dki-named\n"
    finally:
        for volume in made:
            daemon.cli("volume", "rm", "-f", volume)


def test_system_prune_says_what_it_removed(daemon, image, refs):
    refs.extend(["dki-dangling:1", "dki-kept:1"])
    ok(daemon, "run", "--name", "dki-pr-src", image, "sh", "-c", "echo x > /x")
    try:
        dangling = ok(daemon, "commit", "dki-pr-src", "dki-dangling:1").strip()
        ok(daemon, "tag", image, "dki-kept:1")
        ok(daemon, "tag", image, "dki-dangling:1")  # the committed image loses its only tag
        stopped = ok(daemon, "create", image, "true").strip()
        network = ok(daemon, "network", "create", "dki-prune-net").strip()
        out = ok(daemon, "system", "prune", "-f")
    finally:
        daemon.cli("rm", "-f", "dki-pr-src")
        daemon.cli("network", "rm", "dki-prune-net")
    assert network
    assert "Deleted Containers:\n" in out and stopped in out.split("Deleted Networks:")[0]
    assert "Deleted Networks:\ndki-prune-net\n" in out
    assert f"Deleted Images:\ndeleted: {dangling}\n" in out
    assert re.search(r"\nTotal reclaimed space: \d+(\.\d+)?[kMG]?B\n$", out)
    assert docker(daemon, "image", "inspect", dangling).returncode == 1
    assert image_id(daemon, "dki-kept:1") == image_id(daemon, image)
    assert ok(daemon, "ps", "-a", "-q", "-f", f"id={stopped}") == ""


def test_push_and_pull_all_tags(daemon, image, registry, refs):
    repository = registry.ref("dki/all-tags")
    refs.extend([f"{repository}:a", f"{repository}:b", "dki-all-src:1"])
    ok(daemon, "run", "--name", "dki-all-src", image, "sh", "-c", "echo b > /b")
    try:
        ok(daemon, "commit", "dki-all-src", "dki-all-src:1")
    finally:
        daemon.cli("rm", "-f", "dki-all-src")
    ok(daemon, "tag", image, f"{repository}:a")
    ok(daemon, "tag", "dki-all-src:1", f"{repository}:b")
    pushed = ok(daemon, "push", "--all-tags", repository)
    digests = {tag: registry_manifest(registry, "dki/all-tags", tag)[2] for tag in ("a", "b")}
    assert pushed.count("The push refers to repository") == 1
    assert f"a: digest: {digests['a']}" in pushed and f"b: digest: {digests['b']}" in pushed
    ok(daemon, "rmi", f"{repository}:a", f"{repository}:b")
    pulled = ok(daemon, "pull", "--all-tags", repository)
    assert "a: Pulling from dki/all-tags" in pulled and "b: Pulling from dki/all-tags" in pulled
    assert f"Digest: {digests['a']}" in pulled and f"Digest: {digests['b']}" in pulled
    assert pulled.endswith(f"Status: Downloaded newer image for {repository}\n{repository}\n")
    assert sorted(ok(daemon, "images", "--format", "{{.Tag}}", repository).split()) == ["a", "b"]
    assert image_id(daemon, f"{repository}:b") == image_id(daemon, "dki-all-src:1")
    again = ok(daemon, "pull", "-a", repository)
    assert again.count("Status: ") == 1 and f"Status: Image is up to date for {repository}" in again
    nothing = docker(daemon, "push", "-a", registry.ref("dki/nothing-local"))
    assert nothing.returncode == 1
    assert f"An image does not exist locally with the tag: {registry.ref('dki/nothing-local')}" in nothing.stderr
    missing_tag = docker(daemon, "pull", f"{repository}:c")
    assert missing_tag.returncode == 1 and missing_tag.stderr == (
        f"Error response from daemon: manifest for {repository}:c not found: manifest unknown: manifest unknown\n")
    absent = docker(daemon, "pull", "-a", registry.ref("dki/absent"))
    assert absent.returncode == 1 and "not found" in absent.stderr and "Traceback" not in absent.stderr
