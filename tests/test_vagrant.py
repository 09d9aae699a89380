"""The lab machine's Vagrantfile is valid and provisions with the same script as CI."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_vagrantfile_validates(tmp_path):
    if shutil.which("vagrant") is None:
        pytest.skip("vagrant is not installed")
    result = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=REPO, capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                              "VAGRANT_HOME": str(tmp_path / ".vagrant.d")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validated successfully" in result.stdout


def test_vagrant_provisioning_runs_the_install_script_of_ci():
    text = (REPO / "Vagrantfile").read_text()
    assert re.search(r"scripts/install --user vagrant", text)
    assert "scripts/install" in (REPO / "scripts" / "test").read_text()
    assert "scripts/test" in (REPO / ".ci" / "run").read_text()
