"""A container that ended while the daemon awaited has pid 0; signalling it must not become kill(0),
which signals the daemon's own process group (CI's rootless run was SIGKILLed that way: stop's
timeout ran out just as the container exited)."""

import signal
import types

from minictr.containers import control
from minictr.containers.control import Control
from minictr.containers.state import State


def test_a_container_whose_pid_is_gone_gets_no_signal(monkeypatch):
    sent = []
    monkeypatch.setattr(control.os, "kill", lambda pid, signum: sent.append((pid, signum)))
    ended = types.SimpleNamespace(pid=0, state=State.EXITED)
    Control.send_signal(None, ended, signal.SIGKILL)
    assert sent == []


def test_a_running_container_gets_its_signal(monkeypatch):
    sent = []
    monkeypatch.setattr(control.os, "kill", lambda pid, signum: sent.append((pid, signum)))
    running = types.SimpleNamespace(pid=4242, state=State.RUNNING)
    Control.send_signal(None, running, signal.SIGTERM)
    assert sent == [(4242, signal.SIGTERM)]
