"""Why a rootless daemon cannot start, said in one line each."""

import os

import pytest

from minictr.daemon.preflight import CannotStart, check_overlayfs, check_user_namespaces
from minictr.hostinfo import subordinate_ranges
from minictr.daemon.rootless import id_mappings


def _proc(tmp_path, **files):
    for relpath, text in files.items():
        path = tmp_path / relpath.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path)


def test_user_namespaces_disabled(tmp_path):
    proc = _proc(tmp_path, sys__user__max_user_namespaces="0\n")
    with pytest.raises(CannotStart, match="user namespaces are disabled"):
        check_user_namespaces(proc)


def test_unprivileged_user_namespaces_disabled(tmp_path):
    proc = _proc(tmp_path, sys__user__max_user_namespaces="1000\n", sys__kernel__unprivileged_userns_clone="0\n")
    with pytest.raises(CannotStart, match="unprivileged_userns_clone"):
        check_user_namespaces(proc)


def test_user_namespaces_available_on_this_machine():
    check_user_namespaces()


def test_no_overlayfs(tmp_path):
    proc = _proc(tmp_path, filesystems="nodev\tproc\n\text4\n")
    with pytest.raises(CannotStart, match="overlayfs is not available"):
        check_overlayfs(proc)
    check_overlayfs(_proc(tmp_path, filesystems="nodev\tproc\nnodev\toverlay\n"))


def test_subordinate_ids_by_name_or_uid(tmp_path):
    subuid = tmp_path / "subuid"
    subuid.write_text("alice:100000:65536\n1002:300000:1000\nbroken line\n")
    assert subordinate_ranges(str(subuid), "alice", 1001) == [(100000, 65536)]
    assert subordinate_ranges(str(subuid), "bob", 1002) == [(300000, 1000)]
    assert subordinate_ranges(str(subuid), "carol", 1003) == []


def test_without_subordinate_ids_a_single_id_mapping_and_a_warning(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    uid_map, gid_map, warning = id_mappings(str(empty), str(empty))
    assert uid_map == [(0, os.getuid(), 1)] and gid_map == [(0, os.getgid(), 1)]
    assert "no subordinate ids" in warning and "single-id mapping" in warning
