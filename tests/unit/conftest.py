"""Unit tests of the layer, whiteout and overlay code make overlay's own whiteouts (0/0 devices) and
mount overlays in their tmp_path: that is the filesystem they are about. Where the temporary
directory is itself on overlayfs (a CI container's /tmp), neither is possible, so tmp_path goes to
tmpfs (/dev/shm) there. How the daemon copes with a data root on overlayfs is what
tests/integration/test_overlay_data_root.py tests, on the real thing."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def _on_overlayfs(path) -> bool:
    kind = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True)
    return kind.stdout.strip() == "overlayfs"


@pytest.fixture
def tmp_path(tmp_path):
    if not _on_overlayfs(tmp_path):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="minictr-unit-", dir="/dev/shm"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
