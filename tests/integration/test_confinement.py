"""Capabilities, masked and read-only paths, /dev and /sys, and the host-escape defences, each checked
from inside a container, as root and rootless."""

import fcntl
import hashlib
import io
import os
import pty
import select
import shutil
import subprocess
import sys
import tarfile
import tempfile
import termios
import time
import tty
from pathlib import Path

import pytest

from minictr import native
from minictr.errors import InvalidArgument

from .conftest import ROOTLESS, daemon_pid, mounts_of, static_probe

DEFAULT_CAPS = "00000000a80425fb"
MONITOR = Path(native.MONITOR_PATH)


@pytest.fixture(scope="module")
def probe():
    """tests/probes/escape.c, static, readable by everyone (rootless runs as minictr-test)."""
    with static_probe("escape") as path:
        yield f"{path}:/probe:ro"


def status(daemon, *args):
    """The Cap* lines of /proc/self/status in a container run with ARGS (options, image)."""
    out = daemon.ok("run", "--rm", *args, "cat", "/proc/self/status")
    return {k: v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if k.startswith("Cap")}


def all_caps():
    """Every capability of the kernel (cap_last_cap): in a new user namespace (rootless) all of them, as
    root those this machine lets us hold at all (a sandbox may have dropped some from every bounding set)."""
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    if ROOTLESS:
        return format((1 << (last + 1)) - 1, "016x")
    ours = next(int(line.split()[1], 16) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("CapBnd:"))
    return format(((1 << (last + 1)) - 1) & ours, "016x")


# ---- capabilities ---------------------------------------------------------------------------


def test_a_container_holds_exactly_dockers_14_capabilities(daemon, image):
    caps = status(daemon, image)
    assert (caps["CapBnd"], caps["CapEff"], caps["CapPrm"]) == (DEFAULT_CAPS,) * 3
    assert caps["CapInh"] == caps["CapAmb"] == "0000000000000000"


def test_cap_add_and_cap_drop_take_docker_names_in_any_case(daemon, image):
    caps = status(daemon, "--cap-add", "net_admin", "--cap-drop", "CAP_CHOWN", image)
    expected = format((int(DEFAULT_CAPS, 16) | 1 << 12) & ~1, "016x")
    assert (caps["CapBnd"], caps["CapEff"], caps["CapPrm"]) == (expected,) * 3
    caps = status(daemon, "--cap-drop", "ALL", image)
    assert (caps["CapBnd"], caps["CapEff"], caps["CapPrm"]) == ("0000000000000000",) * 3
    caps = status(daemon, "--cap-drop", "all", "--cap-add", "KILL", image)
    assert caps["CapBnd"] == format(1 << 5, "016x")


def test_privileged_holds_every_capability_of_the_kernel(daemon, image):
    caps = status(daemon, "--privileged", image)
    assert (caps["CapBnd"], caps["CapEff"], caps["CapPrm"]) == (all_caps(),) * 3
    assert caps["CapAmb"] == "0000000000000000"


def test_an_unknown_capability_fails_the_create_in_one_line(daemon, image):
    result = daemon.cli("run", "--rm", "--cap-add", "NOT_A_CAP", image, "true")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == ['Error response from daemon: unknown capability: "NOT_A_CAP"'], result.stderr
    assert daemon.ok("ps", "-a", "-q") == ""


def test_exec_holds_its_containers_capabilities_or_all_with_privileged(daemon, image):
    daemon.ok("run", "-d", "--name", "caps-exec", "--cap-add", "SYS_TIME", image, "sleep", "300")
    try:
        out = daemon.ok("exec", "caps-exec", "grep", "CapBnd", "/proc/self/status")
        assert out.split()[1] == format(int(DEFAULT_CAPS, 16) | 1 << 25, "016x")
        out = daemon.ok("exec", "--privileged", "caps-exec", "grep", "CapEff", "/proc/self/status")
        assert out.split()[1] == all_caps()
    finally:
        daemon.ok("rm", "-f", "caps-exec")


# ---- masked and read-only paths, /sys, /dev ------------------------------------------------


MASKED_FILES = ["/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"]
MASKED_DIRS = ["/proc/acpi", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"]


def _present(paths):
    return [p for p in paths if os.path.exists(p)]  # the kernel's own /proc and /sys have them too


def test_masked_paths_read_empty_and_cannot_be_unmounted(daemon, image):
    files, dirs = _present(MASKED_FILES), _present(MASKED_DIRS)
    assert files and dirs
    script = "".join(f"echo {p} $(cat {p} | wc -c); " for p in files)
    script += "".join(f"echo {p} $(ls -A {p} | wc -l); " for p in dirs)
    script += "".join(f"umount {p} 2>/dev/null && echo unmounted {p}; " for p in files + dirs) + ":"
    out = daemon.ok("run", "--rm", image, "sh", "-c", script)
    assert out.splitlines() == [f"{p} 0" for p in files + dirs]


def test_read_only_paths_and_sys_refuse_writes(daemon, image):
    script = ("echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo wrote sys; "
              "echo h > /proc/sysrq-trigger 2>/dev/null && echo wrote sysrq; "
              "touch /sys/kernel/x 2>/dev/null && echo wrote /sys; "
              "grep -E ' /(proc/(sys|bus|fs|irq|sysrq-trigger)|sys) ' /proc/self/mountinfo")
    out = daemon.ok("run", "--rm", image, "sh", "-c", script)
    assert "wrote" not in out, out
    mounts = {line.split()[4]: line.split()[5].split(",") for line in out.splitlines()}
    for path in ["/sys"] + _present(["/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/fs", "/proc/irq"]):
        assert "ro" in mounts[path], (path, out)


def test_privileged_has_no_masks_and_a_writable_sys(daemon, image):
    out = daemon.ok("run", "--rm", "--privileged", image, "sh", "-c",
                    "grep -E ' /(proc/[a-z_]+|sys|sys/firmware) ' /proc/self/mountinfo; true")
    mounts = {line.split()[4]: line.split()[5].split(",") for line in out.splitlines()}
    assert not set(mounts) & set(MASKED_FILES + MASKED_DIRS + ["/proc/sys"]), out
    assert "rw" in mounts["/sys"], out


def test_masked_paths_from_the_api_replace_dockers(daemon, image):
    client = daemon.client()
    body = {"Image": image, "Cmd": ["sh", "-c", "wc -c < /proc/interrupts; wc -c < /proc/version"],
            "HostConfig": {"MaskedPaths": ["/proc/version"], "ReadonlyPaths": []}}
    created = client.post("/containers/create", None, body).json()["Id"]
    try:
        daemon.ok("start", created)
        daemon.ok("wait", created)
        lines = daemon.ok("logs", created).split()
        assert int(lines[0]) > 0 and lines[1] == "0", lines
    finally:
        daemon.ok("rm", "-f", created)
    bad = dict(body, HostConfig={"MaskedPaths": ["relative"]})
    with pytest.raises(InvalidArgument, match="invalid MaskedPaths"):
        client.post("/containers/create", None, bad)
    assert daemon.ok("ps", "-a", "-q") == ""


def test_dev_holds_only_the_standard_nodes(daemon, image):
    out = daemon.ok("run", "--rm", image, "ls", "-A", "/dev")
    assert sorted(out.split()) == sorted(STANDARD_DEV), out
    out = daemon.ok("run", "--rm", image, "sh", "-c", "grep ' /dev ' /proc/self/mountinfo")
    assert " - tmpfs " in out
    out = daemon.ok("run", "--rm", image, "stat", "-c", "%n %F %t:%T", *[f"/dev/{n}" for n in STANDARD_NODES])
    assert out.splitlines() == [f"/dev/{n} character special file {format(major, 'x')}:{format(minor, 'x')}"
                                for n, (major, minor) in STANDARD_NODES.items()]


STANDARD_NODES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9),
                  "tty": (5, 0)}
STANDARD_DEV = list(STANDARD_NODES) + ["fd", "stdin", "stdout", "stderr", "ptmx", "pts", "shm", "mqueue"]


def test_privileged_gets_the_hosts_devices(daemon, image):
    skipped = {"console", "pts", "shm", "mqueue", "fd"}
    host = {p.name for p in Path("/dev").iterdir()
            if p.name not in skipped and not p.is_symlink() and (p.is_char_device() or p.is_block_device())}
    assert host - set(STANDARD_DEV), "this machine has no device beyond the standard ones"
    out = daemon.ok("run", "--rm", "--privileged", image, "ls", "-A", "/dev")
    assert host <= set(out.split()), sorted(host - set(out.split()))
    assert "console" not in out.split()


def _cgroup_hierarchies(mountinfo):
    """{directory under /sys/fs/cgroup: (fstype, mount options)} of MOUNTINFO's cgroup hierarchies."""
    found = {}
    for line in mountinfo.splitlines():
        fields, _, after = line.partition(" - ")
        point, options = fields.split()[4], fields.split()[5].split(",")
        if after.split()[0] in ("cgroup", "cgroup2") and point.startswith("/sys/fs/cgroup/"):
            found[point.removeprefix("/sys/fs/cgroup/")] = (after.split()[0], options)
    return found


def test_privileged_sees_every_cgroup_hierarchy_of_the_host_writable(daemon, image):
    # A CI job's own engine (a minictr, systemd) inside a privileged container needs the host's layout:
    # on this hybrid host systemd's named hierarchy and the cgroup2 one at unified, beside the v1 controllers.
    host = _cgroup_hierarchies(mounts_of())
    out = daemon.ok("run", "--rm", "--privileged", image, "cat", "/proc/self/mountinfo")
    inside = _cgroup_hierarchies(out)
    if ROOTLESS:
        # No cgroup of its own (v1 is never delegated): the container mounts no hierarchy at all.
        assert inside == {}, out
        return
    assert {name: fstype for name, (fstype, _) in inside.items()} == \
        {name: fstype for name, (fstype, _) in host.items()}, out
    assert all("rw" in options for _, options in inside.values()), out
    plain = _cgroup_hierarchies(daemon.ok("run", "--rm", image, "cat", "/proc/self/mountinfo"))
    assert "unified" not in plain and all("ro" in options for _, options in plain.values()), plain


def _image_with_symlink(daemon, busybox_tar, name, target):
    """busybox with /NAME a symlink to TARGET, imported under a new tag."""
    out = io.BytesIO()
    with tarfile.open(busybox_tar) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src.getmembers():
            if member.name.strip("./").split("/")[0] == name:
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        link = tarfile.TarInfo(name)
        link.type, link.linkname = tarfile.SYMTYPE, target
        dst.addfile(link)
    path = Path(tempfile.mkdtemp()) / "crafted.tar"
    path.write_bytes(out.getvalue())
    tag = f"symlink-{name}"
    daemon.ok("import", "--change", 'CMD ["sh"]', str(path), tag)
    shutil.rmtree(path.parent)
    return tag


@pytest.mark.parametrize("name,fstype", [("proc", "proc"), ("sys", "sysfs"), ("dev", "tmpfs")])
def test_a_rootfs_whose_proc_dev_or_sys_is_a_symlink_refuses_to_start(daemon, image, busybox_tar, name, fstype):
    tag = _image_with_symlink(daemon, busybox_tar, name, "/etc")
    try:
        container = daemon.ok("create", tag, "true").strip()
        result = daemon.cli("start", container)
        assert result.returncode != 0
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert f"`/{name}` in the image is a symlink: {fstype} must be mounted on an ordinary directory" \
            in result.stderr
        assert container not in mounts_of(daemon_pid(daemon)) and container not in mounts_of()
        assert not [p for p in Path("/proc").glob("[0-9]*/cmdline")
                    if container[:16].encode() in _read(p)], "a monitor was left"
        daemon.ok("rm", container)
    finally:
        daemon.ok("rmi", tag)


def _read(path):
    try:
        return path.read_bytes()
    except OSError:
        return b""


# ---- the monitor cannot be reached (CVE-2019-5736) -----------------------------------------


def test_no_process_of_the_container_exposes_the_monitors_binary_during_execs(daemon, image, probe):
    st = os.stat(MONITOR)
    before = hashlib.sha256(MONITOR.read_bytes()).hexdigest()
    daemon.ok("run", "-d", "--name", "cve-5736", "-v", probe, image, "/probe", "exe", str(st.st_dev),
              str(st.st_ino), "12")
    try:
        deadline = time.monotonic() + 10
        count = 0
        while time.monotonic() < deadline:
            daemon.cli("exec", "cve-5736", "true")
            count += 1
        daemon.ok("wait", "cve-5736")
        out = daemon.ok("logs", "cve-5736").split()
    finally:
        daemon.ok("rm", "-f", "cve-5736")
    seen, hits, writes = int(out[2]), int(out[4]), int(out[6])
    assert seen > 0, f"the probe never saw an exec's set-up ({count} execs): the test proves nothing"
    assert (hits, writes) == (0, 0), out
    assert hashlib.sha256(MONITOR.read_bytes()).hexdigest() == before


def test_the_container_sees_only_its_own_processes(daemon, image):
    out = daemon.ok("run", "--rm", image, "sh", "-c",
                    "for p in /proc/[0-9]*; do echo $(cat $p/comm) $(readlink $p/exe); done; :")
    lines = [line for line in out.splitlines() if line.strip()]
    names = {line.split()[0] for line in lines}
    assert names <= {"sh", "cat", "readlink"}, out
    assert any(line.startswith("sh /bin/") or line == "sh /bin/busybox" for line in lines), out


# ---- TIOCSTI ---------------------------------------------------------------------------------


def _run_under_a_pty(argv, timeout=30):
    """Run ARGV with a new pty as its controlling terminal (raw); returns (output, bytes left unread in
    the terminal's input queue, i.e. anything injected into it)."""
    master, slave = pty.openpty()
    tty.setraw(slave)

    def session():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, preexec_fn=session)
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                output += os.read(master, 65536)
            except OSError:
                break
        elif process.poll() is not None:
            break
    process.wait(5)
    pending = fcntl.ioctl(slave, termios.FIONREAD, b"\0\0\0\0")
    os.close(master)
    os.close(slave)
    return output.decode(errors="replace"), int.from_bytes(pending, sys.byteorder)


def test_a_container_cannot_inject_input_into_the_users_terminal(daemon, image, probe):
    # The detector works: the probe run straight on this terminal does inject (where the kernel allows it).
    if Path("/proc/sys/dev/tty/legacy_tiocsti").read_text().strip() == "1":
        _, pending = _run_under_a_pty([probe.split(":")[0], "tiocsti"])
        assert pending > 0
    cli = [sys.executable, "-m", "minictr", "-H", daemon.host, "run", "--rm", "-v", probe]
    for flags in ([], ["-t"], ["-i"], ["-i", "-t"]):
        output, pending = _run_under_a_pty(cli + flags + [image, "/probe", "tiocsti"])
        assert pending == 0, (flags, output)
        assert "INJECTED" not in output.replace("INJECTED\r\n", "") or "-t" in flags, (flags, output)
        results = dict(line.split(" ", 1) for line in output.replace("\r", "").splitlines() if " " in line)
        assert set(results) >= {"fd0", "fd1", "fd2", "tty"}, (flags, output)
        if "-t" not in flags:
            assert "ok" not in results.values(), (flags, output)


# ---- host fds --------------------------------------------------------------------------------


def test_exec_with_a_tty_holds_only_its_terminal(daemon, image):
    daemon.ok("run", "-d", "--name", "fds-exec", image, "sleep", "300")
    try:
        cli = [sys.executable, "-m", "minictr", "-H", daemon.host, "exec", "-t", "fds-exec", "sh", "-c",
               "ls -l /proc/$$/fd; :"]
        output, _ = _run_under_a_pty(cli)
        fds = [line.split()[-3] for line in output.replace("\r", "").splitlines() if "->" in line]
        assert fds == ["0", "1", "2"], output
        assert all("/dev/pts/" in line for line in output.splitlines() if "->" in line), output
    finally:
        daemon.ok("rm", "-f", "fds-exec")


def test_pid_1_with_a_tty_holds_only_its_terminal(daemon, image):
    cli = [sys.executable, "-m", "minictr", "-H", daemon.host, "run", "--rm", "-t", image, "sh", "-c",
           "ls -l /proc/1/fd; :"]
    output, _ = _run_under_a_pty(cli)
    links = [line for line in output.replace("\r", "").splitlines() if "->" in line]
    assert [line.split()[-3] for line in links] == ["0", "1", "2"], output
    assert all("/dev/pts/" in line for line in links), output
