"""Some unit tests of the layer, whiteout and overlay code make overlay's own whiteouts (0/0
devices) or mount overlays in their tmp_path: that is the filesystem they are about (they are marked
`whiteout_fs`). Where the temporary directory is itself on overlayfs (a CI container's /tmp),
neither is possible, so their tmp_path goes to tmpfs (/dev/shm) there. Only theirs: a container's
/dev/shm is small and nosuid,nodev,noexec. How the daemon copes with a data root on overlayfs is
what tests/integration/test_overlay_data_root.py tests, on the real thing."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "whiteout_fs: tmp_path must take overlay whiteout devices and overlay mounts")


def _on_overlayfs(path) -> bool:
    kind = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True)
    return kind.stdout.strip() == "overlayfs"


@pytest.fixture
def tmp_path(request, tmp_path):
    if request.node.get_closest_marker("whiteout_fs") is None or not _on_overlayfs(tmp_path):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="minictr-unit-", dir="/dev/shm"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
