"""Many containers at once, no leaked file descriptors, and output floods that cannot hurt the
daemon (root and rootless)."""

import glob
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.integration.conftest import ROOTLESS, alive, daemon_pid, inspect, mounts_of, wait_until


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_fifty_containers_from_several_clients_leave_nothing_behind(daemon, image):
    def life(n):
        container_id = daemon.ok("run", "-d", "--name", f"churn-{n}", image, "sleep", "1000").strip()
        state = inspect(daemon, container_id)["State"]
        monitor = int(open(f"/proc/{state['Pid']}/stat").read().rsplit(")", 1)[1].split()[1])
        if n % 2:
            daemon.ok("stop", "-t", "0", container_id)
        daemon.ok("rm", "-f", container_id)
        return container_id, state["Pid"], monitor

    with ThreadPoolExecutor(max_workers=8) as pool:
        lives = list(pool.map(life, range(50)))

    assert daemon.ok("ps", "-a", "-q").strip() == ""
    deadline = time.monotonic() + 10
    while any(alive(p) for _, pid, monitor in lives for p in (pid, monitor)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for _, pid, monitor in lives for p in (pid, monitor) if alive(p)], "stray processes"
    ids = {container_id for container_id, _, _ in lives}
    assert not [g for g in glob.glob("/sys/fs/cgroup/*/minictr/*") + glob.glob("/sys/fs/cgroup/minictr/*")
                if os.path.basename(g) in ids], "stray cgroups"
    daemon_mounts = mounts_of(daemon_pid(daemon))
    assert not [i for i in ids if i in daemon_mounts], "stray mounts in the daemon's namespace"
    assert not [i for i in ids if i in mounts_of()], "stray mounts on the host"
    leftovers = os.listdir(daemon.data_root / "containers") if os.access(daemon.data_root, os.R_OK) else []
    assert not set(leftovers) & ids, "stray container directories"


def test_pid_1_holds_only_stdin_stdout_and_stderr(daemon, image):
    for flags in ([], ["-i"]):
        fds = daemon.ok("run", "--rm", *flags, image, "ls", "/proc/1/fd", input="").split()
        # ls is PID 1 here; it opens the directory it lists (fd 3) itself.
        assert set(fds) <= {"0", "1", "2", "3"}, fds
        # `; :` keeps sh as PID 1 (a lone command is exec'd in its place).
        fds = daemon.ok("run", "--rm", *flags, image, "sh", "-c", "ls /proc/1/fd; :", input="").split()
        assert fds == ["0", "1", "2"], fds


def test_a_flooding_container_cannot_grow_the_daemon_and_a_stuck_client_slows_only_itself(daemon, image):
    line = "x" * 1000
    container_id = daemon.ok("run", "-d", "--log-opt", "max-size=5m", "--log-opt", "max-file=2", image,
                             "sh", "-c", f"while :; do echo {line}; done").strip()
    stuck = _hijack_attach(daemon, container_id)  # never reads
    reader = subprocess.Popen([sys.executable, "-m", "minictr", "-H", daemon.host, "attach", "--no-stdin",
                               container_id], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    received = [0]

    def count():
        while data := reader.stdout.read1(65536):
            received[0] += len(data)

    counter = threading.Thread(target=count, daemon=True)
    counter.start()
    try:
        pid = daemon_pid(daemon)
        time.sleep(1)
        before = rss_kib(pid)
        seen = received[0]
        time.sleep(3)
        assert received[0] - seen > 1_000_000, "the attached reader stopped getting output"
        assert rss_kib(pid) - before < 20 * 1024, "the daemon's memory grew with the flood"
        log = inspect(daemon, container_id)["LogPath"]
        if not ROOTLESS or os.access(os.path.dirname(log), os.R_OK):
            # max-size 5m, max-file 2: the live log and one rotated file, whatever the flood.
            assert _total_size(glob.glob(log + "*")) <= 2 * 5_000_000 + 64 * 1024
    finally:
        stuck.close()
        reader.kill()
        reader.wait()
        daemon.cli("rm", "-f", container_id)


def _total_size(paths):
    total = 0
    for path in paths:
        try:
            total += os.path.getsize(path)
        except FileNotFoundError:
            pass  # rotated away between the listing and the stat
    return total


def _hijack_attach(daemon, container_id):
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(daemon.socket))
    sock.sendall(f"POST /containers/{container_id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n"
                 "Host: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode())
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


def test_a_removed_containers_files_go_and_a_daemon_finishes_what_its_last_run_left(daemon, image):
    # Removal renames a container's directory to trash/ and deletes it in the background.
    container_id = daemon.ok("run", "-d", image, "sh", "-c", "echo x > /made; sleep 300").strip()
    daemon.ok("rm", "-f", container_id)
    assert not (daemon.data_root / "containers" / container_id).exists()
    trash = daemon.data_root / "trash"
    wait_until(lambda: not trash.exists() or not os.listdir(trash), timeout=10, what="the trash to empty")
    daemon.stop()
    (trash / "left-by-a-stopped-daemon" / "diff").mkdir(parents=True)
    daemon.start()
    assert not trash.exists() or not os.listdir(trash)
