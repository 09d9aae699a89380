"""spec/mounts.py: parsing of Docker's -v, --mount, --tmpfs and --volumes-from, and the checks of a create body's
mounts: what is accepted, and every error in Docker's words."""

import pytest

from minictr.cli.bodies import create_body
from minictr.errors import InvalidArgument
from minictr.spec import mounts


def test_named_volume_with_mode():
    m = mounts.parse_bind("data:/srv/data:ro")
    assert (m["type"], m["name"], m["destination"], m["rw"], m["mode"]) == ("volume", "data", "/srv/data", False, "ro")


def test_host_path_is_a_bind_with_rprivate_propagation():
    m = mounts.parse_bind("/host//dir/:/in")
    assert (m["type"], m["source"], m["destination"], m["rw"], m["propagation"]) == (
        "bind", "/host/dir", "/in", True, "rprivate")


def test_bare_path_is_an_anonymous_volume():
    m = mounts.parse_bind("/cache")
    assert m["type"] == "volume" and m["anonymous"] and m["name"] == ""


@pytest.mark.parametrize("spec, message", [
    ("./x:/data", '"./x" includes invalid characters for a local volume name'),
    ("x:/data", '"x" includes invalid characters'),
    ("name:data", "invalid mount path: 'data' mount path must be absolute"),
    ("/data:ro", "invalid volume specification: '/data:ro'"),
    ("name:/data:bogus", "invalid mode: bogus"),
    ("name:/data:ro,rw", "invalid mode: ro,rw"),
    ("name:/data:rshared", "invalid mode: rshared"),
    (":/data", "invalid volume specification"),
    ("name::/data", "invalid volume specification"),
    ("a:b:c:d", "invalid volume specification"),
    ("name:/", "destination can't be '/'"),
    ("rel", "mount path must be absolute"),
])
def test_bad_volume_specs(spec, message):
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(".", r"\.")):
        mounts.parse_bind(spec)


def test_mount_flag_csv():
    m = mounts.parse_mount_flag("type=bind,source=/h,destination=/c,readonly,bind-propagation=rslave")
    assert m == {"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True,
                 "BindOptions": {"Propagation": "rslave"}}
    assert mounts.parse_mount_flag("src=v1,dst=/d,ro=false") == {"Type": "volume", "Source": "v1", "Target": "/d",
                                                                 "ReadOnly": False}
    t = mounts.parse_mount_flag("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770")
    assert t["TmpfsOptions"] == {"SizeBytes": 1 << 20, "Mode": 0o1770}
    assert mounts.check_mount_object(t)["options"] == "nosuid,nodev,size=1048576,mode=1770"


@pytest.mark.parametrize("text, message", [
    ("type=bind,dst=/c", 'invalid mount config for type "bind": field Source must not be empty'),
    ("type=bind,src=rel,dst=/c", "mount path must be absolute"),
    ("type=volume,src=v1", "target is required"),
    ("type=weird,dst=/c", "invalid mount type: weird"),
    ("type=volume,dst=/c,nope=1", "unexpected key 'nope'"),
    ("type=volume,dst=/c,readonly=maybe", "invalid value for readonly: maybe"),
    ("type=volume,dst=/c,target", "invalid field 'target' must be a key=value pair"),
    ("type=bind,src=/h,dst=/c,tmpfs-size=1m", "field TmpfsOptions must not be specified"),
    ("type=tmpfs,src=x,dst=/c", "field Source must not be specified"),
    ("type=tmpfs,dst=/c,tmpfs-size=lots", "invalid size: 'lots'"),
    ("type=volume,src=v1,dst=", "invalid value for 'dst': value is empty"),
    ("", "value is empty"),
])
def test_bad_mount_flags(text, message):
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(".", r"\.")):
        mounts.parse_mount_flag(text)


def test_tmpfs_flag_keeps_dockers_defaults():
    m = mounts.parse_tmpfs(*mounts.split_tmpfs_flag("/run:size=64k,mode=1777"))
    assert m["options"] == "noexec,nosuid,nodev,size=64k,mode=1777" and m["rw"]
    assert not mounts.parse_tmpfs("/ro", "ro")["rw"]


@pytest.mark.parametrize("path, options, message", [
    ("rel", "", "mount path must be absolute"),
    ("/t", "bogus", "invalid tmpfs option"),
    ("/t", "size=big", "invalid tmpfs option size=big"),
    ("/t", "color=red", "invalid tmpfs option"),
])
def test_bad_tmpfs(path, options, message):
    with pytest.raises(InvalidArgument, match=message):
        mounts.parse_tmpfs(path, options)


def test_volumes_from():
    assert mounts.parse_volumes_from("web:ro") == ("web", "ro")
    assert mounts.parse_volumes_from("web") == ("web", "")
    with pytest.raises(InvalidArgument, match="invalid mode: zz"):
        mounts.parse_volumes_from("web:zz")


def test_duplicate_targets_across_kinds_are_refused():
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /data"):
        mounts.requested({"Binds": ["vv:/data"], "Tmpfs": {"/data/": ""}}, {})


def test_an_image_volume_under_a_mount_is_not_doubled():
    got = mounts.requested({"Binds": ["vv:/data"]}, {"/data": {}, "/other": {}})
    assert [(m["destination"], m["anonymous"]) for m in got] == [("/data", False), ("/other", True)]


def _options(**overrides):
    base = {"network": "default", "auto_remove": False, "restart": "no", "interactive": False, "tty": False,
            "env_file": (), "env": (), "label_file": (), "label": (), "log_driver": "json-file", "log_opt": (),
            "init": False, "detach": True, "command": (), "workdir": None, "user": None, "hostname": None,
            "stop_signal": None, "stop_timeout": None, "entrypoint": None, "image": "img",
            "volume": (), "mount": (), "tmpfs": (), "volumes_from": (), "read_only": False}
    return {**base, **overrides}


def test_create_body_sends_what_the_docker_cli_sends():
    body = create_body(_options(volume=("vv:/data", "/anon", "/h:/c:ro"), mount=("type=tmpfs,dst=/t",),
                                tmpfs=("/run:size=1m",), volumes_from=("other:ro",), read_only=True))
    host = body["HostConfig"]
    assert host["Binds"] == ["vv:/data", "/h:/c:ro"] and body["Volumes"] == {"/anon": {}}
    assert host["Mounts"] == [{"Type": "tmpfs", "Target": "/t"}]
    assert host["Tmpfs"] == {"/run": "size=1m"} and host["VolumesFrom"] == ["other:ro"]
    assert host["ReadonlyRootfs"] is True


def test_create_body_refuses_duplicates_before_the_daemon():
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /data"):
        create_body(_options(volume=("vv:/data",), tmpfs=("/data",)))
