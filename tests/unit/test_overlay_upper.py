"""Overlay markers in every form a driver leaves them in an upper dir (overlayfs' whiteout device and
xattr whiteout, fuse-overlayfs' `.wh.` files and opaque markers): `diff` and `commit` read them all
as the same Docker changes."""

import io
import os
import shutil
import stat
import tarfile

import pytest

from minictr.containers.files import _changes_of
from minictr.images.commit import write_layer_tar
from minictr.images.overlay_upper import Marker, is_opaque_dir, overlay_marker, same_as_lower

pytestmark = pytest.mark.whiteout_fs

BUSYBOX = b"\x7fELF busybox" * 1000


@pytest.fixture
def lower(tmp_path):
    """An image layer as busybox's: /bin/ls and /bin/mt hard links of one file, a directory /d."""
    root = tmp_path / "lower"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "ls").write_bytes(BUSYBOX)
    os.link(root / "bin" / "ls", root / "bin" / "mt")
    (root / "bin" / "cat").write_bytes(b"cat")
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "g").write_bytes(b"g")
    (root / "d" / "sub" / "f").write_bytes(b"f")
    os.utime(root / "bin" / "ls", ns=(1_500_000_000_123_456_789,) * 2)
    return root


def _whiteout_device(directory, name):
    os.mknod(directory / name, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def _whiteout_xattr(directory, name):
    (directory / name).write_bytes(b"")
    os.setxattr(directory / name, "user.overlay.whiteout", b"")


def _whiteout_file(directory, name):
    # As fuse-overlayfs makes it where mknod fails (a data root on overlayfs).
    (directory / f".wh.{name}").write_bytes(b"")
    os.chmod(directory / f".wh.{name}", 0o700)


WHITEOUTS = {"device": _whiteout_device, "xattr": _whiteout_xattr, "wh-file": _whiteout_file}


def _opaque(directory, form):
    if form == "marker-file":
        (directory / ".wh..wh..opq").write_bytes(b"")
    else:
        os.setxattr(directory, form, b"y")


OPAQUES = ["trusted.overlay.opaque", "user.overlay.opaque", "user.fuseoverlayfs.opaque", "marker-file"]


def _copy_up(lower, upper, path):
    """A file copied up unchanged, as fuse-overlayfs copies the other links of a file it deletes."""
    shutil.copy2(lower / path, upper / path)
    os.setxattr(upper / path, "user.fuseoverlayfs.origin", path.encode())


def _upper_with_ls_deleted(tmp_path, lower, form):
    upper = tmp_path / "upper"
    (upper / "bin").mkdir(parents=True)
    WHITEOUTS[form](upper / "bin", "ls")
    _copy_up(lower, upper, "bin/mt")
    return upper


def _layer_names(upper, lower):
    out = io.BytesIO()
    write_layer_tar(str(upper), [str(lower)], out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        return [member.name.rstrip("/") for member in tar.getmembers()]


def _marker(directory, name):
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return overlay_marker(fd, name, os.lstat(directory / name))
    finally:
        os.close(fd)


@pytest.mark.parametrize("form", WHITEOUTS)
def test_every_whiteout_form_is_one_marker_hiding_the_name(tmp_path, form):
    WHITEOUTS[form](tmp_path, "ls")
    [name] = os.listdir(tmp_path)
    assert _marker(tmp_path, name) == Marker("ls")
    assert not _marker(tmp_path, name).opaque


def test_ordinary_files_are_content_not_markers(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "wh").write_bytes(b"x")
    os.mkfifo(tmp_path / "fifo")
    assert [_marker(tmp_path, name) for name in ("empty", "wh", "fifo")] == [None, None, None]
    (tmp_path / ".wh..wh..opq").write_bytes(b"")
    assert _marker(tmp_path, ".wh..wh..opq").opaque


@pytest.mark.parametrize("form", OPAQUES)
def test_every_opaque_form_makes_the_directory_opaque(tmp_path, form):
    _opaque(tmp_path, form)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert is_opaque_dir(fd)
    finally:
        os.close(fd)


def test_user_overlay_opaque_x_only_says_the_directory_holds_xattr_whiteouts(tmp_path):
    os.setxattr(tmp_path, "user.overlay.opaque", b"x")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert not is_opaque_dir(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("form", WHITEOUTS)
def test_diff_of_a_deleted_hard_link_is_one_deletion(tmp_path, lower, form):
    upper = _upper_with_ls_deleted(tmp_path, lower, form)
    assert _changes_of(str(upper), [str(lower)]) == [("/bin", 0), ("/bin/ls", 2)]  # no C /bin/mt


@pytest.mark.parametrize("form", WHITEOUTS)
def test_commit_of_a_deleted_file_writes_its_whiteout_once(tmp_path, lower, form):
    upper = _upper_with_ls_deleted(tmp_path, lower, form)
    names = _layer_names(upper, lower)
    assert names.count("bin/.wh.ls") == 1
    assert "bin/ls" not in names
    assert "bin/mt" not in names  # an unchanged copy is no change


def test_a_whiteout_in_two_forms_is_written_and_listed_once(tmp_path, lower):
    upper = tmp_path / "upper"
    (upper / "bin").mkdir(parents=True)
    _whiteout_device(upper / "bin", "ls")
    _whiteout_file(upper / "bin", "ls")
    assert _changes_of(str(upper), [str(lower)]) == [("/bin", 0), ("/bin/ls", 2)]
    assert _layer_names(upper, lower).count("bin/.wh.ls") == 1


def test_a_file_deleted_and_made_again_is_a_change_not_a_deletion(tmp_path, lower):
    upper = tmp_path / "upper"
    (upper / "bin").mkdir(parents=True)
    _whiteout_file(upper / "bin", "cat")
    (upper / "bin" / "cat").write_bytes(b"new cat")
    assert _changes_of(str(upper), [str(lower)]) == [("/bin", 0), ("/bin/cat", 0)]
    names = _layer_names(upper, lower)
    assert "bin/cat" in names and "bin/.wh.cat" not in names


@pytest.mark.parametrize("form", OPAQUES)
def test_a_directory_removed_and_made_again_hides_the_image_s_entries(tmp_path, lower, form):
    upper = tmp_path / "upper"
    (upper / "d").mkdir(parents=True)
    _opaque(upper / "d", form)
    (upper / "d" / "h").write_bytes(b"new")
    changes = _changes_of(str(upper), [str(lower)])
    assert changes == [("/d", 0), ("/d/h", 1)]
    names = _layer_names(upper, lower)
    assert names.count("d/.wh..wh..opq") == 1
    assert sorted(n for n in names if n.startswith("d/")) == ["d/.wh..wh..opq", "d/h"]


def test_a_modified_file_is_a_change_even_with_its_old_size_and_time(tmp_path, lower):
    upper = tmp_path / "upper"
    (upper / "bin").mkdir(parents=True)
    _copy_up(lower, upper, "bin/mt")
    with open(upper / "bin" / "mt", "r+b") as f:
        f.write(b"X")  # same size
    st = os.lstat(lower / "bin" / "mt")
    os.utime(upper / "bin" / "mt", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _changes_of(str(upper), [str(lower)]) == [("/bin", 0), ("/bin/mt", 0)]
    assert "bin/mt" in _layer_names(upper, lower)


def test_a_copy_with_another_mode_is_a_change(tmp_path, lower):
    upper = tmp_path / "upper"
    (upper / "bin").mkdir(parents=True)
    _copy_up(lower, upper, "bin/mt")
    os.chmod(upper / "bin" / "mt", 0o700)
    fd, lower_fd = (os.open(p, os.O_RDONLY | os.O_DIRECTORY) for p in (upper / "bin", lower / "bin"))
    try:
        assert not same_as_lower(fd, "mt", os.lstat(upper / "bin" / "mt"), lower_fd)
    finally:
        os.close(fd)
        os.close(lower_fd)
    assert ("/bin/mt", 0) in _changes_of(str(upper), [str(lower)])


def test_a_whiteout_file_in_a_lower_layer_hides_the_name_below(tmp_path, lower):
    # A data root on overlayfs keeps the OCI form in the store's layers too.
    middle = tmp_path / "middle"
    (middle / "bin").mkdir(parents=True)
    _whiteout_file(middle / "bin", "cat")
    upper = tmp_path / "upper"
    (upper / "bin").mkdir(parents=True)
    (upper / "bin" / "cat").write_bytes(b"made again")
    assert _changes_of(str(upper), [str(middle), str(lower)]) == [("/bin", 0), ("/bin/cat", 1)]
