"""An Ansible play with the community.docker collection (Debian's `ansible` package; nobody here wrote it)
against minictr's socket: a network, a volume, a container with a healthcheck, a published port and a
volume, a second one linked to it, their info, an exec, then everything absent. A second run of the same
play changes nothing (the modules compare what they asked for with what inspect answers). Root and
rootless."""

import json
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid

import pytest

from . import dockercli
from .conftest import IMAGE, in_netns, network_names, volume_names

PAGE = "hello-from-ansible"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def play(daemon, name, port, out, state="present"):
    """The play, as JSON (which is YAML). `state` absent removes what present made."""
    present = state == "present"
    network, volume = f"{name}-net", f"{name}-data"
    web = {"name": f"{name}-web", "image": IMAGE, "state": "started" if present else "absent",
           "command": ["sh", "-c", f"echo {PAGE} > /www/index.html; exec httpd -f -p 80 -h /www"],
           "volumes": [f"{volume}:/www"], "networks": [{"name": network}], "networks_cli_compatible": True,
           "published_ports": [f"127.0.0.1:{port}:80"],
           "healthcheck": {"test": ["CMD-SHELL", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 127.0.0.1 80"],
                           "interval": "1s", "timeout": "3s", "retries": 30},
           "force_kill": True}
    client = {"name": f"{name}-client", "image": IMAGE, "state": "started" if present else "absent",
              "command": ["sleep", "1000"], "networks": [{"name": network, "links": [f"{name}-web:backend"]}],
              "networks_cli_compatible": True, "force_kill": True}
    tasks = [{"community.docker.docker_network": {"name": network}},
             {"community.docker.docker_volume": {"volume_name": volume}},
             {"community.docker.docker_container": web},
             {"community.docker.docker_container": client},
             {"community.docker.docker_container_info": {"name": f"{name}-web"}, "register": "web_info",
              "until": "web_info.container.State.Health.Status == 'healthy'", "retries": 60, "delay": 1},
             {"community.docker.docker_container_exec": {
                 "container": f"{name}-client",
                 "argv": ["sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 backend 80"]},
              "register": "fetched", "changed_when": False},
             {"ansible.builtin.copy": {"content": "{{ {'web': web_info.container, 'fetched': fetched.stdout}"
                                                  " | to_json }}", "dest": str(out)}, "changed_when": False}]
    if not present:
        tasks = [{"community.docker.docker_container": client}, {"community.docker.docker_container": web},
                 {"community.docker.docker_network": {"name": network, "state": "absent"}},
                 {"community.docker.docker_volume": {"volume_name": volume, "state": "absent"}}]
    return [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "module_defaults": {"group/community.docker.docker": {"docker_host": daemon.host}},
             "tasks": tasks}]


def ansible_playbook(daemon, tmp_path, playbook):
    binary = shutil.which("ansible-playbook", path=dockercli.PATH)
    assert binary, "no ansible-playbook: scripts/install --test installs Debian's ansible"
    path = tmp_path / f"play-{uuid.uuid4().hex[:6]}.yml"
    path.write_text(json.dumps(playbook, indent=1))
    env = {"PATH": dockercli.PATH, "HOME": str(tmp_path), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
           "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0",
           "ANSIBLE_STDOUT_CALLBACK": "json", "LC_ALL": "C.UTF-8"}
    run = subprocess.run([binary, "-i", "localhost,", str(path)], env=env, capture_output=True, text=True,
                         timeout=300, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, f"{run.stdout[-6000:]}{run.stderr}\n--- daemon ---\n{daemon.log_tail()}"
    return json.loads(run.stdout)["stats"]["localhost"]


def http_get(daemon, port, timeout=20):
    def get():
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as response:
                    return response.read().decode()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    return in_netns(daemon.netns, get) if daemon.netns else get()


@pytest.fixture
def named(net_daemon, tmp_path):
    """The play's prefix and port; whatever it made is removed afterwards, whatever happened."""
    name = "ans" + uuid.uuid4().hex[:6]
    port = in_netns(net_daemon.netns, free_port) if net_daemon.netns else free_port()
    yield name, port
    net_daemon.cli("rm", "-f", f"{name}-client", f"{name}-web")
    net_daemon.cli("network", "rm", f"{name}-net")
    net_daemon.cli("volume", "rm", f"{name}-data")


def test_a_community_docker_play_runs_again_without_change_and_removes_everything(net_daemon, tmp_path, named):
    name, port = named
    out = tmp_path / "seen.json"
    first = ansible_playbook(net_daemon, tmp_path, play(net_daemon, name, port, out))
    assert first["failures"] == 0 and first["changed"] >= 4
    seen = json.loads(out.read_text())
    assert seen["web"]["State"]["Health"]["Status"] == "healthy"
    assert seen["web"]["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert PAGE in seen["fetched"], "the client did not reach web by its link's alias"
    assert http_get(net_daemon, port).strip() == PAGE
    # Idempotence: the modules find everything as asked (the last task writes the same file again).
    again = ansible_playbook(net_daemon, tmp_path, play(net_daemon, name, port, out))
    assert again["changed"] == 0, again
    gone = ansible_playbook(net_daemon, tmp_path, play(net_daemon, name, port, out, state="absent"))
    assert gone["changed"] == 4
    assert not [c for c in net_daemon.ok("ps", "-a", "--format", "{{.Names}}").split() if c.startswith(name)]
    assert f"{name}-net" not in network_names(net_daemon)
    assert f"{name}-data" not in volume_names(net_daemon)
