"""`minictr doctor` on this machine, as root and rootless, and the daemon's start-up errors pointing to it."""

import json
import os
import subprocess
import sys
import time

from .conftest import on_overlayfs

ROOT = os.geteuid() == 0
OVERLAY = "overlayfs" if ROOT else "overlayfs in a user namespace"
CHECKS = ["user namespaces", "subordinate ids", "newuidmap", "newgidmap",
          OVERLAY, "cgroups", "tun device",
          "user-mode networking", "nftables", "ip forwarding", "forward policy", "XDG_RUNTIME_DIR", "data root", "storage driver"]


def _minictr(*args, env=None, timeout=30):
    environ = dict(os.environ, **(env or {}))
    environ.pop("MINICTR_HOST", None)
    return subprocess.run([sys.executable, "-m", "minictr", *args], capture_output=True, text=True,
                          env=environ, timeout=timeout)


def _doctor_json(tmp_path):
    result = _minictr("-H", f"unix://{tmp_path}/no-daemon.sock", "doctor", "--format", "json",
                      "--data-root", str(tmp_path / "data"))
    return result, {r["check"]: r for r in json.loads(result.stdout)}


def _forward_drop_chains():
    listing = json.loads(subprocess.run(["nft", "-j", "list", "chains"], capture_output=True, text=True).stdout)
    chains = [item["chain"] for item in listing["nftables"] if "chain" in item]
    return [f"{c['family']} {c['table']} {c['name']}" for c in chains
            if c.get("hook") == "forward" and c.get("policy") == "drop"]


def test_doctor_reports_this_machine_as_it_is(tmp_path):
    result, checks = _doctor_json(tmp_path)
    assert list(checks) == CHECKS
    # What these machines give (scripts/install): subordinate ids, uidmap, slirp4netns, a 0700 runtime dir.
    # A data root on overlayfs (a CI container's /tmp) cannot have overlay2: warnings naming that cause.
    on_overlay = on_overlayfs(tmp_path)
    storage = (OVERLAY, "data root", "storage driver")
    for name in CHECKS:
        if name not in ("cgroups", "tun device", "ip forwarding", "forward policy") and not (
                on_overlay and name in storage):
            assert checks[name]["status"] == "ok", checks[name]
    if on_overlay:
        assert [checks[name]["status"] for name in storage] == ["warn"] * 3, [checks[name] for name in storage]
        assert "data root is on overlayfs" in checks[OVERLAY]["message"], checks[OVERLAY]
        assert checks["storage driver"]["message"].startswith("fuse-overlayfs"), checks["storage driver"]
    # /dev/net/tun's mode differs between machines (0600 or 0666): the check must say what is true.
    tun_usable = os.access("/dev/net/tun", os.R_OK | os.W_OK)
    assert checks["tun device"]["status"] == ("ok" if tun_usable else "FAIL")
    if not tun_usable:
        assert checks["tun device"]["fix"] == "sudo chmod 0666 /dev/net/tun"
    # As root, Docker's FORWARD policy drop (when this machine has it) is named and is no problem: the daemon
    # jumps past it (test_docker_forward.py). A forward chain of another table dropping by default is a warning.
    drops = _forward_drop_chains() if ROOT else []
    others = [chain for chain in drops if chain not in ("ip filter FORWARD", "ip6 filter FORWARD")]
    assert checks["forward policy"]["status"] == ("warn" if others else "ok"), checks["forward policy"]
    if "ip filter FORWARD" in drops:
        assert "ip filter FORWARD" in checks["forward policy"]["message"]
    assert checks["ip forwarding"]["status"] in ("ok", "warn")
    if not ROOT:
        assert checks["ip forwarding"]["status"] == "ok" and "not needed" in checks["nftables"]["message"]
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    if ROOT:
        assert checks["cgroups"]["status"] == "ok" and checks["cgroups"]["message"].startswith("v2" if v2 else "v1")
    elif not v2:
        assert checks["cgroups"]["status"] == "warn" and "cannot have limits" in checks["cgroups"]["message"]
    assert result.returncode == (0 if tun_usable else 1)
    assert result.stderr == ""
    assert os.listdir(tmp_path) == []  # no daemon started, no socket, the probe's directory removed


def test_doctor_prints_one_line_per_check_with_fixes(tmp_path):
    started = time.monotonic()
    result = _minictr("doctor", "--data-root", str(tmp_path / "data"))
    assert time.monotonic() - started < 5
    lines = result.stdout.splitlines()
    assert [line.split(":")[0][6:] for line in lines] == CHECKS
    for line in lines:
        status = line[:6]
        assert status in ("ok    ", "warn  ", "FAIL  "), line
        if status == "FAIL  ":
            assert " — fix: " in line
    assert result.returncode == (1 if any(line.startswith("FAIL") for line in lines) else 0)


def test_doctor_fails_for_a_data_root_it_cannot_use(tmp_path):
    (tmp_path / "file").write_text("")
    result, checks = _doctor_json(tmp_path / "file")
    assert result.returncode == 1
    assert checks["data root"]["status"] == "FAIL" and "file is not a directory" in checks["data root"]["message"]
    assert "--data-root DIR" in checks["data root"]["fix"]


def test_doctor_apparmor_profile():
    result = _minictr("doctor", "--apparmor-profile")
    assert result.returncode == 0
    assert "abi <abi/4.0>," in result.stdout and "flags=(unconfined)" in result.stdout
    assert f"profile minictr-python {os.path.realpath(sys.executable)} " in result.stdout
    assert "minictr-monitor flags=(unconfined)" in result.stdout


def test_daemon_that_cannot_start_names_doctor(tmp_path):
    (tmp_path / "file").write_text("")
    result = _minictr("-H", f"unix://{tmp_path}/d.sock", "daemon", "--data-root", str(tmp_path / "file" / "data"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"minictrd: cannot create the data root {tmp_path}/file/data: Not a directory; "
        "run `minictr doctor` to check this machine"]
    assert os.listdir(tmp_path) == ["file"]


def test_cli_starting_a_daemon_that_cannot_start_names_doctor(tmp_path):
    (tmp_path / "file").write_text("")
    result = _minictr("ps", env={"MINICTR_RUNTIME_DIR": str(tmp_path / "run"),
                                 "MINICTR_DATA_ROOT": str(tmp_path / "file" / "data")})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("run `minictr doctor` to check this machine")
    assert "cannot create the data root" in result.stderr
