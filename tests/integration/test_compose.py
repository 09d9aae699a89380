"""Docker Compose (Debian's docker-compose 1.29, on docker-py; nobody here wrote it) runs a multi-service
project against minictr's socket unchanged: a project network whose service names resolve, a named
volume, a published port, a healthcheck that a dependent service waits for, `exec`, `run --rm` beside
the running services (which sends legacy Links), `up --scale`, a changed file recreating a service, and
`down -v` leaving nothing behind. Root and rootless; the image is the suite's busybox-local, so Compose
never pulls."""

import json
import shutil
import subprocess
import time
import urllib.request
import uuid

import pytest

from . import dockercli
from .conftest import IMAGE, ROOTLESS, daemon_pid, in_netns, mounts_of, network_names, volume_names, wait_until
from .test_network_stress import in_daemon_netns, veth_prefix

PAGE = "hello-from-the-volume"
# busybox's static wget crashes on this busybox build (see test_dns.py): HTTP by hand with nc.
GET = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} 80"


def project_file(greeting="one"):
    """The project, as Compose file format 2.4 (the last one with `depends_on: condition`). JSON is YAML.
    `web` serves the page it writes into a named volume, after a pause that the healthcheck covers;
    `client` fetches it by the service's name once, at its start: it fails unless it waits for web."""
    return {
        "version": "2.4",
        "services": {
            "web": {
                "image": IMAGE,
                "command": ["sh", "-c", f"echo {PAGE} > /www/index.html; sleep 2; exec httpd -f -p 80 -h /www"],
                "volumes": ["site:/www"],
                "ports": ["127.0.0.1::80"],
                "healthcheck": {"test": ["CMD-SHELL", GET.format(host="127.0.0.1") + f" | grep -q {PAGE}"],
                                "interval": "1s", "timeout": "3s", "retries": 30},
            },
            "client": {
                "image": IMAGE,
                "command": ["sh", "-c", GET.format(host="web") + " > /tmp/page && cat /tmp/page && exec sleep 1000"],
                "environment": {"GREETING": greeting},
                "depends_on": {"web": {"condition": "service_healthy"}},
            },
        },
        "volumes": {"site": {}},
    }


class Project:
    """One Compose project against the test daemon, in a directory of its own."""

    def __init__(self, daemon, directory):
        self.daemon = daemon
        self.directory = directory
        self.name = "cc" + uuid.uuid4().hex[:8]
        self.write()

    def write(self, **changes):
        (self.directory / "docker-compose.yml").write_text(json.dumps(project_file(**changes), indent=1))

    def compose(self, *args, check=True, timeout=120):
        compose = shutil.which("docker-compose", path=dockercli.PATH)
        assert compose, "no docker-compose: scripts/install --test installs Debian's package"
        # The suite's PATH: Compose runs `run`'s container through the docker CLI found there.
        env = {"PATH": dockercli.PATH, "HOME": str(self.directory), "DOCKER_HOST": self.daemon.host,
               "COMPOSE_PROJECT_NAME": self.name}
        result = subprocess.run([compose, "--ansi", "never", *args], cwd=self.directory, env=env, capture_output=True,
                                text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check:
            assert result.returncode == 0, (f"docker-compose {' '.join(args)} failed ({result.returncode}):\n"
                                            f"{result.stdout}{result.stderr}\n--- daemon ---\n"
                                            f"{self.daemon.log_tail()}")
        return result

    def ids(self, service):
        return self.compose("ps", "-q", service).stdout.split()

    def containers(self):
        """Every container of the project, running or not."""
        return self.daemon.ok("ps", "-a", "-q", "--no-trunc", "--filter",
                               f"label=com.docker.compose.project={self.name}").split()

    def published(self, service, port):
        host, _, host_port = self.compose("port", service, str(port)).stdout.strip().rpartition(":")
        return host, int(host_port)


@pytest.fixture
def project(net_daemon, tmp_path):
    p = Project(net_daemon, tmp_path)
    yield p
    p.compose("down", "-v", "--remove-orphans", "-t", "1", check=False)
    for container_id in p.containers():  # what Compose could not remove fails the test through the fixture
        net_daemon.cli("rm", "-f", container_id)


def http_get(daemon, host, port, timeout=20):
    """GET / on the host side of a published port: the daemon's network namespace as root (net_daemon has
    one of its own), the host's when rootless (the wrapper listens there)."""
    def get():
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://{host}:{port}/", timeout=3) as response:
                    return response.read().decode()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    return in_netns(daemon.netns, get) if daemon.netns else get()


def state_of(daemon, container_id):
    return json.loads(daemon.ok("inspect", "--type", "container", container_id))[0]["State"]


def test_up_waits_for_the_healthy_service_and_the_project_works(project):
    project.compose("up", "-d")
    daemon = project.daemon
    web, = project.ids("web")
    client, = project.ids("client")
    # The client fetched the page by the service's name once, at its start: web was healthy by then.
    assert state_of(daemon, web)["Health"]["Status"] == "healthy"
    assert state_of(daemon, client)["Running"], project.compose("logs", "client").stdout
    assert PAGE in project.compose("logs", "--no-color", "client").stdout
    # The project's network and volume exist under the project's name.
    networks = network_names(daemon)
    assert f"{project.name}_default" in networks
    assert f"{project.name}_site" in volume_names(daemon)
    # The published port answers on the host's loopback.
    host, port = project.published("web", 80)
    assert host == "127.0.0.1"
    assert http_get(daemon, host, port).strip() == PAGE


def test_exec_and_run_rm_beside_running_services(project):
    project.compose("up", "-d")
    assert project.compose("exec", "-T", "web", "cat", "/www/index.html").stdout.strip() == PAGE
    assert project.compose("exec", "-T", "web", "sh", "-c", "exit 3", check=False).returncode == 3
    # `run` sends Links to the running services (legacy links, on the project's network), then has the
    # docker CLI start and attach it (Compose's default; its own attach, COMPOSE_INTERACTIVE_NO_CLI, comes
    # after the start through dockerpty and loses what the container printed first, with Docker too).
    before = set(project.containers())
    out = project.compose("run", "--rm", "-T", "client", "sh", "-c", GET.format(host="web")).stdout
    assert PAGE in out
    assert set(project.containers()) == before, "run --rm left its container"


def test_up_scale_runs_more_containers_of_a_service_each_reaching_the_others(project):
    project.compose("up", "-d")
    project.compose("up", "-d", "--scale", "client=3")
    clients = project.ids("client")
    assert len(clients) == 3
    for client in clients:
        wait_until(lambda: PAGE in project.daemon.ok("logs", client), timeout=30, what=f"{client} to fetch the page")
        assert state_of(project.daemon, client)["Running"]


def test_a_changed_file_recreates_the_changed_service_only(project):
    project.compose("up", "-d")
    web, = project.ids("web")
    old_client, = project.ids("client")
    project.write(greeting="two")
    project.compose("up", "-d", "-t", "1")  # the old client's sleep, as PID 1, ignores SIGTERM
    new_client, = project.ids("client")
    assert new_client != old_client
    assert project.ids("web") == [web], "web did not change and must not be recreated"
    assert old_client not in project.containers()
    assert project.compose("exec", "-T", "client", "sh", "-c", "echo $GREETING").stdout.strip() == "two"
    assert PAGE in project.daemon.ok("logs", new_client)


def test_down_v_leaves_no_container_network_volume_veth_or_mount(project):
    project.compose("up", "-d", "--scale", "client=2")
    daemon = project.daemon
    ids = project.containers()
    assert len(ids) == 3
    project.compose("down", "-v", "-t", "1")
    assert project.containers() == []
    assert not [n for n in network_names(daemon) if project.name in n]
    assert not [v for v in volume_names(daemon) if project.name in v]
    links = in_daemon_netns(daemon, "ip", "-o", "link").stdout if ROOTLESS else daemon.ip("-o", "link").stdout
    assert veth_prefix(daemon) not in links
    mounts = mounts_of(daemon_pid(daemon))
    assert not [i for i in ids if i in mounts], "a container's mount is left in the daemon's namespace"
    assert f"{project.name}_site" not in mounts
