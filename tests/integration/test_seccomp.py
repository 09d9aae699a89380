"""Seccomp and no-new-privileges, seen from inside a container (tests/probes/seccomp.c), as root and
rootless: Docker's default refusals, our TIOCSTI refusal, unconfined, custom profiles, and exec."""

import json
import os
from pathlib import Path

import pytest

from .conftest import inspect, static_probe

EPERM, ENOSYS = 1, 38


@pytest.fixture(scope="module")
def probe():
    """tests/probes/seccomp.c, static, readable by everyone (rootless runs as minictr-test)."""
    with static_probe("seccomp") as path:
        yield path


def results(output):
    """`NAME ok` / `NAME errno N` lines -> {NAME: 0 or N}."""
    found = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 2 and words[1] in ("ok", "errno"):
            found[words[0]] = 0 if words[1] == "ok" else int(words[2])
    return found


def run_probe(daemon, image, probe, *checks, options=()):
    out = daemon.ok("run", "--rm", "-t", "-v", f"{probe}:/probe:ro", *options, image,
                    "/probe", *checks)
    return results(out)


def status_field(text, field):
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(field + ":"))


CHECKS = ["unshare_user", "clone_newns", "clone_plain", "clone3", "socket_alg", "socket_vsock",
          "socket_inet", "socket_unix", "personality_no_randomize", "personality_query", "keyctl",
          "add_key", "tiocsti", "tiocsti_high", "tiocgwinsz"]


def test_the_default_profile_refuses_what_docker_refuses(daemon, image, probe):
    found = run_probe(daemon, image, probe, *CHECKS)
    assert found == {
        "unshare_user": EPERM, "clone_newns": EPERM, "clone_plain": 0,
        "clone3": ENOSYS,  # so that libc falls back to clone, which the filter can read
        "socket_alg": EPERM, "socket_vsock": EPERM, "socket_inet": 0, "socket_unix": 0,
        "personality_no_randomize": EPERM, "personality_query": 0,
        "keyctl": EPERM, "add_key": EPERM,
        "tiocsti": EPERM, "tiocsti_high": EPERM, "tiocgwinsz": 0,
    }


def test_unconfined_shows_the_difference(daemon, image, probe):
    found = run_probe(daemon, image, probe, *CHECKS, options=["--security-opt", "seccomp=unconfined"])
    # What the kernel itself allows a container without CAP_SYS_ADMIN: the filter was what refused.
    assert found["personality_no_randomize"] == 0
    assert found["socket_vsock"] != EPERM and found["socket_alg"] != EPERM
    assert found["clone3"] != ENOSYS
    assert found["keyctl"] != EPERM or found["add_key"] != EPERM
    legacy = Path("/proc/sys/dev/tty/legacy_tiocsti")
    if legacy.exists() and legacy.read_text().strip() == "1":
        assert found["tiocsti"] == 0
    out = daemon.ok("run", "--rm", "--security-opt", "seccomp=unconfined", image, "cat", "/proc/self/status")
    assert status_field(out, "Seccomp") == "0"


def test_privileged_runs_unconfined(daemon, image):
    client = daemon.client()
    created = client.request("POST", "/containers/create", query={"name": "sc-privileged"},
                             body={"Image": image, "Cmd": ["cat", "/proc/self/status"],
                                   "HostConfig": {"Privileged": True}}).json()
    try:
        daemon.ok("start", created["Id"])
        daemon.ok("wait", created["Id"])
        assert status_field(daemon.ok("logs", created["Id"]), "Seccomp") == "0"
    finally:
        daemon.ok("rm", "-f", created["Id"])


def test_init_and_exec_are_both_filtered(daemon, image, probe):
    daemon.ok("run", "-d", "--name", "sc-exec", "-v", f"{probe}:/probe:ro", image, "sleep", "300")
    try:
        init = daemon.ok("exec", "sc-exec", "cat", "/proc/1/status")
        own = daemon.ok("exec", "sc-exec", "cat", "/proc/self/status")
        assert status_field(init, "Seccomp") == "2" and status_field(own, "Seccomp") == "2"
        assert status_field(own, "Seccomp_filters") == "1"
        assert status_field(own, "NoNewPrivs") == "0"
        assert results(daemon.ok("exec", "sc-exec", "/probe", "unshare_user", "socket_inet")) == {
            "unshare_user": EPERM, "socket_inet": 0}
    finally:
        daemon.ok("rm", "-f", "sc-exec")


def test_a_custom_profile_refuses_with_its_own_errno(daemon, image, probe, tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}]}
    path = tmp_path / "no-mkdir.json"
    path.write_text(json.dumps(profile, indent=2))
    os.chmod(tmp_path, 0o755)
    os.chmod(path, 0o644)
    found = run_probe(daemon, image, probe, "mkdir", "unshare_user",
                      options=["--security-opt", f"seccomp={path}"])
    assert found["mkdir"] == 122  # EDQUOT, the profile's
    result = daemon.cli("run", "--rm", "--security-opt", f"seccomp={path}", image, "mkdir", "/x")
    assert result.returncode != 0 and "Disk quota exceeded" in result.stdout + result.stderr
    # The docker CLI's form: the profile's JSON itself, compacted, in SecurityOpt.
    daemon.ok("create", "--name", "sc-custom", "--security-opt", f"seccomp={path}", image, "true")
    try:
        sent = inspect(daemon, "sc-custom")["HostConfig"]["SecurityOpt"]
        assert sent == ["seccomp=" + json.dumps(profile, separators=(",", ":"))]
    finally:
        daemon.ok("rm", "sc-custom")


@pytest.mark.parametrize("opt", ["no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"])
def test_no_new_privileges(daemon, image, opt):
    daemon.ok("run", "-d", "--name", "sc-nnp", "--security-opt", opt, image, "sleep", "300")
    try:
        assert status_field(daemon.ok("exec", "sc-nnp", "cat", "/proc/1/status"), "NoNewPrivs") == "1"
        exec_status = daemon.ok("exec", "sc-nnp", "cat", "/proc/self/status")
        assert status_field(exec_status, "NoNewPrivs") == "1" and status_field(exec_status, "Seccomp") == "2"
        assert inspect(daemon, "sc-nnp")["HostConfig"]["SecurityOpt"] == [opt]
    finally:
        daemon.ok("rm", "-f", "sc-nnp")


def test_by_default_no_new_privs_is_off(daemon, image):
    out = daemon.ok("run", "--rm", image, "cat", "/proc/self/status")
    assert status_field(out, "NoNewPrivs") == "0" and status_field(out, "Seccomp") == "2"


@pytest.mark.parametrize("opt, content, message", [
    ("foo=bar", None, 'invalid --security-opt 2: "foo=bar"'),
    ("no-new-privileges=maybe", None, 'invalid --security-opt 2: "no-new-privileges=maybe"'),
    ("seccomp", None, 'Invalid --security-opt: "seccomp"'),
    ("seccomp=FILE", "{not json", "compacting json for seccomp profile"),
    ("seccomp=FILE", '{"defaultAction": "SCMP_ACT_SOMETIMES"}', 'unsupported action "SCMP_ACT_SOMETIMES"'),
    ("seccomp=/no/such/profile.json", None, "opening seccomp profile (/no/such/profile.json) failed"),
])
def test_bad_security_options_fail_the_create_in_one_line(daemon, image, tmp_path, opt, content, message):
    if content is not None:
        path = tmp_path / "profile.json"
        path.write_text(content)
        opt = opt.replace("FILE", str(path))
    result = daemon.cli("run", "--rm", "--security-opt", opt, image, "true")
    assert result.returncode != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert daemon.ok("ps", "-a", "-q") == ""


def test_a_bad_profile_from_the_api_is_refused_at_create(daemon, image):
    from minictr.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="Decoding seccomp profile failed"):
        daemon.client().request("POST", "/containers/create",
                                body={"Image": image, "Cmd": ["true"], "HostConfig": {"SecurityOpt": ["seccomp={"]}})
    assert daemon.ok("ps", "-a", "-q") == ""
