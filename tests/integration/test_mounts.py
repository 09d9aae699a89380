"""Mounts into containers: named and anonymous volumes, binds, tmpfs, --read-only, --volumes-from
and an image's VOLUMEs, as a user of `docker run` sees them, root and rootless."""

import io
import os
import shutil
import subprocess
import tarfile
import uuid

import pytest

from .conftest import ROOTLESS, inspect, wait_until


def _name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def volume(daemon):
    """A volume name that the test may create; removed afterwards."""
    name = _name("mv")
    yield name
    daemon.cli("volume", "rm", "-f", name)


@pytest.fixture
def host_dir(daemon):
    """A host directory the daemon's user owns."""
    path = daemon.top / _name("bind")
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _volumes(daemon):
    return set(daemon.ok("volume", "ls", "-q").split())


def _run(daemon, *args):
    return daemon.cli("run", "--rm", *args)


def _image_with(daemon, busybox_tar, tmp_path, tag, entries, volumes):
    """busybox plus `entries` (tarinfo, data) and a VOLUME instruction."""
    path = tmp_path / f"{tag}.tar"
    with tarfile.open(busybox_tar) as src, tarfile.open(path, "w") as tar:
        for member in src:
            tar.addfile(member, src.extractfile(member) if member.isreg() else None)
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    changes = ["--change", 'CMD ["sh"]']
    if volumes:
        changes += ["--change", "VOLUME " + str(volumes).replace("'", '"')]
    daemon.ok("import", *changes, str(path), tag)
    return tag


def _entry(name, kind=tarfile.REGTYPE, data=None, mode=0o644, uid=0, gid=0, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.linkname = kind, mode, uid, gid, link
    if data is not None:
        info.size = len(data)
    return info, data


# ---- named volumes -------------------------------------------------------------------------

def test_named_volume_is_shared_by_two_containers_writing_at_once(daemon, image, volume):
    script = ("i=0; while [ $i -lt 50 ]; do echo $i >> /data/$(hostname); i=$((i+1)); done; "
              "while [ ! -s /data/{other} ]; do sleep 0.05; done; cat /data/{other} | wc -l")
    a = daemon.ok("run", "-d", "--name", volume + "-a", "-h", "a", "-v", f"{volume}:/data", image,
                  "sh", "-c", script.format(other="b")).strip()
    b = daemon.ok("run", "-d", "--name", volume + "-b", "-h", "b", "-v", f"{volume}:/data", image,
                  "sh", "-c", script.format(other="a")).strip()
    try:
        for ref in (a, b):
            assert daemon.ok("wait", ref).strip() == "0"
        assert daemon.ok("run", "--rm", "-v", f"{volume}:/data", image, "sh", "-c",
                         "cat /data/a /data/b | wc -l").strip() == "100"
        daemon.ok("rm", a)
        assert volume in _volumes(daemon)  # removing one container leaves the volume
    finally:
        daemon.cli("rm", "-f", a, b)


def test_volume_data_survives_rm_and_daemon_restart(daemon, image, volume):
    daemon.ok("run", "--rm", "-v", f"{volume}:/data", image, "sh", "-c", "echo kept > /data/f")
    daemon.stop()
    daemon.start()
    assert daemon.ok("run", "--rm", "-v", f"{volume}:/data:ro", image, "cat", "/data/f") == "kept\n"


def test_inspect_shows_docker_mounts(daemon, image, volume, host_dir):
    cid = daemon.ok("create", "-v", f"{volume}:/data", "-v", f"{host_dir}:/host:ro",
                    "--tmpfs", "/scratch", image, "true").strip()
    try:
        mounts = {m["Destination"]: m for m in inspect(daemon, cid)["Mounts"]}
        assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["Name"] == volume
        assert mounts["/data"]["Driver"] == "local" and mounts["/data"]["RW"] is True
        assert mounts["/data"]["Source"].endswith(f"/{volume}/_data")
        assert mounts["/host"] == {"Type": "bind", "Source": str(host_dir), "Destination": "/host",
                                   "Mode": "ro", "RW": False, "Propagation": "rprivate"}
        assert mounts["/scratch"]["Type"] == "tmpfs"
        assert inspect(daemon, cid)["HostConfig"]["Binds"] == [f"{volume}:/data", f"{host_dir}:/host:ro"]
    finally:
        daemon.ok("rm", cid)


# ---- binds ---------------------------------------------------------------------------------

def test_bind_rw_is_seen_on_the_host_and_owned_by_the_user(daemon, image, host_dir):
    daemon.ok("run", "--rm", "-v", f"{host_dir}:/host", image, "sh", "-c", "echo hi > /host/f")
    assert (host_dir / "f").read_text() == "hi\n"
    # root in a rootless container is the invoking user on the host (the user namespace's mapping)
    assert (host_dir / "f").stat().st_uid == os.geteuid()


def test_bind_ro_write_fails_with_erofs(daemon, image, host_dir):
    result = _run(daemon, "-v", f"{host_dir}:/host:ro", image, "sh", "-c", "echo x > /host/f")
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr
    assert not (host_dir / "f").exists()


def test_mount_flag_bind_readonly(daemon, image, host_dir):
    (host_dir / "in").write_text("from host\n")
    out = daemon.ok("run", "--rm", "--mount", f"type=bind,src={host_dir},dst=/host,readonly", image,
                    "sh", "-c", "cat /host/in; echo x > /host/f || echo refused")
    assert out == "from host\nrefused\n"


def test_bind_target_symlinked_in_the_image_stays_inside_the_root(daemon, busybox_tar, tmp_path, host_dir):
    tag = _image_with(daemon, busybox_tar, tmp_path, "minictr-mounts-symlinked",
                      [_entry("data", tarfile.SYMTYPE, link="/etc")], [])
    (host_dir / "marker").write_text("bound\n")
    out = daemon.ok("run", "--rm", "-v", f"{host_dir}:/data", tag, "sh", "-c",
                    "cat /etc/marker; grep -c root /etc/passwd || true")
    # the bind landed on the image's /etc (the link resolved inside the root), not the host's
    assert out.startswith("bound\n")
    assert not os.path.exists("/etc/marker")


# ---- tmpfs and --read-only -----------------------------------------------------------------

def test_tmpfs_is_a_tmpfs_with_its_size_limit(daemon, image):
    out = daemon.ok("run", "--rm", "--tmpfs", "/scratch:size=1m", image, "sh", "-c",
                    "grep ' /scratch ' /proc/mounts; dd if=/dev/zero of=/scratch/f bs=1k count=2048 2>&1; true")
    assert "tmpfs /scratch tmpfs" in out and "size=1024k" in out
    assert "No space left on device" in out


def test_mount_flag_tmpfs_size(daemon, image):
    out = daemon.ok("run", "--rm", "--mount", "type=tmpfs,dst=/t,tmpfs-size=2m", image,
                    "grep", " /t ", "/proc/mounts")
    assert "tmpfs /t tmpfs" in out and "size=2048k" in out


def test_read_only_root_refuses_writes_but_tmpfs_and_volumes_work(daemon, image, volume):
    result = _run(daemon, "--read-only", image, "sh", "-c", "echo x > /f")
    assert result.returncode != 0 and "Read-only file system" in result.stderr
    out = daemon.ok("run", "--rm", "--read-only", "--tmpfs", "/tmp", "-v", f"{volume}:/data", image, "sh", "-c",
                    "echo a > /tmp/f && echo b > /data/f && cat /tmp/f /data/f && echo c > /dev/null && echo ok")
    assert out == "a\nb\nok\n"


# ---- anonymous volumes ---------------------------------------------------------------------

def test_anonymous_volume_removed_with_rm_v(daemon, image):
    before = _volumes(daemon)
    cid = daemon.ok("create", "-v", "/anon", image, "true").strip()
    created = _volumes(daemon) - before
    assert len(created) == 1
    assert inspect(daemon, cid)["Mounts"][0]["Name"] == next(iter(created))
    daemon.ok("rm", "-v", cid)
    assert _volumes(daemon) == before


def test_anonymous_volume_removed_with_run_rm(daemon, image):
    before = _volumes(daemon)
    daemon.ok("run", "--rm", "-v", "/anon", image, "sh", "-c", "echo x > /anon/f")
    wait_until(lambda: _volumes(daemon) == before, what="the anonymous volume to go")


def test_anonymous_volume_stays_without_v(daemon, image):
    before = _volumes(daemon)
    cid = daemon.ok("create", "-v", "/anon", image, "true").strip()
    daemon.ok("rm", cid)
    left = _volumes(daemon) - before
    assert len(left) == 1
    daemon.ok("volume", "rm", *left)


def test_image_volume_gets_an_anonymous_volume_seeded_with_its_files(daemon, busybox_tar, tmp_path):
    uid = 1000
    tag = _image_with(daemon, busybox_tar, tmp_path, "minictr-mounts-seeded", [
        _entry("seed", tarfile.DIRTYPE, mode=0o750, uid=uid, gid=uid),
        _entry("seed/file", data=b"from the image\n", mode=0o640, uid=uid, gid=uid),
        _entry("seed/link", tarfile.SYMTYPE, link="/etc/passwd"),
        _entry("seed/sub", tarfile.DIRTYPE, mode=0o700, uid=2, gid=3),
    ], ["/seed"])
    before = _volumes(daemon)
    cid = daemon.ok("create", tag, "sh", "-c", "stat -c '%n %u %g %a' /seed /seed/file /seed/sub; "
                    "readlink /seed/link; cat /seed/file").strip()
    try:
        assert len(_volumes(daemon) - before) == 1
        assert inspect(daemon, cid)["Mounts"][0]["Destination"] == "/seed"
        daemon.ok("start", cid)
        daemon.ok("wait", cid)
        out = daemon.ok("logs", cid)
        assert out == ("/seed 1000 1000 750\n/seed/file 1000 1000 640\n/seed/sub 2 3 700\n"
                       "/etc/passwd\nfrom the image\n")
    finally:
        daemon.ok("rm", "-v", cid)
    assert _volumes(daemon) == before


def test_named_volume_is_seeded_once(daemon, busybox_tar, tmp_path, volume):
    tag = _image_with(daemon, busybox_tar, tmp_path, "minictr-mounts-seed-once",
                      [_entry("seed", tarfile.DIRTYPE, mode=0o755), _entry("seed/a", data=b"a\n")], [])
    daemon.ok("run", "--rm", "-v", f"{volume}:/seed", tag, "rm", "/seed/a")
    assert daemon.ok("run", "--rm", "-v", f"{volume}:/seed", tag, "ls", "/seed") == ""


# ---- volumes-from --------------------------------------------------------------------------

def test_volumes_from_mounts_the_same_volume_readonly_if_asked(daemon, image, volume):
    src = daemon.ok("create", "--name", volume + "-src", "-v", f"{volume}:/data", image, "true").strip()
    try:
        daemon.ok("run", "--rm", "--volumes-from", src, image, "sh", "-c", "echo shared > /data/f")
        result = _run(daemon, "--volumes-from", f"{src}:ro", image, "sh", "-c", "cat /data/f; echo x > /data/g")
        assert result.stdout == "shared\n" and "Read-only file system" in result.stderr
    finally:
        daemon.ok("rm", src)


# ---- rootless and bad input ----------------------------------------------------------------

def test_bind_source_the_user_cannot_read_is_refused_at_create(daemon, image):
    before = daemon.ok("ps", "-aq")
    result = daemon.cli("create", "-v", "/root:/r", image, "true")
    if not ROOTLESS:  # root reads /root: the same bind is accepted
        assert result.returncode == 0, result.stderr
        daemon.ok("rm", result.stdout.strip())
        return
    assert result.returncode != 0
    assert "/root" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert daemon.ok("ps", "-aq") == before


@pytest.mark.parametrize("args, message", [
    (["-v", "./x:/data"], '"./x" includes invalid characters for a local volume name'),
    (["-v", "x:data"], "mount path must be absolute"),
    (["-v", "/data:ro"], "invalid volume specification: '/data:ro'"),
    (["-v", "x:/data:bogus"], "invalid mode: bogus"),
    (["-v", "x::/data"], "invalid volume specification"),
    (["-v", "va:/data", "-v", "vb:/data"], "Duplicate mount point: /data"),
    (["--mount", "type=bind,dst=/data"], 'invalid mount config for type "bind": field Source must not be empty'),
    (["--mount", "type=bind,src=/nonexistent-minictr,dst=/data"], "bind source path does not exist"),
    (["--mount", "type=volume,dst=/data,bogus=1"], "unexpected key 'bogus'"),
    (["--mount", "type=tmpfs"], "target is required"),
    (["--tmpfs", "rel"], "mount path must be absolute"),
    (["--volumes-from", "no-such-container-minictr"], "No such container: no-such-container-minictr"),
])
def test_bad_mount_input_is_one_line_and_leaves_nothing(daemon, image, args, message):
    before_ps, before_vols = daemon.ok("ps", "-aq"), _volumes(daemon)
    result = daemon.cli("create", *args, image, "true")
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert daemon.ok("ps", "-aq") == before_ps and _volumes(daemon) == before_vols


@pytest.mark.parametrize("host_config, message", [
    ({"Binds": ["rel:/x:zz"]}, "invalid mode: zz"),
    ({"Binds": ["/anon-only"]}, "invalid volume specification"),
    ({"Mounts": [{"Type": "bind", "Target": "/x"}]}, "field Source must not be empty"),
    ({"Mounts": [{"Type": "volume", "Target": "/x", "TmpfsOptions": {"SizeBytes": 1}}]},
     "field TmpfsOptions must not be specified"),
    ({"Tmpfs": {"x": ""}}, "must be absolute"),
    ({"Tmpfs": {"/x": "bogus"}}, "invalid tmpfs option"),
    ({"VolumesFrom": ["nope-minictr:zz"]}, "invalid mode: zz"),
])
def test_bad_mounts_in_the_api_body_are_refused(daemon, image, host_config, message):
    from minictr.errors import InvalidArgument

    before = daemon.ok("ps", "-aq")
    with pytest.raises(InvalidArgument, match=message):
        daemon.client().post("/containers/create", body={"Image": image, "Cmd": ["true"], "HostConfig": host_config})
    assert daemon.ok("ps", "-aq") == before


# ---- the docker CLI ------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_docker_cli_run_v(daemon, image, volume, host_dir):
    env = {**os.environ, "DOCKER_HOST": daemon.host}
    run = subprocess.run(["docker", "run", "--rm", "-v", f"{volume}:/data", "-v", f"{host_dir}:/host:ro", image,
                          "sh", "-c", "echo v > /data/f && cat /data/f && echo x > /host/f"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.stdout == "v\n" and "Read-only file system" in run.stderr
