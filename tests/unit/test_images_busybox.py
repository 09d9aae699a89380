"""The busybox-local recipe builds a usable rootfs tarball, as root and unprivileged."""

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from minictr.db import Database
from minictr.images.layers import remove_tree
from minictr.images.store import SCHEMA, ImageStore

BUILD = Path(__file__).resolve().parents[2] / "images" / "busybox" / "build"
pytestmark = pytest.mark.skipif(not os.access("/bin/busybox", os.X_OK), reason="no /bin/busybox")


@pytest.fixture
def scratch():
    # world-writable so that the unprivileged build can write its tarball here
    directory = Path(tempfile.mkdtemp(prefix="minictr-busybox-test."))
    directory.chmod(0o777)
    yield directory
    remove_tree(directory)


def build(out: Path, *prefix) -> Path:
    result = subprocess.run([*prefix, str(BUILD), str(out)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == str(out)
    return out


def test_the_busybox_image_imports_and_has_a_shell(scratch):
    tarball = build(scratch / "busybox.tar")
    db = Database(scratch / "minictr.db", [SCHEMA])
    try:
        store = ImageStore(db, scratch / "root", rootless=False)
        with open(tarball, "rb") as stream:
            store.import_tar(stream, "busybox-local:latest", ['CMD ["sh"]'], "")
        image = store.resolve("busybox-local")
    finally:
        db.close()
    assert image.config["Cmd"] == ["sh"]
    assert image.references == ["busybox-local:latest"]
    root = image.layer_dirs[0]
    assert os.stat(root / "bin/sh").st_ino == os.stat(root / "bin/busybox").st_ino
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777
    assert "nobody:x:65534" in (root / "etc/passwd").read_text()
    assert (root / "root").is_dir() and (root / "home").is_dir() and (root / "etc/group").is_file()
    assert os.stat(root / "bin/busybox").st_uid == 0


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop to nobody")
def test_an_unprivileged_build_gives_the_same_tarball(scratch):
    as_root = build(scratch / "root.tar").read_bytes()
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    as_nobody = build(scratch / "nobody.tar", *nobody).read_bytes()
    assert as_nobody == as_root
