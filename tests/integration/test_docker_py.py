"""docker-py (the `docker` package from PyPI, which nobody here wrote) drives minictr's socket with its
high-level API, as a test suite built on it would against Docker."""

import contextlib
import io
import os
import socket
import tarfile
import time
import uuid
from datetime import datetime, timedelta, timezone

import docker
import docker.errors
import pytest

from tests.integration.conftest import wait_until
from tests.integration.registry import busybox_archive, busybox_layer, push_archive, registry  # noqa: F401


def unique(name):
    return f"dpy-{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(daemon, image):
    c = docker.DockerClient(base_url="unix://" + str(daemon.socket), timeout=60)
    yield c
    c.close()


def test_from_env_ping_version_info(daemon, image, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", daemon.host)
    c = docker.from_env()  # negotiates the API version (docker-py 7 asks /version when none is given)
    try:
        assert c.ping() is True
        version = c.version()
        assert version["ApiVersion"] == c.api.api_version == "1.43"
        assert version["Os"] == "linux"
        info = c.info()
        assert info["Containers"] >= 0
        assert info["Images"] >= 1
        assert "ServerVersion" in info
    finally:
        c.close()


# --- containers ---

def test_run_not_detached_returns_the_output_bytes(client, image):
    name = unique("out")
    output = client.containers.run(image, ["sh", "-c", "echo hello; echo there"], name=name)
    try:
        assert output == b"hello\nthere\n"
    finally:
        client.containers.get(name).remove()


def test_run_remove_true_leaves_nothing(client, image):
    name = unique("rm")
    assert client.containers.run(image, ["echo", "gone"], name=name, remove=True) == b"gone\n"
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(name)


def test_run_nonzero_exit_raises_container_error_with_stderr(client, image):
    with pytest.raises(docker.errors.ContainerError) as error:
        client.containers.run(image, ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    assert error.value.exit_status == 3
    assert b"bad" in error.value.stderr


def test_run_stream_yields_lines(client, image):
    name = unique("stream")
    try:
        lines = list(client.containers.run(image, ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.1; done"],
                                           name=name, stream=True))
        assert b"".join(lines) == b"line1\nline2\nline3\n"
    finally:
        client.containers.get(name).remove(force=True)


def test_run_detached_wait_logs_and_remove(client, image):
    container = client.containers.run(image, ["sh", "-c", "echo out; echo err >&2; exit 7"], detach=True)
    try:
        assert container.wait(timeout=30)["StatusCode"] == 7
        assert container.logs(stdout=True, stderr=False) == b"out\n"
        assert container.logs(stdout=False, stderr=True) == b"err\n"
        assert container.logs() == b"out\nerr\n" or sorted(container.logs().splitlines()) == [b"err", b"out"]
        container.reload()
        assert container.status == "exited"
        assert container.attrs["State"]["ExitCode"] == 7
    finally:
        container.remove()
    with pytest.raises(docker.errors.NotFound):
        container.reload()


def test_logs_timestamps_tail_and_follow(client, image):
    container = client.containers.run(image, ["sh", "-c", "for i in 1 2 3 4 5; do echo n$i; done; sleep 1; echo late"],
                                      detach=True)
    try:
        stream = container.logs(stream=True, follow=True)
        seen = b"".join(stream)  # follow ends when the container does
        assert seen == b"n1\nn2\nn3\nn4\nn5\nlate\n"
        assert container.logs(tail=2) == b"n5\nlate\n"
        stamped = container.logs(timestamps=True).decode().splitlines()
        assert len(stamped) == 6
        stamp, text = stamped[0].split(" ", 1)
        assert text == "n1"
        when = datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00")
        assert abs(datetime.now(timezone.utc) - when) < timedelta(minutes=5)
    finally:
        container.remove(force=True)


def test_logs_since_and_until(client, image):
    container = client.containers.run(image, ["sh", "-c", "echo early; sleep 1.5; echo later"], detach=True)
    try:
        assert container.wait(timeout=30)["StatusCode"] == 0
        stamped = container.logs(timestamps=True).decode().splitlines()
        assert [line.split(" ", 1)[1] for line in stamped] == ["early", "later"]
        early = datetime.fromisoformat(stamped[0].split(" ")[0][:26].rstrip("Z") + "+00:00").timestamp()
        between = early + 0.7
        assert container.logs(since=between) == b"later\n"
        assert container.logs(until=between) == b"early\n"
        assert container.logs(since=datetime.now(timezone.utc) + timedelta(minutes=1)) == b""
    finally:
        container.remove()


def test_kill_with_a_signal_the_container_traps(client, image):
    container = client.containers.run(
        image, ["sh", "-c", "trap 'echo got-usr1; exit 9' USR1; echo ready; while true; do sleep 0.1; done"],
        detach=True)
    try:
        wait_until(lambda: b"ready" in container.logs(), what="the trap set")
        container.kill(signal="SIGUSR1")
        assert container.wait(timeout=30)["StatusCode"] == 9
        assert container.logs() == b"ready\ngot-usr1\n"
        with pytest.raises(docker.errors.APIError) as error:
            container.kill()
        assert error.value.status_code == 409
        assert "is not running" in error.value.explanation
    finally:
        container.remove(force=True)


def test_create_get_list_filters_and_prune(client, image):
    name = unique("made")
    created = client.containers.create(image, ["sleep", "30"], name=name, labels={"dpy": name})
    try:
        assert created.status == "created"
        got = client.containers.get(name)
        assert got.id == created.id
        assert got.name == name
        assert got.labels == {"dpy": name}
        assert [c.id for c in client.containers.list(all=True, filters={"label": f"dpy={name}"})] == [created.id]
        assert created.id not in [c.id for c in client.containers.list()]
        assert [c.id for c in client.containers.list(all=True, filters={"name": name})] == [created.id]
        created.start()
        assert [c.id for c in client.containers.list(filters={"status": "running", "label": f"dpy={name}"})] \
            == [created.id]
        created.stop(timeout=1)
        created.reload()
        assert created.status == "exited"
        pruned = client.containers.prune(filters={"label": f"dpy={name}"})
        assert pruned["ContainersDeleted"] == [created.id]
        assert isinstance(pruned["SpaceReclaimed"], int)
    finally:
        try:
            created.remove(force=True)
        except docker.errors.NotFound:
            pass
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(name)


def test_errors_not_found_and_conflict(client, image):
    missing = unique("missing")
    with pytest.raises(docker.errors.NotFound) as error:
        client.containers.get(missing)
    assert error.value.status_code == 404
    assert f"No such container: {missing}" in str(error.value)
    assert error.value.explanation.startswith("No such container: ")
    with pytest.raises(docker.errors.ImageNotFound) as error:
        client.images.get("nope-" + missing)
    assert f"No such image: nope-{missing}" in str(error.value)
    name = unique("dup")
    first = client.containers.create(image, ["true"], name=name)
    try:
        with pytest.raises(docker.errors.APIError) as error:
            client.containers.create(image, ["true"], name=name)
        assert error.value.status_code == 409
    finally:
        first.remove(force=True)


def test_running_container_remove_without_force_is_409(client, image):
    container = client.containers.run(image, ["sleep", "30"], detach=True)
    try:
        with pytest.raises(docker.errors.APIError) as error:
            container.remove()
        assert error.value.status_code == 409
    finally:
        container.remove(force=True)


def test_stop_and_kill(client, image):
    stopped = client.containers.run(image, ["sleep", "60"], detach=True)
    killed = client.containers.run(image, ["sleep", "60"], detach=True)
    try:
        started = time.monotonic()
        stopped.stop(timeout=1)
        assert time.monotonic() - started < 15
        stopped.reload()
        assert stopped.status == "exited"
        assert stopped.attrs["State"]["ExitCode"] == 137  # sleep ignores nothing: SIGTERM as pid 1 is ignored
        killed.kill(signal="SIGKILL")
        assert killed.wait(timeout=30)["StatusCode"] == 137
        killed.reload()
        assert killed.status == "exited"
    finally:
        stopped.remove(force=True)
        killed.remove(force=True)


# --- exec ---

@pytest.fixture
def sleeper(client, image):
    container = client.containers.run(image, ["sleep", "300"], detach=True)
    yield container
    container.remove(force=True)


def test_exec_run_plain(sleeper):
    result = sleeper.exec_run(["sh", "-c", "echo out; echo err >&2; exit 4"])
    assert result.exit_code == 4
    assert sorted(result.output.splitlines()) == [b"err", b"out"]
    assert sleeper.exec_run("cat /etc/hostname").output.strip() == sleeper.attrs["Config"]["Hostname"].encode()
    env = sleeper.exec_run(["sh", "-c", "echo $FOO"], environment={"FOO": "bar"}, workdir="/tmp")
    assert env == (0, b"bar\n")


def test_exec_run_demux(sleeper):
    result = sleeper.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
    assert result.exit_code == 0
    assert result.output == (b"out\n", b"err\n")
    only_out = sleeper.exec_run(["echo", "x"], demux=True)
    assert only_out.output == (b"x\n", None)


def test_exec_run_stream(sleeper):
    result = sleeper.exec_run(["sh", "-c", "for i in 1 2 3; do echo s$i; sleep 0.1; done"], stream=True)
    assert result.exit_code is None
    assert b"".join(result.output) == b"s1\ns2\ns3\n"


def test_exec_run_stream_demux(sleeper):
    result = sleeper.exec_run(["sh", "-c", "echo out; sleep 0.1; echo err >&2"], stream=True, demux=True)
    chunks = list(result.output)
    out = b"".join(c[0] for c in chunks if c[0])
    err = b"".join(c[1] for c in chunks if c[1])
    assert (out, err) == (b"out\n", b"err\n")


def test_env_entries_without_a_value_are_kept_as_given_and_unset_in_the_process(client, image):
    # Docker keeps a bare NAME in Config.Env; its process gets no NAME, not even a default one
    # (ReplaceOrAppendEnvValues): here HOSTNAME.
    container = client.containers.run(image, ["sleep", "300"], environment=["Foo", "KEPT=1", "HOSTNAME"],
                                      detach=True)
    try:
        env = container.attrs["Config"]["Env"]
        assert "Foo" in env and "KEPT=1" in env and "HOSTNAME" in env
        names = [line.split("=")[0] for line in container.exec_run("env").output.decode().splitlines()]
        assert "KEPT" in names and "PATH" in names
        assert "Foo" not in names and "HOSTNAME" not in names
        names = [line.split("=")[0]
                 for line in container.exec_run("env", environment=["KEPT", "Bar"]).output.decode().splitlines()]
        assert "KEPT" not in names and "Bar" not in names and "PATH" in names
    finally:
        container.remove(force=True)


def test_exec_created_with_a_tty_started_without_one_is_framed(client, sleeper):
    # docker-py's exec_start sends {"Tty": false} unless told: Docker 20.10 then frames the
    # tty's output (one stdout stream, \r\n line ends) and docker-py demultiplexes it.
    command = ["sh", "-c", "echo hello out; echo hello err >&2"]
    exec_id = client.api.exec_create(sleeper.id, command, tty=True)["Id"]
    assert client.api.exec_start(exec_id) == b"hello out\r\nhello err\r\n"
    assert client.api.exec_inspect(exec_id)["ProcessConfig"]["tty"] is True

    exec_id = client.api.exec_create(sleeper.id, command, tty=True)["Id"]
    sock = client.api.exec_start(exec_id, socket=True)
    try:
        frames = list(docker.utils.socket.frames_iter(sock, tty=False))
    finally:
        sock.close()
    assert {stream for stream, _ in frames} == {docker.utils.socket.STDOUT}
    assert b"".join(data for _, data in frames) == b"hello out\r\nhello err\r\n"

    exec_id = client.api.exec_create(sleeper.id, command, tty=True)["Id"]
    assert client.api.exec_start(exec_id, tty=True) == b"hello out\r\nhello err\r\n"  # raw, as asked


def test_exec_in_a_missing_container_is_not_found(client):
    missing = unique("gone")
    with pytest.raises(docker.errors.NotFound) as error:
        client.api.exec_create(missing, ["true"])
    assert error.value.explanation == f"No such container: {missing}"


def test_exec_in_stopped_container_is_409(client, image):
    container = client.containers.create(image, ["true"])
    try:
        with pytest.raises(docker.errors.APIError) as error:
            container.exec_run("true")
        assert error.value.status_code == 409
    finally:
        container.remove()


# --- attach ---

def _read_until(sock, expected, timeout=20):
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while expected not in data and time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _raw(sock):
    return getattr(sock, "_sock", sock)


def test_attach_socket_reads_output(client, image):
    container = client.containers.create(image, ["sh", "-c", "sleep 0.5; echo attached-out"], tty=True)
    try:
        sock = container.attach_socket(params={"stdout": 1, "stream": 1})
        try:
            container.start()
            assert b"attached-out" in _read_until(_raw(sock), b"attached-out")
        finally:
            sock.close()
        assert container.wait(timeout=30)["StatusCode"] == 0
    finally:
        container.remove(force=True)


def test_attach_socket_writes_stdin_and_half_close_ends_it(client, image):
    # docker-py's create with stdin_open sets StdinOnce: the client's half-close ends the container's stdin.
    container = client.containers.create(image, ["sh", "-c", "cat; echo after-eof"], stdin_open=True)
    try:
        container.start()
        sock = container.attach_socket(params={"stdin": 1, "stream": 1})
        try:
            _raw(sock).sendall(b"typed\n")
            _raw(sock).shutdown(socket.SHUT_WR)
            assert container.wait(timeout=30)["StatusCode"] == 0
        finally:
            sock.close()
        assert container.logs() == b"typed\nafter-eof\n"
    finally:
        container.remove(force=True)


def test_attach_half_close_without_stdin_once_ends_the_attach_not_the_stdin(client, image):
    # detach=True: docker-py (as `docker run -di`) leaves StdinOnce false; Docker then ends the attach
    # when its input ends and the container keeps its stdin open.
    container = client.containers.run(image, ["sh", "-c", "cat; echo stdin-ended"], stdin_open=True, detach=True)
    try:
        assert container.attrs["Config"]["StdinOnce"] is False
        sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        raw = _raw(sock)
        try:
            raw.sendall(b"first\n")
            assert b"first\n" in _read_until(raw, b"first\n")
            raw.shutdown(socket.SHUT_WR)
            raw.settimeout(20)
            while raw.recv(4096):
                pass
        finally:
            sock.close()
        time.sleep(0.5)
        container.reload()
        assert container.status == "running"
        assert b"stdin-ended" not in container.logs()
    finally:
        container.remove(force=True)


def test_attach_socket_with_a_tty_echoes_and_half_close_ends_the_attach(client, image):
    # With a tty, Docker ends the attach when its input ends; the container keeps running.
    container = client.containers.create(image, ["cat"], stdin_open=True, tty=True)
    try:
        container.start()
        sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        raw = _raw(sock)
        try:
            raw.sendall(b"typed\n")
            assert _read_until(raw, b"typed\r\ntyped\r\n").count(b"typed") == 2  # the echo, then cat
            raw.shutdown(socket.SHUT_WR)
            raw.settimeout(20)
            while raw.recv(4096):
                pass
        finally:
            sock.close()
        container.reload()
        assert container.status == "running"
    finally:
        container.remove(force=True)


def test_attach_socket_multiplexed_without_tty(client, image):
    container = client.containers.create(image, ["sh", "-c", "cat; echo err >&2"], stdin_open=True)
    try:
        container.start()
        sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        raw = _raw(sock)
        try:
            raw.sendall(b"piped\n")
            raw.shutdown(socket.SHUT_WR)
            data = _read_until(raw, b"err\n")
            # Docker frames each chunk: stream byte, 3 zero bytes, big-endian length.
            frames, rest = [], data
            while len(rest) >= 8:
                size = int.from_bytes(rest[4:8], "big")
                frames.append((rest[0], rest[8:8 + size]))
                rest = rest[8 + size:]
            assert (1, b"piped\n") in frames
            assert (2, b"err\n") in frames
        finally:
            sock.close()
        assert container.wait(timeout=30)["StatusCode"] == 0
    finally:
        container.remove(force=True)


# --- archive ---

def _tar(entries):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o640
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_put_archive_and_get_archive(client, image):
    container = client.containers.run(image, ["sleep", "300"], detach=True)
    try:
        assert container.put_archive("/tmp", _tar({"dpy/a.txt": b"alpha\n", "dpy/b.txt": b"beta\n"})) is True
        assert container.exec_run("cat /tmp/dpy/a.txt").output == b"alpha\n"
        stream, stat = container.get_archive("/tmp/dpy")
        assert stat["name"] == "dpy"
        assert stat["mode"] & 0o20000000000  # a directory (os.ModeDir)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            names = sorted(tar.getnames())
            assert names == ["dpy", "dpy/a.txt", "dpy/b.txt"]
            assert tar.extractfile("dpy/b.txt").read() == b"beta\n"
            assert tar.getmember("dpy/a.txt").mode & 0o777 == 0o640
        stream, stat = container.get_archive("/tmp/dpy/a.txt")
        assert stat["name"] == "a.txt" and stat["size"] == 6
        with pytest.raises(docker.errors.NotFound):
            container.get_archive("/no/such/path")
        with pytest.raises(docker.errors.NotFound):
            container.put_archive("/no/such/dir", _tar({"x": b"x"}))
    finally:
        container.remove(force=True)


def test_archive_on_a_stopped_container(client, image):
    container = client.containers.create(image, ["true"])
    try:
        container.put_archive("/", _tar({"made-while-stopped": b"yes\n"}))
        stream, stat = container.get_archive("/made-while-stopped")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            assert tar.extractfile("made-while-stopped").read() == b"yes\n"
    finally:
        container.remove()


# --- images ---

def test_archive_into_a_volume_of_a_created_container(client, image):
    # Docker mounts a container's volumes for archive operations whether it runs or not: the
    # file is in the volume when the container starts.
    container_id = client.api.create_container(image, ["cat", "/vol1/in-volume", "/ro/seen"],
                                               volumes=["/vol1", "/ro"])["Id"]
    container = client.containers.get(container_id)
    try:
        assert container.put_archive("/vol1", _tar({"in-volume": b"put before the start\n"})) is True
        stream, stat = container.get_archive("/vol1/in-volume")
        assert stat["name"] == "in-volume" and stat["size"] == 21
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            assert tar.extractfile("in-volume").read() == b"put before the start\n"
        container.put_archive("/ro", _tar({"seen": b"also\n"}))
        container.start()
        assert container.wait(timeout=30)["StatusCode"] == 0
        assert container.logs() == b"put before the start\nalso\n"
        # Once stopped, the archive still reads the volume, not the directory under it.
        stream, _ = container.get_archive("/vol1/in-volume")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            assert tar.extractfile("in-volume").read() == b"put before the start\n"
    finally:
        container.remove(v=True, force=True)


def test_archive_into_a_read_only_volume_is_refused_as_docker_words_it(client, image):
    volume = client.volumes.create(unique("rovol"))
    container = client.containers.create(image, ["true"], volumes={volume.name: {"bind": "/data", "mode": "ro"}})
    try:
        with pytest.raises(docker.errors.APIError) as error:
            container.put_archive("/data/sub", _tar({"nope": b"x"}))
        assert error.value.status_code == 400
        assert error.value.explanation == "mounted volume is marked read-only"
        assert container.put_archive("/tmp", _tar({"fine": b"x"})) is True  # the root stays writable
        stream, _ = container.get_archive("/data")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            assert tar.getnames() == ["data"]
    finally:
        container.remove(force=True)
        volume.remove()


def test_commit_with_pause_of_a_container_that_exits_meanwhile(client, image):
    # docker-py's commit asks pause=true: Docker pauses a running container only, and commits
    # one that exits meanwhile (or has exited) as it is, never a 409 or a 500.
    committed = []
    try:
        for attempt in range(40):
            container = client.containers.run(image, ["sh", "-c", f"echo {attempt} > /made; sleep 0.{attempt % 6:03d}"],
                                              detach=True)
            try:
                committed.append(container.commit(repository=unique("exiting")))
                assert committed[-1].attrs["Parent"] == container.attrs["Image"]
            finally:
                container.remove(force=True)
        container = client.containers.run(image, ["sh", "-c", "echo stopped > /made"], detach=True)
        container.wait(timeout=30)
        committed.append(container.commit(repository=unique("stopped")))
        container.remove()
        assert client.containers.run(committed[-1].id, ["cat", "/made"], remove=True) == b"stopped\n"
    finally:
        for done in committed:
            client.images.remove(done.id, force=True)


def test_a_committed_image_has_its_parent_which_rmi_then_keeps(client, image):
    made = []
    try:
        source = client.containers.run(image, ["sh", "-c", "echo 1 > /level"], detach=True)
        source.wait(timeout=30)
        parent_tag = unique("parent") + ":1"
        parent = source.commit(*parent_tag.split(":"))
        made.append(parent.id)
        source.remove()
        assert parent.attrs["Parent"] == client.images.get(image).id
        source = client.containers.run(parent.id, ["sh", "-c", "echo 2 > /level"], detach=True)
        source.wait(timeout=30)
        child = source.commit()
        made.append(child.id)
        source.remove()
        assert child.attrs["Parent"] == parent.id
        short = parent.id.removeprefix("sha256:")[:12]
        for force in (False, True):
            with pytest.raises(docker.errors.APIError) as error:
                client.images.remove(parent.id, force=force)
            assert error.value.status_code == 409
            assert error.value.explanation == (f"conflict: unable to delete {short} (cannot be forced) "
                                               "- image has dependent child images")
        # By its tag: untagged only, kept for its child and listed with -a only, as Docker's.
        assert client.api.remove_image(parent_tag) == [{"Untagged": parent_tag}]
        assert client.images.get(parent.id).tags == []
        assert parent.id not in [i.id for i in client.images.list()]
        assert parent.id in [i.id for i in client.images.list(all=True)]
        assert parent.id not in [i.id for i in client.images.list(filters={"dangling": True})]
        # The child's removal takes the parent it left with nothing.
        deleted = [item.get("Deleted") for item in client.api.remove_image(child.id)]
        assert child.id in deleted and parent.id in deleted
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(parent.id)
    finally:
        for image_id in reversed(made):
            with contextlib.suppress(docker.errors.NotFound):
                client.images.remove(image_id, force=True)


def test_unknown_log_driver_and_load_of_a_non_tar_in_dockers_words(client, image):
    with pytest.raises(docker.errors.APIError) as error:
        client.containers.create(image, ["true"], log_config=docker.types.LogConfig(type="no-such-driver"))
    assert error.value.status_code == 400
    assert error.value.explanation == 'error looking up logging plugin no-such-driver: plugin "no-such-driver" not found'
    # Docker streams a load's error (200, an errorDetail line): docker-py raises ImageLoadError.
    with pytest.raises(docker.errors.ImageLoadError) as error:
        client.images.load(b"not a tar archive" * 100)
    assert str(error.value) == "Error processing tar file(exit status 1): archive/tar: invalid tar header"


def test_images_get_list_tag_remove(client, image):
    img = client.images.get(image)
    assert f"{image}:latest" in img.tags
    assert img.id.startswith("sha256:")
    assert img.id in [i.id for i in client.images.list()]
    assert [i.id for i in client.images.list(name=image)] == [img.id]
    tag = unique("tag")
    assert img.tag(tag, "v1") is True
    assert client.images.get(f"{tag}:v1").id == img.id
    client.images.remove(f"{tag}:v1")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(f"{tag}:v1")
    assert client.images.get(image).id == img.id  # untagging one name keeps the image


def test_image_save_chunks_load_into_another_daemon(client, image, clean_daemon):
    tag = unique("saved") + ":v1"
    client.images.get(image).tag(tag)
    try:
        chunks = list(client.images.get(tag).save(chunk_size=65536, named=tag))
        assert len(chunks) > 1
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            assert "manifest.json" in tar.getnames()
    finally:
        client.images.remove(tag)
    other = docker.DockerClient(base_url=clean_daemon.host, timeout=60)
    try:
        loaded = other.images.load(b"".join(chunks))
        assert [i.tags for i in loaded] == [[tag]]
        assert loaded[0].id == client.images.get(image).id
        assert other.containers.run(tag, ["echo", "loaded"], remove=True) == b"loaded\n"
        with pytest.raises(docker.errors.ImageLoadError) as error:  # streamed, as Docker streams it
            other.images.load(b"not a tar at all")
        assert str(error.value) == "Error processing tar file(exit status 1): unexpected EOF"
        assert [i.tags for i in other.images.list()] == [[tag]]
    finally:
        other.close()


def test_images_pull_from_the_loopback_registry(client, daemon, registry, busybox_archive):
    name = unique("pull")
    digest = push_archive(registry, busybox_archive, f"{name}:1")
    ref = registry.ref(name)
    pulled = client.images.pull(ref, tag="1")
    try:
        assert f"{ref}:1" in pulled.tags
        assert any(d.endswith(digest) for d in pulled.attrs["RepoDigests"])
        assert client.containers.run(f"{ref}:1", ["echo", "pulled"], remove=True) == b"pulled\n"
    finally:
        client.images.remove(f"{ref}:1")
    with pytest.raises(docker.errors.NotFound):
        client.images.pull(ref, tag="not-there")


# --- volumes ---

def test_volumes(client, image):
    name = unique("vol")
    volume = client.volumes.create(name, labels={"dpy": name})
    try:
        assert volume.name == name
        assert client.volumes.get(name).attrs["Labels"] == {"dpy": name}
        assert name in [v.name for v in client.volumes.list()]
        assert [v.name for v in client.volumes.list(filters={"label": f"dpy={name}"})] == [name]
        assert client.containers.run(image, ["sh", "-c", "echo kept > /v/f; cat /v/f"],
                                     volumes={name: {"bind": "/v", "mode": "rw"}}, remove=True) == b"kept\n"
        volume.remove()
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get(name)
        other = unique("prune")
        client.volumes.create(other, labels={"dpy": other})
        # Named volumes go only with all=true (API 1.42+), as in Docker.
        assert client.volumes.prune(filters={"label": f"dpy={other}"})["VolumesDeleted"] in (None, [])
        pruned = client.volumes.prune(filters={"label": f"dpy={other}", "all": "true"})
        assert pruned["VolumesDeleted"] == [other]
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get(other)
    finally:
        for leftover in client.volumes.list(filters={"label": "dpy"}):
            if leftover.name.startswith("dpy-"):
                leftover.remove(force=True)


# --- networks ---

def test_networks_connect_disconnect_prune(client, image):
    name = unique("net")
    network = client.networks.create(name, driver="bridge", labels={"dpy": name})
    container = client.containers.run(image, ["sleep", "300"], detach=True)
    try:
        assert client.networks.get(network.id).name == name
        assert name in [n.name for n in client.networks.list()]
        assert [n.name for n in client.networks.list(names=[name])] == [name]
        network.connect(container)
        network.reload()
        assert [c.id for c in network.containers] == [container.id]
        container.reload()
        assert name in container.attrs["NetworkSettings"]["Networks"]
        assert container.attrs["NetworkSettings"]["Networks"][name]["IPAddress"]
        network.disconnect(container)
        network.reload()
        assert network.containers == []
        container.reload()
        assert name not in container.attrs["NetworkSettings"]["Networks"]
    finally:
        container.remove(force=True)
    pruned = client.networks.prune(filters={"label": f"dpy={name}"})
    assert pruned["NetworksDeleted"] == [name]
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(network.id)


def test_network_labels_check_duplicate_options_and_mac_address(client, image):
    name = unique("lbl")
    network = client.networks.create(name, check_duplicate=True, labels={"dpy": name, "tier": "db"},
                                     options={"com.docker.network.driver.mtu": "1300"})
    try:
        assert network.attrs["Labels"] == {"dpy": name, "tier": "db"}
        assert network.attrs["Options"] == {"com.docker.network.driver.mtu": "1300"}
        assert [n.name for n in client.networks.list(filters={"label": ["tier=db", f"dpy={name}"]})] == [name]
        assert client.networks.list(filters={"label": f"dpy={name}-other"}) == []
        with pytest.raises(docker.errors.APIError) as duplicate:
            client.networks.create(name, check_duplicate=True)
        assert duplicate.value.status_code == 409
        assert duplicate.value.explanation == f"network with name {name} already exists"
        assert client.containers.run(image, ["cat", "/sys/class/net/eth0/mtu"], network=name,
                                     remove=True) == b"1300\n"
        # docker-py's mac_address is Config.MacAddress (API 1.43): the endpoint's address.
        assert client.containers.run(image, ["cat", "/sys/class/net/eth0/address"], network=name,
                                     mac_address="02:42:0a:00:00:be", remove=True) == b"02:42:0a:00:00:be\n"
    finally:
        network.remove()


def test_network_remove(client):
    network = client.networks.create(unique("gone"))
    network.remove()
    with pytest.raises(docker.errors.NotFound):
        network.reload()


# --- system ---

def test_events_since_until_decoded(client, image):
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    name = unique("ev")
    client.containers.run(image, ["true"], name=name, remove=True)
    until = datetime.now(timezone.utc) + timedelta(seconds=1)
    time.sleep(1.2)
    events = list(client.events(decode=True, since=since, until=until, filters={"container": name}))
    actions = [e["Action"] for e in events if e.get("Type") == "container"]
    for wanted in ("create", "start", "die", "destroy"):
        assert wanted in actions, actions
    assert all(e["Actor"]["Attributes"]["name"] == name for e in events)


def test_df(client, image):
    df = client.df()
    assert any(f"{image}:latest" in (i.get("RepoTags") or []) for i in df["Images"])
    assert isinstance(df["LayersSize"], int)
    assert isinstance(df["Containers"], list)
    assert isinstance(df["Volumes"], list)
    assert df["BuilderSize"] == 0 and df["BuildCache"] == []  # Docker 20.10's, with no build cache


def test_swarm_as_a_docker_engine_in_no_swarm(client):
    # Test suites' clean-up leaves any swarm: Docker in none answers 503, which docker-py takes for done.
    assert client.api.leave_swarm(force=True) is True
    with pytest.raises(docker.errors.APIError) as error:
        client.api.leave_swarm()
    assert error.value.status_code == 503 and error.value.explanation == "This node is not part of a swarm"
    with pytest.raises(docker.errors.APIError) as error:
        client.services.list()
    assert error.value.status_code == 503 and "This node is not a swarm manager" in error.value.explanation
    info = client.info()
    assert info["Swarm"]["LocalNodeState"] == "inactive" and info["Swarm"]["ControlAvailable"] is False
    assert info["Debug"] is False


def test_version_has_the_engines_details(client):
    engine = client.version()["Components"][0]
    assert engine["Name"] == "Engine"
    details = engine["Details"]
    assert details["ApiVersion"] == "1.43" and details["MinAPIVersion"] == "1.24"
    assert details["Os"] == "linux" and details["Arch"] in ("amd64", "arm64")
    assert details["KernelVersion"] == os.uname().release and details["Experimental"] == "false"
    assert {"GitCommit", "GoVersion", "BuildTime"} <= set(details)


# --- API details docker-py depends on ---

def _hijack_headers(daemon, method, path, body=b""):
    """The status line and headers of a request sent as docker-py sends attach/exec (Upgrade: tcp)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(daemon.socket))
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        sock.settimeout(20)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
    return lines[0], {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}


def test_log_config_is_json_file_and_stream_content_types(client, daemon, sleeper):
    assert sleeper.attrs["HostConfig"]["LogConfig"]["Type"] == "json-file"
    raw, framed = "application/vnd.docker.raw-stream", "application/vnd.docker.multiplexed-stream"
    for tty, expected in ((False, framed), (True, raw)):
        exec_id = client.api.exec_create(sleeper.id, ["true"], tty=tty)["Id"]
        status, headers = _hijack_headers(daemon, "POST", f"/v1.43/exec/{exec_id}/start",
                                          b'{"Detach": false, "Tty": %s}' % (b"true" if tty else b"false"))
        assert status.startswith("HTTP/1.1 101"), status
        assert headers["content-type"] == expected
        assert headers["upgrade"] == "tcp"
    status, headers = _hijack_headers(daemon, "POST", f"/v1.43/containers/{sleeper.id}/attach?stream=1&stdout=1")
    assert status.startswith("HTTP/1.1 101") and headers["content-type"] == framed
    # Before API 1.42 Docker named every hijacked stream raw-stream (framed or not).
    status, headers = _hijack_headers(daemon, "POST", f"/v1.41/containers/{sleeper.id}/attach?stream=1&stdout=1")
    assert status.startswith("HTTP/1.1 101") and headers["content-type"] == raw
    status, headers = _hijack_headers(daemon, "GET", f"/v1.43/containers/{sleeper.id}/logs?stdout=1")
    assert headers["content-type"] == framed


def test_exec_stream_exit_code_through_exec_inspect(client, sleeper):
    exec_id = client.api.exec_create(sleeper.id, ["sh", "-c", "echo bye; exit 5"])["Id"]
    assert b"".join(client.api.exec_start(exec_id, stream=True)) == b"bye\n"
    inspected = client.api.exec_inspect(exec_id)
    assert inspected["ExitCode"] == 5 and inspected["Running"] is False


def test_logs_follow_sees_lines_written_while_following(client, image):
    container = client.containers.run(image, ["sh", "-c", "echo first; sleep 1; echo second; sleep 60"], detach=True)
    try:
        stream = container.logs(stream=True, follow=True)
        assert next(stream) == b"first\n"
        started = time.monotonic()
        assert next(stream) == b"second\n"
        assert time.monotonic() - started < 10
        stream.close()
    finally:
        container.remove(force=True)


def test_missing_objects_answer_docker_messages(client):
    missing = unique("none")
    with pytest.raises(docker.errors.NotFound) as error:
        client.api.start(missing)
    assert error.value.explanation == f"No such container: {missing}"
    with pytest.raises(docker.errors.ImageNotFound) as error:
        client.images.remove(f"{missing}:tag")
    assert error.value.explanation == f"No such image: {missing}:tag"
    with pytest.raises(docker.errors.NotFound) as error:
        client.volumes.get(missing)
    assert missing in error.value.explanation
    with pytest.raises(docker.errors.NotFound) as error:
        client.networks.get(missing)
    assert error.value.explanation == f"network {missing} not found"
