"""`run -it`, `attach`, `start -ai`: a container's tty on the user's terminal, as with Docker.

Each CLI runs on a pty of its own (Python's pty module) that the test types into and reads."""

import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

from tests.integration.dockercli import PATH as DOCKER_PATH

CTRL_C, CTRL_P, CTRL_Q = b"\x03", b"\x10", b"\x11"


class Terminal:
    """A command on a terminal of its own: `send` what a user types, `expect` what they see."""

    def __init__(self, argv, rows=24, cols=80, env=None):
        env = dict(env or os.environ, TERM="xterm")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: set the terminal's size, then become the command
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.output = b""
        self._mark = 0  # where the next expect starts looking
        self.status = None

    def _read(self, timeout):
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return None
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the other side is closed
            data = b""
        self.output += data
        return data

    def expect(self, marker, timeout=20):
        """Wait until MARKER (bytes) has been shown since the last expect; returns what was shown."""
        marker = marker.encode() if isinstance(marker, str) else marker
        start = self._mark
        deadline = time.monotonic() + timeout
        while marker not in self.output[start:]:
            remaining = deadline - time.monotonic()
            data = self._read(max(remaining, 0)) if remaining > 0 else None
            if not data:
                raise AssertionError(f"{marker!r} not shown; the screen so far: {self.output!r}")
        end = self.output.index(marker, start) + len(marker)
        self._mark = end
        return self.output[start:end]

    def send(self, data):
        os.write(self.fd, data.encode() if isinstance(data, str) else data)

    def resize(self, rows, cols):
        """What a terminal emulator does when its window changes: the command gets SIGWINCH."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def wait(self, timeout=30):
        """The command's exit status (reading the screen meanwhile, so that it never blocks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                while self._read(0.05):
                    pass
                return self.status
            self._read(0.05)
        raise AssertionError(f"still running after {timeout}s; the screen: {self.output!r}")

    def close(self):
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.status = -9
        os.close(self.fd)


@pytest.fixture
def terminals():
    opened = []

    def open_terminal(argv, **kwargs):
        t = Terminal(argv, **kwargs)
        opened.append(t)
        return t

    yield open_terminal
    for t in opened:
        t.close()


def minictr(daemon, *args):
    return [sys.executable, "-m", "minictr", "-H", daemon.host, *args]


def shell_ready(t, token):
    """Type a command whose output differs from its echo, so that the shell is known to read."""
    t.send(f"echo {token}-$((40+2))\r")
    t.expect(f"{token}-42")


def state(daemon, name):
    return daemon.client().get(f"/containers/{name}/json")["State"]


def test_run_it_is_a_shell_on_its_own_dev_pts_0_with_our_size(daemon, image, terminals):
    t = terminals(minictr(daemon, "run", "-it", "--rm", image, "sh"), rows=30, cols=100)
    shell_ready(t, "up")
    t.send("tty; stty size\r")
    screen = t.expect("30 100")
    assert b"/dev/pts/0" in screen
    t.resize(40, 120)
    deadline = time.monotonic() + 10
    while b"40 120" not in t.output and time.monotonic() < deadline:  # SIGWINCH → resize → new size
        t.send("stty size\r")
        time.sleep(0.2)
        t._read(0.3)
    assert b"40 120" in t.output
    t.send("exit 3\r")
    assert t.wait() == 3


def test_job_control_the_shell_leads_its_session_on_the_pty(daemon, image, terminals):
    t = terminals(minictr(daemon, "run", "-it", "--rm", image, "sh"))
    shell_ready(t, "jc")
    # Session, process group and the terminal's foreground group of the shell (pid 1).
    t.send("cut -d' ' -f5,6 /proc/1/stat; sleep 30 & jobs\r")
    t.expect("Running")
    assert b"\r\n1 1\r\n" in t.output
    assert b"job control turned off" not in t.output
    t.send("kill %1; exit 0\r")
    assert t.wait() == 0


def test_ctrl_c_reaches_the_container_and_our_terminal_is_restored(daemon, image, terminals):
    script = 'trap "echo got-int; exit 7" INT; echo armed; while :; do sleep 0.1; done'
    wrapper = ['sh', '-c', '"$@"; echo "cli-exit=$?"; stty -a', 'sh',
               *minictr(daemon, "run", "-it", "--rm", image, "sh", "-c", script)]
    t = terminals(wrapper)
    t.expect("armed")
    t.send(CTRL_C)
    t.expect("got-int")
    t.expect("cli-exit=7")
    t.wait()
    settings = t.output[t._mark:].decode()
    words = settings.replace(";", " ").split()
    assert "icanon" in words and "echo" in words and "isig" in words, settings


def test_ctrl_p_ctrl_q_detaches_and_the_container_runs_on(daemon, image, terminals):
    t = terminals(minictr(daemon, "run", "-it", "--name", "detach-me", image, "sh"))
    shell_ready(t, "before")
    t.send(CTRL_P + CTRL_Q)
    assert t.wait() == 0
    assert state(daemon, "detach-me")["Running"]
    assert "detach-me" in daemon.ok("ps")
    # The shell kept its pty: attach again and carry on.
    again = terminals(minictr(daemon, "attach", "detach-me"))
    shell_ready(again, "after")
    again.send("tty; exit 5\r")
    again.expect("/dev/pts/0")
    assert again.wait() == 5
    assert state(daemon, "detach-me")["ExitCode"] == 5
    daemon.ok("rm", "detach-me")


def test_detach_keys_of_our_own_replace_the_default(daemon, image, terminals):
    t = terminals(minictr(daemon, "run", "-it", "--name", "keys", "--detach-keys", "ctrl-x,x", image, "sh"))
    shell_ready(t, "k1")
    t.send(CTRL_P + CTRL_Q)  # no longer the detach keys: bytes for the shell
    shell_ready(t, "k2")
    t.send(b"\x18x")
    assert t.wait() == 0
    assert state(daemon, "keys")["Running"]
    daemon.ok("rm", "-f", "keys")


def test_two_attached_clients_see_the_same_tty_and_one_detaches_alone(daemon, image, terminals):
    daemon.ok("run", "-d", "-it", "--name", "shared", image, "sh")
    first = terminals(minictr(daemon, "attach", "shared"))
    second = terminals(minictr(daemon, "attach", "shared"))
    time.sleep(1)  # both connected
    shell_ready(first, "one")
    second.expect("one-42")
    first.send(CTRL_P + CTRL_Q)
    assert first.wait() == 0
    shell_ready(second, "two")
    second.send("exit 0\r")
    assert second.wait() == 0
    assert not state(daemon, "shared")["Running"]
    daemon.ok("rm", "shared")


def test_start_ai_attaches_to_a_created_tty_container(daemon, image, terminals):
    daemon.ok("create", "-it", "--name", "started", image, "sh")
    t = terminals(minictr(daemon, "start", "-ai", "started"))
    shell_ready(t, "start")
    t.send("exit 2\r")
    assert t.wait() == 2
    daemon.ok("rm", "started")


def test_tty_without_stdin_is_raw_output_on_one_stream_logged_as_stdout(daemon, image):
    result = subprocess.run(minictr(daemon, "run", "-t", "--name", "t-only", image, "sh", "-c",
                                    "tty; echo out; echo err >&2"), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"/dev/pts/0\r\nout\r\nerr\r\n"
    assert result.stderr == b""
    log_path = daemon.client().get("/containers/t-only/json")["LogPath"]
    entries = [json.loads(line) for line in open(log_path)]
    assert [(e["stream"], e["log"]) for e in entries] == [
        ("stdout", "/dev/pts/0\r\n"), ("stdout", "out\r\n"), ("stdout", "err\r\n")]
    daemon.ok("rm", "t-only")


def test_stdin_without_tty_and_neither_keep_the_two_streams(daemon, image):
    result = daemon.cli("run", "--rm", "-i", image, "sh", "-c", "cat; echo err >&2; tty", input="piped\n")
    assert (result.returncode, result.stdout, result.stderr) == (1, "piped\nnot a tty\n", "err\n")
    result = daemon.cli("run", "--rm", image, "sh", "-c", "echo out; echo err >&2")
    assert (result.stdout, result.stderr) == ("out\n", "err\n")


def test_it_with_stdin_not_a_terminal_is_refused_before_anything_is_created(daemon, image):
    result = daemon.cli("run", "-it", "--rm", image, "sh", input="")
    assert result.returncode == 1
    assert result.stderr.strip() == "minictr: the input device is not a TTY"
    assert daemon.ok("ps", "-a", "-q") == ""


def test_bad_detach_keys_are_one_line_and_leave_nothing(daemon, image):
    result = daemon.cli("run", "-t", "--rm", "--detach-keys", "ctrl-", image, "true")
    assert result.returncode == 125
    assert len(result.stderr.strip().splitlines()) == 1 and "detach keys" in result.stderr
    assert daemon.ok("ps", "-a", "-q") == ""


def test_resize_api_needs_a_running_container(daemon, image):
    from minictr.errors import Conflict, InvalidArgument

    daemon.ok("create", "-t", "--name", "not-running", image, "sh")
    client = daemon.client()
    with pytest.raises(Conflict):
        client.post("/containers/not-running/resize", {"h": 10, "w": 10})
    with pytest.raises(InvalidArgument):
        client.post("/containers/not-running/resize", {"h": "x", "w": 10})
    daemon.ok("rm", "not-running")


def test_attach_to_a_stopped_container_is_one_clear_line(daemon, image):
    daemon.ok("create", "--name", "stopped", image, "true")
    result = daemon.cli("attach", "stopped")
    assert result.returncode != 0
    assert result.stderr.strip() == "minictr: You cannot attach to a stopped container, start it first"
    daemon.ok("rm", "stopped")


def docker_cli(daemon, *args):
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on the PATH")
    return ["docker", "-H", daemon.host, *args]


def test_docker_cli_run_it(daemon, image, terminals):
    env = {"PATH": DOCKER_PATH, "HOME": str(daemon.top)}
    t = terminals(docker_cli(daemon, "run", "-it", "--rm", image, "sh"), rows=33, cols=90, env=env)
    shell_ready(t, "docker")
    t.send("tty; stty size\r")
    screen = t.expect("33 90")
    assert b"/dev/pts/0" in screen
    t.send("exit 4\r")
    assert t.wait() == 4


def test_docker_cli_detaches_with_ctrl_p_ctrl_q(daemon, image, terminals):
    env = {"PATH": DOCKER_PATH, "HOME": str(daemon.top)}
    t = terminals(docker_cli(daemon, "run", "-it", "--name", "docker-detach", image, "sh"), env=env)
    shell_ready(t, "d")
    t.send(CTRL_P + CTRL_Q)
    assert t.wait() == 0
    assert state(daemon, "docker-detach")["Running"]
    daemon.ok("rm", "-f", "docker-detach")


def test_attach_without_tty_proxies_our_signals_to_the_container(daemon, image):
    script = 'trap "echo got-term; exit 9" TERM; while :; do echo tick; sleep 0.2; done'
    daemon.ok("run", "-d", "--name", "proxied", image, "sh", "-c", script)
    cli = subprocess.Popen(minictr(daemon, "attach", "proxied"), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert cli.stdout.readline() == b"tick\n"  # attached, and its signal handlers are in place
    cli.send_signal(signal.SIGTERM)
    out, err = cli.communicate(timeout=30)
    assert cli.returncode == 9 and out.endswith(b"got-term\n"), err
    daemon.ok("rm", "proxied")
