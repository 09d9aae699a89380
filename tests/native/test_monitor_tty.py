"""minictr-monitor with `tty 1`: the container's pty, control clients, and what a client's
EOF means for the container's stdin (docs/internals.md, "minictr-monitor")."""

import os
import socket
import time

from .conftest import read_frames

OUTSIDE = 100000
IDMAPS = [("uidmap", (0, OUTSIDE, 65536)), ("gidmap", (0, OUTSIDE, 65536))]
TTY = [("tty", "1")]


def read_raw(sock: socket.socket, timeout=10.0) -> bytes:
    """A tty client's output: raw bytes until EOF."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def read_until(sock: socket.socket, marker: bytes, timeout=10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"EOF before {marker!r}: {data!r}"
        data += chunk
    return data


def run_tty(containers, args, **options):
    """create + attach stdout/stderr + start + read the raw output + exit status."""
    c = containers.create(args, extra=TTY + options.pop("extra", []), **options)
    assert c.created.startswith("created "), c.created
    client = c.attach(2 | 4)
    c.started = c.start()
    c.output = read_raw(client)
    client.close()
    c.exit_code = c.wait_exit()[0]
    return c


def control(c, line: bytes) -> bytes:
    """One command on a control connection (first byte 0x08); returns the answer line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(c.attach_path))
        sock.sendall(b"\x08" + line)
        return read_until(sock, b"\n")


def test_tty_is_the_containers_own_dev_pts_0_and_output_is_raw(containers):
    c = containers.create(["sh", "-c", "tty; echo err >&2"], extra=TTY)
    client = c.attach(2 | 4)
    assert c.start() == "started\n"
    # No multiplexed frames: raw bytes, stderr on the same stream, the pty's \r\n.
    assert read_raw(client) == b"/dev/pts/0\r\nerr\r\n"
    assert c.wait_exit()[0] == 0
    assert [(e["stream"], e["log"]) for e in c.log_entries()] == [
        ("stdout", "/dev/pts/0\r\n"), ("stdout", "err\r\n")]


def test_init_leads_a_session_with_the_pty_as_controlling_terminal(containers):
    # /proc/PID/stat: ... pgrp session tty_nr tpgid; devpts major 136.
    c = run_tty(containers, ["cat", "/proc/1/stat"])
    fields = c.output.decode().rsplit(")", 1)[1].split()
    pgrp, session, tty_nr, tpgid = (int(f) for f in fields[2:6])
    assert (pgrp, session, tpgid) == (1, 1, 1)
    assert os.major(tty_nr) == 136 and os.minor(tty_nr) == 0


def test_initial_size_from_tty_size(containers):
    c = run_tty(containers, ["stty", "size"], extra=[("tty_size", "33", "111")])
    assert c.output == b"33 111\r\n"


def test_resize_by_a_control_client_and_ctrl_c_reaches_the_shell(containers):
    script = ('trap "stty size" WINCH; trap "echo got-int; exit 5" INT; stty size; echo ready; '
              'while :; do sleep 0.1; done')
    c = containers.create(["sh", "-c", script], stdin=True, extra=TTY + [("tty_size", "24", "80")])
    client = c.attach(1 | 2)
    assert c.start() == "started\n"
    assert read_until(client, b"ready\r\n") == b"24 80\r\nready\r\n"
    assert control(c, b"resize 40 120\n") == b"ok\n"
    read_until(client, b"40 120\r\n")  # SIGWINCH reached the shell, and the size is new
    client.sendall(b"\x03")  # ^C: a byte through the pty, SIGINT from its line discipline
    assert b"got-int" in read_raw(client)
    assert c.wait_exit()[0] == 5


def test_several_clients_get_the_output_and_share_stdin(containers):
    c = containers.create(["sh", "-c", "read line; echo got $line"], stdin=True, extra=TTY)
    first, second = c.attach(1 | 2), c.attach(2)
    assert c.start() == "started\n"
    first.sendall(b"hello\r")
    out_first, out_second = read_raw(first), read_raw(second)
    assert out_first == out_second == b"hello\r\ngot hello\r\n"  # the pty echoes the input


def test_tty_without_stdin_ignores_client_input(containers):
    c = containers.create(["sh", "-c", "read -t 1 line; echo read=$?"], extra=TTY)
    client = c.attach(1 | 2)
    assert c.start() == "started\n"
    client.sendall(b"typed\r")
    assert read_raw(client) == b"read=1\r\n"


def test_user_owns_its_pty_in_group_tty(containers):
    c = run_tty(containers, ["sh", "-c", "id -u; stat -c '%u %g %a' $(tty)"], uid=1000, gid=1000)
    assert c.output == b"1000\r\n1000 5 620\r\n"


def test_userns_maps_tty_group_when_gid_5_is_mapped(containers):
    c = run_tty(containers, ["stat", "-c", "%u %g", "/dev/pts/0"], userns=True, idmaps=IDMAPS,
                owner=(OUTSIDE, OUTSIDE))
    assert c.output == b"0 5\r\n"


def test_userns_without_gid_5_falls_back_to_no_gid_option(containers):
    single = [("uidmap", (0, OUTSIDE, 1)), ("gidmap", (0, OUTSIDE, 1))]
    c = run_tty(containers, ["sh", "-c", "tty; stat -c '%g' /dev/pts/0"], userns=True,
                idmaps=single, owner=(OUTSIDE, OUTSIDE))
    assert c.started == "started\n"
    assert c.output == b"/dev/pts/0\r\n0\r\n"


def test_control_client_gets_no_output_and_resize_without_tty_is_ignored(containers):
    c = containers.create(["sh", "-c", "read x; echo out"], stdin=True)
    client = c.attach(1 | 2)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as ctl:
        ctl.connect(str(c.attach_path))
        ctl.sendall(b"\x08")
        assert c.start() == "started\n"
        ctl.sendall(b"resize 10 10\nbogus\n")
        answers = read_until(ctl, b"bogus")
        assert answers.startswith(b"ok\nerror 22 ")
        client.sendall(b"go\n")
        assert read_frames(client) == {1: b"out\n", 2: b""}
        # Nothing but answers ever reached the control connection; the monitor closes it at the end.
        assert read_raw(ctl) == b""


def test_half_close_ends_the_containers_stdin(containers):
    c = containers.create(["sh", "-c", "cat; echo stdin-ended"], stdin=True)
    client = c.attach(1 | 2)
    assert c.start() == "started\n"
    client.sendall(b"x\n")
    client.shutdown(socket.SHUT_WR)
    assert read_frames(client) == {1: b"x\nstdin-ended\n", 2: b""}
    assert c.wait_exit()[0] == 0


def test_a_client_that_goes_away_leaves_the_containers_stdin_open(containers):
    # What a killed daemon looks like to the monitor: its connections close outright.
    c = containers.create(["sh", "-c", "cat; echo stdin-ended"], stdin=True)
    gone = c.attach(1 | 2)
    assert c.start() == "started\n"
    gone.sendall(b"first\n")
    assert read_until(gone, b"first\n")
    gone.close()
    time.sleep(0.5)
    assert not c.exit_path.exists(), "closing the connection ended the container's stdin"
    later = c.attach(1 | 2)
    later.sendall(b"second\n")
    later.shutdown(socket.SHUT_WR)
    assert read_frames(later) == {1: b"second\nstdin-ended\n", 2: b""}
    assert c.wait_exit()[0] == 0


def test_a_tty_client_that_goes_away_leaves_the_shell_running(containers):
    c = containers.create(["sh"], stdin=True, extra=TTY)
    gone = c.attach(1 | 2)
    assert c.start() == "started\n"
    gone.sendall(b"echo one\r")
    read_until(gone, b"one\r\n")
    gone.close()
    time.sleep(0.3)
    assert not c.exit_path.exists()
    later = c.attach(1 | 2)
    later.sendall(b"echo two; exit 4\r")
    assert b"two\r\n" in read_raw(later)
    assert c.wait_exit()[0] == 4
