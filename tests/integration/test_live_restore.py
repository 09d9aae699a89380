"""Live restore: SIGKILL the daemon while containers run, write output and have clients attached;
the containers carry on under their monitors and the next daemon picks them up (root and rootless)."""

import os
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import _answers, alive, daemon_pid, inspect, wait_until

# Prints a counter ten times a second: the log shows which lines were written when.
WRITER = "i=0; while :; do echo n=$i; i=$((i+1)); sleep 0.1; done"


def kill_daemon(daemon):
    """SIGKILL the daemon (and, rootless, its wrapper) and wait until it is really gone: its
    process and its socket."""
    inner = daemon_pid(daemon)
    daemon.kill()
    wait_until(lambda: not alive(inner), what="the daemon to die")
    wait_until(lambda: not _answers(daemon.socket), what="the daemon's socket to go quiet")


def counters(text):
    return [int(line.split("=", 1)[1]) for line in text.splitlines() if line.startswith("n=")]


@pytest.fixture
def writer(daemon, image):
    container_id = daemon.ok("run", "-d", "--name", "live-writer", image, "sh", "-c", WRITER).strip()
    wait_until(lambda: counters(daemon.ok("logs", container_id)), what="the first line")
    yield container_id
    daemon.cli("rm", "-f", container_id)


def test_containers_run_on_and_log_while_the_daemon_is_down(daemon, image, writer):
    quitter = daemon.ok("run", "-d", image, "sh", "-c", "sleep 1.5; exit 7").strip()
    attached = subprocess.Popen([sys.executable, "-m", "minictr", "-H", daemon.host, "attach", "--no-stdin",
                                 writer], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        pid = inspect(daemon, writer)["State"]["Pid"]
        last_before = counters(daemon.ok("logs", writer))[-1]
        kill_daemon(daemon)
        time.sleep(2.5)  # the quitter exits meanwhile; the writer writes some 25 lines
        assert alive(pid), "the container died with the daemon"
        daemon.start()

        listed = {line.split()[-1]: line for line in daemon.ok("ps", "-a").splitlines()[1:]}
        assert "Up " in listed["live-writer"]
        state = inspect(daemon, quitter)["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 7
        assert inspect(daemon, writer)["State"]["Pid"] == pid

        written = counters(daemon.ok("logs", writer))
        assert written[-1] - last_before >= 15, "lines written while the daemon was down are missing"
        assert written == list(range(written[0], written[-1] + 1)), "the log lost lines"
    finally:
        attached.kill()
        attached.wait()
        daemon.cli("rm", "-f", quitter)


def test_stop_attach_and_exec_work_on_containers_from_before_the_restart(daemon, writer):
    kill_daemon(daemon)
    daemon.start()

    assert daemon.ok("exec", writer, "echo", "hi from exec").strip() == "hi from exec"

    attached = subprocess.Popen([sys.executable, "-m", "minictr", "-H", daemon.host, "attach", "--no-stdin",
                                 writer], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = attached.stdout.readline().decode()
        assert line.startswith("n=")
    finally:
        attached.kill()
        attached.wait()

    daemon.ok("stop", "-t", "1", writer)
    state = inspect(daemon, writer)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137


def test_an_attached_stdin_stays_open_when_the_daemon_dies(daemon, image):
    """The daemon's death is not the client closing stdin: the container must not see EOF."""
    container_id = daemon.ok("create", "-i", image,
                             "sh", "-c", "while read line; do echo got $line; done; echo stdin-closed").strip()
    client = subprocess.Popen([sys.executable, "-m", "minictr", "-H", daemon.host, "start", "-a", "-i",
                               container_id], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    try:
        client.stdin.write(b"one\n")
        client.stdin.flush()
        assert client.stdout.readline() == b"got one\n"
        kill_daemon(daemon)
        client.kill()
        client.wait()
        daemon.start()
        time.sleep(0.5)
        assert inspect(daemon, container_id)["State"]["Running"] is True
        assert "stdin-closed" not in daemon.ok("logs", container_id)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        daemon.cli("rm", "-f", container_id)


def test_a_container_exit_while_the_daemon_is_down_applies_its_restart_policy(daemon, image):
    container_id = daemon.ok("run", "-d", "--restart", "on-failure:1", image,
                             "sh", "-c", "sleep 1; exit 9").strip()
    try:
        kill_daemon(daemon)
        time.sleep(1.5)
        daemon.start()
        final = wait_until(lambda: (s := inspect(daemon, container_id))["RestartCount"] == 1
                           and s["State"]["Status"] == "exited" and s, what="the restart and its end")
        assert final["State"]["ExitCode"] == 9
    finally:
        daemon.cli("rm", "-f", container_id)


def test_a_restarted_daemon_does_not_mistake_a_reused_pid_for_a_monitor(daemon, image):
    container_id = daemon.ok("run", "-d", image, "sleep", "100").strip()
    try:
        state = inspect(daemon, container_id)["State"]
        kill_daemon(daemon)
        # The monitor dies without writing an exit status, as if killed with the machine's OOM killer.
        monitor = int(open(f"/proc/{state['Pid']}/stat").read().rsplit(")", 1)[1].split()[1])
        os.kill(monitor, 9)
        os.kill(state["Pid"], 9)
        wait_until(lambda: not alive(state["Pid"]), what="the container to die")
        daemon.start()
        state = inspect(daemon, container_id)["State"]
        assert state["Status"] == "exited"
        assert state["ExitCode"] in (137, 255)
    finally:
        daemon.cli("rm", "-f", container_id)
