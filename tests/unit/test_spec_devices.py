"""--device and --device-cgroup-rule as users type them, HostConfig.Devices/DeviceCgroupRules as the
daemon checks them (spec/devices.py), and the rules a container's device controller gets
(security/devices.py, containers/cgroups.py's v1 writer)."""

import os

import pytest

from minictr.containers import cgroups
from minictr.errors import InvalidArgument
from minictr.security import devices
from minictr.spec.devices import ANY, Rule, check, parse_device, parse_rule


@pytest.mark.parametrize("text,expected", [
    ("/dev/null", ("/dev/null", "/dev/null", "rwm")),
    ("/dev/null:/dev/n", ("/dev/null", "/dev/n", "rwm")),
    ("/dev/null:r", ("/dev/null", "/dev/null", "r")),
    ("/dev/null:/dev/n:rw", ("/dev/null", "/dev/n", "rw")),
    ("/dev/null::mr", ("/dev/null", "/dev/null", "mr")),
])
def test_device_takes_dockers_three_forms(text, expected):
    device = parse_device(text)
    assert (device["PathOnHost"], device["PathInContainer"], device["CgroupPermissions"]) == expected


@pytest.mark.parametrize("text,message", [
    ("", "invalid device specification"),
    ("/a:/b:rw:x", "invalid device specification"),
    ("dev/null", "absolute"),
    ("/dev/null:dev/n", "absolute"),
    ("/dev/null:/dev/n:rwx", "invalid device mode: rwx"),
    ("/dev/null:/dev/n:rr", "invalid device mode"),
])
def test_a_bad_device_says_why(text, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_device(text)


def test_a_rule_is_parsed_as_the_controller_writes_it():
    assert parse_rule("c 1:3 rwm") == Rule("c", 1, 3, "rwm")
    assert parse_rule("b *:* m") == Rule("b", ANY, ANY, "m")
    assert str(parse_rule("c 136:* rw")) == "c 136:* rw"


@pytest.mark.parametrize("text", ["c 1:3", "x 1:3 r", "c 1:3 rwq", "c a:3 r", " c 1:3 r", 7, None])
def test_a_bad_rule_is_refused_in_dockers_words(text):
    with pytest.raises(InvalidArgument, match="invalid device cgroup format"):
        parse_rule(text)


@pytest.mark.parametrize("host_config,message", [
    ({"Devices": {"PathOnHost": "/dev/null"}}, "HostConfig.Devices: expected a list"),
    ({"Devices": ["/dev/null"]}, "expected an object"),
    ({"Devices": [{"PathOnHost": 5}]}, "PathOnHost must be a string"),
    ({"Devices": [{"PathOnHost": "/dev/null", "CgroupPermissions": "x"}]}, "invalid device mode"),
    ({"DeviceCgroupRules": "c 1:3 rwm"}, "DeviceCgroupRules: expected a list"),
    ({"DeviceCgroupRules": ["c 1:3"]}, "invalid device cgroup format"),
])
def test_the_daemon_checks_the_api_fields(host_config, message):
    with pytest.raises(InvalidArgument, match=message):
        check(host_config)


def test_dockers_default_list_allows_the_standard_nodes_and_mknod_only():
    rules = {str(rule) for rule in devices.cgroup_rules({})}
    assert rules == {"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                     "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"}


def test_privileged_gets_every_device():
    assert devices.cgroup_rules({"Privileged": True, "Devices": [{"PathOnHost": "/dev/null"}]}) is None


def test_a_device_adds_its_host_nodes_numbers_and_a_rule_its_line():
    host_config = {"Devices": [parse_device("/dev/null:/dev/n:r")], "DeviceCgroupRules": ["c 10:229 rw"]}
    rules = devices.cgroup_rules(host_config)
    assert rules[-2:] == [Rule("c", 1, 3, "r"), Rule("c", 10, 229, "rw")]
    assert devices.monitor_entries(host_config) == [("device", "/dev/null", "/dev/n")]


def test_a_directory_of_devices_maps_each_node(tmp_path):
    (tmp_path / "sub").mkdir()
    os.symlink("/dev/null", tmp_path / "link")  # not a node of the directory itself: left out
    (tmp_path / "file").write_text("")
    if os.geteuid() == 0:
        os.mknod(tmp_path / "sub" / "n", 0o600 | 0o020000, os.makedev(1, 3))
    entries = devices.monitor_entries({"Devices": [parse_device(f"{tmp_path}:/dev/snd")]})
    assert entries == ([("device", str(tmp_path / "sub" / "n"), "/dev/snd/sub/n")] if os.geteuid() == 0 else [])


@pytest.mark.parametrize("path,message", [("/nonexistent-device", "no such file or directory"),
                                          ("/etc/hostname", "not a device node")])
def test_a_host_path_that_is_no_device_is_refused(path, message):
    with pytest.raises(InvalidArgument, match=message):
        devices.check({"Devices": [parse_device(path)]}, rootless=False)


def test_rootless_refuses_a_permission_it_cannot_keep():
    devices.check({"Devices": [parse_device("/dev/null")]}, rootless=True)
    devices.check({"Devices": [parse_device("/dev/null:rw")]}, rootless=True)  # m: no mknod rootless anyway
    with pytest.raises(InvalidArgument, match="rootless"):
        devices.check({"Devices": [parse_device("/dev/null:r")]}, rootless=True)


def test_v1_denies_everything_then_allows_each_rule_in_order(tmp_path, monkeypatch):
    group = tmp_path / "devices" / "minictr" / "abc"
    group.mkdir(parents=True)
    (group / "devices.deny").write_text("")
    (group / "devices.allow").write_text("")
    writes = []

    class Recorder:
        def __init__(self, path, mode):
            self.name = os.path.basename(path)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, text):
            writes.append((self.name, text))

    monkeypatch.setattr(cgroups, "open", Recorder, raising=False)  # each line is one write(2) to the kernel
    rules = [Rule("c", 1, 3, "rwm"), Rule("b", ANY, ANY, "m")]
    cgroups.apply_device_rules([str(tmp_path / "cpu" / "abc"), str(group)], rules, False)
    assert writes == [("devices.deny", "a"), ("devices.allow", "c 1:3 rwm"), ("devices.allow", "b *:* m")]


def test_v1_without_a_devices_hierarchy_refuses_to_start(tmp_path):
    with pytest.raises(OSError, match="no devices cgroup"):
        cgroups.apply_device_rules([str(tmp_path)], [], False)
