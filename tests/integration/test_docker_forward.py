"""On a host that also runs Docker: iptables' filter FORWARD chain with policy DROP, br_netfilter on.

As root, each test module run makes a network namespace ("the host"), sets up Docker's rules there
(policy DROP, DOCKER-USER, DOCKER-FORWARD, DOCKER-ISOLATION chains, for IPv4 and IPv6, with
iptables-nft and then with iptables-legacy), turns bridge-nf-call-iptables and -ip6tables on in it,
gives it a "remote" host (tests/integration/remote-host, its veth in that namespace), and runs a daemon
there. Containers must reach each other and the remote, a published port must answer, and once the
daemon stops the namespace's rules must be exactly Docker's again.

Rootless, the daemon's network namespace is its own, with no filter table: nothing is added there, and
its containers' traffic leaves through slirp4netns's sockets in the host's namespace, so the host's
FORWARD chain never sees it.
"""

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

import minictr

from .conftest import IMAGE, REPO, ROOTLESS, Daemon, NetnsDaemon, wait_until

REMOTE_HOST = REPO / "tests" / "integration" / "remote-host"
TEST_USER = "minictr-test"  # scripts/test's unprivileged user, with subordinate ids
HTTPD = "mkdir -p /www && echo served-by-$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"

# Docker 28's filter table (iptables-save of a host running it, docker0 only), for both families.
DOCKER_FILTER = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-BRIDGE - [0:0]
:DOCKER-CT - [0:0]
:DOCKER-FORWARD - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-FORWARD
-A DOCKER ! -i docker0 -o docker0 -j DROP
-A DOCKER-BRIDGE -o docker0 -j DOCKER
-A DOCKER-CT -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-FORWARD -j DOCKER-CT
-A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1
-A DOCKER-FORWARD -j DOCKER-BRIDGE
-A DOCKER-FORWARD -i docker0 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-USER -j RETURN
COMMIT
"""


# A skip counts as a failure in CI (MINICTR_REQUIRE_ALL=1): the tests of one mode are not defined in the other.
def root_only(test):
    return None if ROOTLESS else test


def rootless_only(test):
    return test if ROOTLESS else None


def _sh(*args, check=True, env=None, input=None):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check, env=env, input=input)


class DockerHost:
    """A network namespace with Docker's filter rules in one iptables backend, and a daemon in it."""

    def __init__(self, backend, netns, daemon, remote, remote_ns):
        self.backend, self.netns, self.daemon, self.remote, self.remote_ns = backend, netns, daemon, remote, remote_ns

    def run(self, *argv, check=False):
        return _sh("ip", "netns", "exec", self.netns, *argv, check=check)

    def save(self, family="ip"):
        tool = "iptables" if family == "ip" else "ip6tables"
        return self.run(f"{tool}-{self.backend}-save", "-t", "filter", check=True).stdout

    def rules(self):
        """Both families' filter tables and the whole nftables ruleset, without counters or timestamps."""
        text = self.save("ip") + self.save("ip6") + self.run("nft", "list", "ruleset", check=True).stdout
        text = re.sub(r"\[\d+:\d+\]|counter packets \d+ bytes \d+ ?", "", text)
        return [line.rstrip() for line in text.splitlines() if not line.startswith("#")]


@pytest.fixture(scope="module", params=["nft", "legacy"])
def docker_host(request, busybox_tar):
    backend = request.param
    tag = secrets.token_hex(3)
    netns, remote_name = f"mctest-f{tag}", f"fwd{backend[0]}"
    top = Path(tempfile.mkdtemp(prefix="minictr-dockerfwd-"))
    os.chmod(top, 0o755)
    env = {**os.environ, "REMOTE_HOST_NS": netns}
    _sh("ip", "netns", "add", netns)
    daemon = NetnsDaemon(top, netns)
    try:
        daemon.ip("link", "set", "lo", "up", check=True)
        for family in ("iptables", "ip6tables"):
            _sh("ip", "netns", "exec", netns, f"{family}-{backend}-restore", input=DOCKER_FILTER)
        for family in ("iptables", "ip6tables"):
            _sh("ip", "netns", "exec", netns, "sysctl", "-qw", f"net.bridge.bridge-nf-call-{family}=1")
        remote = _sh(REMOTE_HOST, "up", remote_name, 204 if backend == "nft" else 205, env=env).stdout.strip()
        host = DockerHost(backend, netns, daemon, remote, f"mctest-{remote_name}")
        host.docker_rules = host.rules()
        daemon.start()
        daemon.ok("import", "--change", 'CMD ["sh"]', str(busybox_tar), IMAGE)
        yield host
    finally:
        daemon.teardown()
        _sh(REMOTE_HOST, "down", remote_name, check=False, env=env)
        _sh("ip", "netns", "del", netns, check=False)
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def made(docker_host):
    """Names for containers and networks of one test, all removed afterwards (even when it fails)."""
    d, names = docker_host.daemon, {"containers": [], "networks": []}
    yield names
    for container in names["containers"]:
        d.cli("rm", "-f", container)
    for network in names["networks"]:
        d.cli("network", "rm", network)


def _http(d, target, *run_args):
    # busybox's static wget crashes on this busybox build: HTTP by hand through nc.
    host, port = target.split(":")
    script = f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port} | tail -n 1 | grep ."
    return d.cli("run", "--rm", *run_args, IMAGE, "sh", "-c", script, timeout=60)


def _jumps(host, family="ip"):
    chain = f"MINICTR-FWD-{host.daemon.bridge}"
    return [line for line in host.save(family).splitlines() if line.startswith("-A FORWARD") and line.endswith(chain)]


def _server(host, made, network):
    d = host.daemon
    name = f"fwd-srv-{uuid.uuid4().hex[:6]}"
    made["containers"].append(name)
    d.ok("run", "-d", "--name", name, "--network", network, IMAGE, "sh", "-c", HTTPD)
    return name


@root_only
def test_dockers_drop_is_real_here_and_minictr_jumps_past_it(docker_host):
    for family in ("ip", "ip6"):
        saved = docker_host.save(family)
        assert ":FORWARD DROP" in saved, saved
        # One jump, after Docker's own (appended: DOCKER-USER still sees every packet first).
        forward = [line for line in saved.splitlines() if line.startswith("-A FORWARD")]
        assert forward[:2] == ["-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-FORWARD"], forward
        assert forward[2:] == [f"-A FORWARD -m comment --comment minictr -j MINICTR-FWD-{docker_host.daemon.bridge}"]
    assert docker_host.run("sysctl", "-n", "net.bridge.bridge-nf-call-iptables").stdout.strip() == "1"
    assert "may be dropped" not in docker_host.daemon.log.read_text(), "the daemon warned about a drop it opened"


@root_only
def test_doctor_names_dockers_drop_as_handled(docker_host, tmp_path):
    result = docker_host.run(sys.executable, "-m", "minictr", "-H", f"unix://{tmp_path}/none.sock", "doctor",
                             "--format", "json", "--data-root", str(tmp_path / "data"))
    check = next(r for r in json.loads(result.stdout) if r["check"] == "forward policy")
    if docker_host.backend == "nft":
        assert check["status"] == "ok", check
        assert check["message"].startswith("ip filter FORWARD, ip6 filter FORWARD have policy drop"), check
    else:
        # iptables-legacy's tables are not nftables': nothing there drops what nft can see.
        assert (check["status"], check["message"]) == ("ok", "no forward chain drops by default"), check


@root_only
def test_containers_on_a_user_network_reach_each_other(docker_host, made):
    d = docker_host.daemon
    network = f"fwd-net-{uuid.uuid4().hex[:6]}"
    made["networks"].append(network)
    d.ok("network", "create", network)
    server = _server(docker_host, made, network)
    result = wait_until(lambda: _http(d, f"{server}:8080", "--network", network).stdout.strip() or None,
                        what="an answer from the other container")
    assert result.startswith("served-by-"), result


@root_only
def test_containers_reach_a_host_outside(docker_host, made):
    d = docker_host.daemon
    network = f"fwd-out-{uuid.uuid4().hex[:6]}"
    made["networks"].append(network)
    d.ok("network", "create", network)
    for run_args in ((), ("--network", network)):
        result = _http(d, docker_host.remote, *run_args)
        assert result.returncode == 0, f"{run_args}: {result.stderr}\n{d.log_tail()}"
        assert result.stdout.strip().startswith("remote "), result.stdout


@root_only
def test_a_published_port_answers_a_client_on_another_host(docker_host, made):
    d = docker_host.daemon
    name = f"fwd-web-{uuid.uuid4().hex[:6]}"
    made["containers"].append(name)
    d.ok("run", "-d", "--name", name, "-p", "8080", IMAGE, "sh", "-c", HTTPD)
    port = d.ok("port", name, "8080").splitlines()[0].rsplit(":", 1)[1]
    # The remote reaches the "host" at the first address of its /30.
    host_ip = docker_host.remote.split(":")[0].rsplit(".", 1)[0] + ".1"

    def fetch():
        result = _sh("ip", "netns", "exec", docker_host.remote_ns, "sh", "-c",
                     f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 5 {host_ip} {port} | tail -n 1",
                     check=False)
        return result.stdout.strip() or None

    assert wait_until(fetch, what="the published port's answer").startswith("served-by-")


@root_only
def test_without_the_jump_dockers_drop_wins_and_a_killed_daemon_puts_back_one(docker_host, made):
    d = docker_host.daemon
    network = f"fwd-kill-{uuid.uuid4().hex[:6]}"
    made["networks"].append(network)
    d.ok("network", "create", network)
    server = _server(docker_host, made, network)
    assert _http(d, f"{server}:8080", "--network", network).stdout.strip().startswith("served-by-")
    tool = f"iptables-{docker_host.backend}"
    for jump in _jumps(docker_host):
        docker_host.run(tool, "-D", *jump.split()[1:], check=True)
    # The test's own check: Docker's policy really drops traffic between two containers of one bridge.
    blocked = _http(d, f"{server}:8080", "--network", network)
    assert not blocked.stdout.strip(), f"reached the other container without minictr's jump: {blocked.stdout}"
    for _ in range(2):
        d.kill()
        d.start()
        assert len(_jumps(docker_host)) == 1 and len(_jumps(docker_host, "ip6")) == 1, docker_host.save()
    result = wait_until(lambda: _http(d, f"{server}:8080", "--network", network).stdout.strip() or None,
                        what="an answer once the daemon is back")
    assert result.startswith("served-by-")


class RootlessNetnsDaemon(Daemon):
    """A rootless daemon of TEST_USER whose wrapper runs in `netns`: there, that namespace is its host (its
    slirp4netns, its published ports). Runs a copy of the code in `top`, which the user owns."""

    def __init__(self, top, netns):
        super().__init__(top)
        self.host_netns = netns

    def _argv(self):
        env = ["PATH=/usr/local/bin:/usr/bin:/bin", f"HOME={self.top}", f"XDG_RUNTIME_DIR={self.top}",
               f"PYTHONPATH={self.top / 'runtime'}", "MINICTR_REGISTRY_LOOPBACK_ONLY=1",
               f"MINICTR_DNS_FORWARD={os.environ['MINICTR_DNS_FORWARD']}", f"MINICTR_DEFAULT_BRIDGE={self.bridge}"]
        return ["ip", "netns", "exec", self.host_netns, "runuser", "-u", TEST_USER, "--", "env", "-i", *env,
                *super()._argv()]

    def in_own_netns(self, *argv):
        holder = (self.socket.parent / "ns.pid").read_text().split()[0]
        return _sh("nsenter", "-t", holder, "-n", *argv, check=False)

    def teardown(self):
        helpers = [self.socket.parent / name for name in ("ns.pid", "slirp.pid")]
        pids = [int(f.read_text().split()[0]) for f in helpers if f.exists()]
        if self.process and self.process.poll() is None:
            for container_id in self.cli("ps", "-a", "-q", "--no-trunc").stdout.split():
                self.cli("rm", "-f", container_id)
        self.stop()
        # Stopped with no container, it stops its namespaces' holder and slirp4netns; if it could not, we do.
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


@root_only
def test_a_rootless_daemon_on_this_host_needs_no_jump(docker_host, busybox_tar):
    """Rootless traffic never crosses the host's FORWARD chain: between containers it stays in the daemon's
    own namespace (no filter table there), and out it goes through slirp4netns's sockets on the host."""
    top = Path(tempfile.mkdtemp(prefix="minictr-rootless-fwd-"))
    d = RootlessNetnsDaemon(top, docker_host.netns)
    try:
        # The minictr under test (a checkout's or the venv's), where the user can read it.
        shutil.copytree(Path(minictr.__file__).parent, top / "runtime" / "minictr",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(busybox_tar, top / "busybox.tar")
        (top / "run").mkdir(mode=0o700)
        _sh("chown", "-R", f"{TEST_USER}:", top)
        before = docker_host.rules()
        d.start()
        # Rootless indeed: its own namespace, whose only way out is slirp4netns's tap0.
        assert "dev tap0" in d.in_own_netns("ip", "route", "show", "default").stdout
        d.ok("import", "--change", 'CMD ["sh"]', str(top / "busybox.tar"), IMAGE)
        network = f"fwd-rl-{uuid.uuid4().hex[:6]}"
        d.ok("network", "create", network)
        d.ok("run", "-d", "--name", "fwd-rl-srv", "--network", network, IMAGE, "sh", "-c", HTTPD)
        result = wait_until(lambda: _http(d, "fwd-rl-srv:8080", "--network", network).stdout.strip() or None,
                            what="an answer from the other rootless container")
        assert result.startswith("served-by-")
        outside = _http(d, docker_host.remote)
        assert outside.stdout.strip().startswith("remote "), f"{outside.stderr}\n{d.log_tail()}"
        assert docker_host.rules() == before, "the rootless daemon changed the host's rules"
        assert "filter" not in d.in_own_netns("nft", "list", "tables").stdout
        for names in ("ip_tables_names", "ip6_tables_names"):
            assert "filter" not in d.in_own_netns("cat", f"/proc/net/{names}").stdout
    finally:
        d.teardown()
        shutil.rmtree(top, ignore_errors=True)


@rootless_only
def test_the_rootless_daemons_namespace_has_no_filter_table_to_open(net_daemon):
    """Rootless: the daemon's network namespace has no iptables filter table, so no jump is added there;
    the host's FORWARD chain (Docker's policy DROP) never sees the containers' traffic (slirp4netns)."""
    holder = (net_daemon.socket.parent / "ns.pid").read_text().split()[0]
    nft = shutil.which("nft") or "/usr/sbin/nft"  # rootless runs get a PATH without /usr/sbin
    tables = _sh("nsenter", "--preserve-credentials", "-U", "-n", "-t", holder, nft, "list", "tables", check=False)
    assert tables.returncode == 0, tables.stderr
    assert "inet minictr" in tables.stdout and " filter" not in tables.stdout, tables.stdout
    for names in ("ip_tables_names", "ip6_tables_names"):
        listed = _sh("nsenter", "--preserve-credentials", "-U", "-n", "-t", holder, "cat", f"/proc/net/{names}",
                     check=False)
        assert "filter" not in listed.stdout


@root_only
def test_when_the_daemon_stops_dockers_rules_are_as_before(docker_host):
    """Last of the module: stops the daemon for good."""
    chain = f"MINICTR-FWD-{docker_host.daemon.bridge}"
    assert any(chain in line for line in docker_host.rules())
    for container in docker_host.daemon.cli("ps", "-a", "-q").stdout.split():
        docker_host.daemon.cli("rm", "-f", container)
    docker_host.daemon.stop()
    after = docker_host.rules()
    assert after == docker_host.docker_rules, "\n".join(after)
