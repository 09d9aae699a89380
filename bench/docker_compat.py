#!/opt/minictr/venv/bin/python
"""Side script (not a test): the same docker-CLI and raw-API scenarios against Docker's own engine and
against minictr, outputs normalised (ids, times, API version numbers) and diffed, so that what the
tests expect is what Docker does. Run as root from the repository:

    PYTHONPATH=build/dev bench/docker_compat.py [--out bench/results/issue8/compat.md]

It starts a dockerd with directories of its own (as /work/shared/PEERS.md says) and a minictr daemon on a
temporary data root, imports the busybox image the tests use into both (no registry, no Docker Hub),
and stops both at the end.

The clients' scenarios (issue 19) follow: Compose 1.29 with the project of tests/integration/test_compose.py,
step by step, and testcontainers-python's waits (tests/integration/testcontainers_waits.py) from the host and
from inside a container with the engine's socket."""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMAGE = "busybox-local"
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}

# (title, argv after `docker`); run in order on each engine.
SCENARIOS = [
    ("run: stdout and exit 0", ["run", "--rm", IMAGE, "echo", "hi"]),
    ("run: the command's exit code", ["run", "--name", "cmp-exit", IMAGE, "sh", "-c", "exit 3"]),
    ("run: command not found", ["run", "--rm", IMAGE, "nosuchcmd"]),
    ("run: detached", ["run", "-d", "--name", "cmp-up", IMAGE, "sleep", "100"]),
    ("ps -a --format", ["ps", "-a", "--format", "{{.Names}}|{{.Image}}|{{.Command}}|{{.Status}}"]),
    ("inspect --format", ["inspect", "--format",
                          "{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{.Config.Cmd}} {{.Path}} {{.Args}} "
                          "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.LogConfig.Type}} {{.Config.Image}}",
                          "cmp-exit"]),
    ("images --format", ["images", "--format", "{{.Repository}}|{{.Tag}}"]),
    ("network ls", ["network", "ls", "--format", "{{.Name}}|{{.Driver}}|{{.Scope}}"]),
    ("create: name in use (409)", ["create", "--name", "cmp-exit", IMAGE, "true"]),
    ("rm: running container (409)", ["rm", "cmp-up"]),
    ("rmi: image in use (409)", ["rmi", IMAGE]),
    ("inspect: no such object", ["inspect", "nosuch"]),
    ("inspect --type container: 404", ["inspect", "--type", "container", "nosuch"]),
    ("rm: no such container", ["rm", "nosuch"]),
    ("rmi: no such image", ["rmi", "nosuch"]),
    ("logs: no such container", ["logs", "nosuch"]),
    ("exec: no such container", ["exec", "nosuch", "true"]),
    ("volume create/ls/rm", ["volume", "create", "cmp-vol"]),
    ("volume ls", ["volume", "ls", "--format", "{{.Name}}|{{.Driver}}"]),
    ("volume rm", ["volume", "rm", "cmp-vol"]),
    ("volume inspect: no such volume", ["volume", "inspect", "nosuch"]),
    ("network inspect: no such network", ["network", "inspect", "nosuch"]),
    ("stop", ["stop", "-t", "1", "cmp-up"]),
    ("ps -a after stop", ["ps", "-a", "--format", "{{.Names}}|{{.Status}}"]),
    ("rm two", ["rm", "cmp-exit", "cmp-up"]),
    ("node ls (swarm)", ["node", "ls"]),
    ("run --security-opt label=type:x (no SELinux)", ["run", "--rm", "--security-opt", "label=type:svirt_t", IMAGE, "true"]),
    ("run --device (not in minictr)", ["run", "--rm", "--device", "/dev/null:/dev/xnull", IMAGE, "true"]),
    ("network create --ipv6 --subnet (both families)",
     ["network", "create", "--ipv6", "--subnet", "10.123.45.0/24", "--subnet", "fd8c:7:8:9::/64", "cmp-v6"]),
    ("network inspect: an IPv6 network", ["network", "inspect", "-f", "{{.EnableIPv6}} {{range .IPAM.Config}}"
                                          "{{.Subnet}} {{.Gateway}} {{end}}", "cmp-v6"]),
    ("run --ip6: address and default route", ["run", "--rm", "--network", "cmp-v6", "--ip6", "fd8c:7:8:9::42", IMAGE,
                                              "sh", "-c", "ip -6 addr show dev eth0 scope global | awk '/inet6/{print $2}';"
                                              " ip -6 route show default"]),
    ("run: an IPv6 network's inspect fields", ["run", "-d", "--name", "cmp-v6c", "--network", "cmp-v6", "--ip6",
                                               "fd8c:7:8:9::43", IMAGE, "sleep", "100"]),
    ("inspect: GlobalIPv6Address, prefix, IPv6Gateway",
     ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}} {{.GlobalIPv6PrefixLen}} "
      "{{.IPv6Gateway}} {{.IPAMConfig.IPv6Address}}{{end}}", "cmp-v6c"]),
    ("network create --ipv6 without an IPv6 subnet", ["network", "create", "--ipv6", "cmp-v6b"]),
]

# (title, method, path, extra headers): raw HTTP on the socket.
REQUESTS = [
    ("version above max", "GET", "/v1.99/info", {}),
    ("version below min", "GET", "/v1.5/info", {}),
    ("unknown path", "GET", "/nope", {}),
    ("wrong method", "DELETE", "/info", {}),
    ("bad filters JSON", "GET", "/containers/json?filters=%7Bbad", {}),
    ("old-form filters", "GET", "/containers/json?all=1&filters=%7B%22name%22%3A%7B%22nosuch%22%3Atrue%7D%7D", {}),
    ("no such container", "GET", "/containers/nosuch/json", {}),
    ("no such image", "GET", "/images/nosuch/json", {}),
    ("no such exec", "GET", "/exec/nosuch/json", {}),
    ("no such volume", "GET", "/volumes/nosuch", {}),
    ("ping headers", "GET", "/_ping", {}),
    ("HEAD ping", "HEAD", "/_ping", {}),
    ("build (no BuildKit session)", "POST", "/build", {}),
    ("plugins", "GET", "/plugins", {}),
]


def normalise(text, api_max):
    text = re.sub(r"\b[0-9a-f]{64}\b", "<id>", text)
    text = re.sub(r"\b[0-9a-f]{12}\b", "<id>", text)
    text = re.sub(r"sha256:<id>", "sha256:<id>", text)
    text = re.sub(r"(Exited \(\d+\)|Up|Created) (About )?(an?|\d+|Less than a) \w+( ago)?", r"\1 <t>", text)
    text = re.sub(r"\b\d+ (seconds?|minutes?) ago\b", "<t> ago", text)
    text = text.replace(f"version is {api_max}", "version is <max>")
    text = re.sub(r"Minimum supported API version is 1\.\d+", "Minimum supported API version is <min>", text)
    text = re.sub(r"(page not found): [A-Z]+ [^\"]*", r"\1", text)  # minictr names the path; Docker does not
    return text.rstrip("\n")


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(self.unix_path))


def request(sock, method, path, headers):
    conn = UnixHTTP(sock)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace").strip()
        names = sorted(k for k, _ in resp.getheaders() if k.lower() not in ("date", "content-length", "server",
                                                                              "x-content-type-options"))
        if path.endswith("_ping"):
            return f"{resp.status} headers={','.join(names)} body={body!r}"
        try:
            body = json.dumps(json.loads(body), sort_keys=True)
        except ValueError:
            body = f"(text) {body}"
        return f"{resp.status} {body}"
    finally:
        conn.close()


def wait_socket(path, process, what, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited early")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not answer on {path}")


def docker(host, *args):
    r = subprocess.run(["docker", "-H", f"unix://{host}", *args], capture_output=True, text=True, env=ENV,
                       timeout=120)
    return r


COMPOSE_PROJECT = "cmpproj"
# (title, docker-compose arguments, extra environment); run in order in one project directory.
COMPOSE_STEPS = [
    ("compose up -d (network, volume, healthcheck, depends_on service_healthy)", ["up", "-d"], {}),
    ("compose ps", ["ps"], {}),
    ("compose port web 80", ["port", "web", "80"], {}),
    ("compose exec -T web", ["exec", "-T", "web", "cat", "/www/index.html"], {}),
    ("compose run --rm -T client (legacy Links)",
     ["run", "--rm", "-T", "client", "sh", "-c", "echo first; nc -w 3 web 80 </dev/null >/dev/null; echo reached"], {}),
    ("compose run --rm -T through dockerpty (COMPOSE_INTERACTIVE_NO_CLI)",
     ["run", "--rm", "-T", "client", "sh", "-c", "echo first; sleep 1; echo last"],
     {"COMPOSE_INTERACTIVE_NO_CLI": "1"}),
    ("compose up -d --scale client=3", ["up", "-d", "--scale", "client=3"], {}),
    ("compose ps after scale", ["ps", "--services", "--filter", "status=running"], {}),
    ("compose up -d after a change (recreate)", ["up", "-d"], {"GREETING_CHANGE": "1"}),
    ("compose exec -T client after recreate", ["exec", "-T", "client", "sh", "-c", "echo $GREETING"], {}),
    ("compose down -v", ["down", "-v", "-t", "1"], {}),
]


def compose_scenarios(sock, top):
    """Compose's steps against one engine, then what its project left (containers, networks, volumes)."""
    sys.path.insert(0, str(REPO))
    from tests.integration.test_compose import project_file

    work = top / f"compose-{sock.stem}"
    work.mkdir()
    results = {}
    for title, args, extra in COMPOSE_STEPS:
        extra = dict(extra)
        greeting = "two" if extra.pop("GREETING_CHANGE", None) else "one"
        (work / "docker-compose.yml").write_text(json.dumps(project_file(greeting=greeting)))
        env = {**ENV, "HOME": str(work), "DOCKER_HOST": f"unix://{sock}", "COMPOSE_PROJECT_NAME": COMPOSE_PROJECT,
               **extra}
        r = subprocess.run(["docker-compose", "--ansi", "never", *args], cwd=work, env=env, capture_output=True,
                           text=True, timeout=180, stdin=subprocess.DEVNULL)
        # Compose's progress lines come in the order its threads finish: sorted.
        err = "\n".join(sorted(normalise_compose(r.stderr).splitlines()))
        out = normalise_compose(r.stdout)
        results[title] = (f"exit {r.returncode}\n" + (f"stdout: {out}\n" if out else "")
                          + (f"stderr: {err}" if err else ""))
    label = f"label=com.docker.compose.project={COMPOSE_PROJECT}"
    left = [docker(sock, "ps", "-a", "-q", "--filter", label).stdout.split(),
            docker(sock, "network", "ls", "-q", "--filter", label).stdout.split(),
            docker(sock, "volume", "ls", "-q", "--filter", label).stdout.split()]
    results["compose: left after down -v (containers, networks, volumes)"] = " / ".join(str(len(x)) for x in left)
    return results


def normalise_compose(text):
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)
    text = re.sub(r"\b[0-9a-f]{12}_", "<id>_", text)
    text = re.sub(r"(Date|Last-Modified|ETag): .*", r"\1: <…>", text)
    text = re.sub(r" +", " ", text)  # `compose ps` pads its columns to the longest value
    return text.strip()


def testcontainers_scenarios(sock):
    """testcontainers-python's waits on the host (docker_host mode) and inside a container with the socket."""
    script = REPO / "tests" / "integration" / "testcontainers_waits.py"
    env = {**ENV, "HOME": "/tmp", "DOCKER_HOST": f"unix://{sock}", "TESTCONTAINERS_RYUK_DISABLED": "true",
           "TESTCONTAINERS_CONNECTION_MODE": "docker_host"}
    runs = {"testcontainers: waits from the host": [sys.executable, str(script), IMAGE]}
    venv = sys.prefix
    mounts = [f"{sock}:/var/run/docker.sock", "/usr:/usr:ro", "/lib:/lib:ro", "/lib64:/lib64:ro",
              f"{venv}:{venv}:ro", f"{script.parent}:/suite:ro"]
    runs["testcontainers: waits inside a container with the socket"] = [
        "docker", "-H", f"unix://{sock}", "run", "--rm", *[o for m in mounts for o in ("-v", m)],
        "-e", "TESTCONTAINERS_RYUK_DISABLED=true", IMAGE, f"{venv}/bin/python", "/suite/testcontainers_waits.py", IMAGE]
    results = {}
    for title, argv in runs.items():
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        try:
            seen = json.loads(r.stdout.splitlines()[-1])
            seen["http"]["port"] = "<port>"
            seen["http"]["host"] = re.sub(r"^172\.\d+\.0\.1$", "<gateway>", seen["http"]["host"])
            out = json.dumps(seen, sort_keys=True)
        except (ValueError, IndexError, KeyError, TypeError):
            out = (r.stdout + r.stderr).strip().splitlines()[-1:] or [""]
            out = out[0]
        results[title] = f"exit {r.returncode}\n{out}"
    return results


def run_engine(sock, api_max):
    results = {}
    for title, argv in SCENARIOS:
        r = docker(sock, *argv)
        out = normalise(r.stdout, api_max)
        err = normalise(r.stderr.split("\n\nRun 'docker")[0], api_max)
        results[title] = f"exit {r.returncode}\n" + (f"stdout: {out}\n" if out else "") + (f"stderr: {err}" if err else "")
    for title, method, path, headers in REQUESTS:
        results["API " + title] = normalise(request(sock, method, path, headers), api_max)
    docker(sock, "rm", "-f", "cmp-exit", "cmp-up", "cmp-v6c")
    docker(sock, "network", "rm", "cmp-v6", "cmp-v6b")
    docker(sock, "volume", "rm", "-f", "cmp-vol")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "issue8" / "compat.md"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (dockerd)")
    client = subprocess.run(["docker", "version", "--format", "{{.Client.Version}}"], capture_output=True,
                            text=True, env={**ENV, "DOCKER_HOST": "unix:///nonexistent"}).stdout.strip()
    top = Path(tempfile.mkdtemp(prefix="docker-compat-"))
    tar = top / "busybox.tar"
    subprocess.run([str(REPO / "images" / "busybox" / "build"), str(tar)], check=True, capture_output=True)
    dsock, msock = top / "dockerd.sock", top / "minictr.sock"
    dockerd = subprocess.Popen(["dockerd", "--data-root", str(top / "docker"), "--exec-root", str(top / "dexec"),
                                "-H", f"unix://{dsock}", "--pidfile", str(top / "dockerd.pid")],
                               stdout=open(top / "dockerd.log", "wb"), stderr=subprocess.STDOUT)
    minictr = subprocess.Popen([sys.executable, "-m", "minictr", "-H", f"unix://{msock}", "daemon",
                                "--data-root", str(top / "minictr")],
                               stdout=open(top / "minictr.log", "wb"), stderr=subprocess.STDOUT,
                               env={**os.environ, "MINICTR_DEFAULT_BRIDGE": "mctcmp0"})
    try:
        wait_socket(dsock, dockerd, "dockerd")
        wait_socket(msock, minictr, "minictr")
        engines = {}
        for name, sock in (("docker", dsock), ("minictr", msock)):
            r = docker(sock, "import", "--change", 'CMD ["sh"]', str(tar), IMAGE)
            if r.returncode:
                raise SystemExit(f"import into {name}: {r.stderr}")
            version = docker(sock, "version", "--format", "{{.Server.Version}} API {{.Server.APIVersion}}")
            api_max = version.stdout.split()[-1]
            results = run_engine(sock, api_max)
            results.update(compose_scenarios(sock, top))
            results.update(testcontainers_scenarios(sock))
            engines[name] = (version.stdout.strip(), results)
    finally:
        for proc in (minictr, dockerd):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        subprocess.run(["ip", "link", "del", "mctcmp0"], capture_output=True)
        subprocess.run(["nft", "delete", "table", "inet", "minictr-mctcmp0"], capture_output=True)
    (dv, dres), (mv, mres) = engines["docker"], engines["minictr"]
    same = [t for t in dres if dres[t] == mres[t]]
    lines = ["# Docker compatibility: the same scenarios against Docker's engine and minictr", "",
             f"`bench/docker_compat.py`, {time.strftime('%Y-%m-%d')}; docker CLI "
             f"{client}; "
             f"Docker engine {dv}; minictr {mv}. Ids, times and the API version numbers are normalised.", "",
             f"**{len(same)} of {len(dres)} scenarios give the same output.**", "",
             "## Differences", ""]
    for title in dres:
        if dres[title] != mres[title]:
            lines += [f"### {title}", "", "Docker:", "```", dres[title], "```", "minictr:", "```", mres[title], "```", ""]
    lines += ["## Same on both", ""]
    for title in same:
        lines += [f"- **{title}**: `{dres[title].replace(chr(10), ' / ')}`"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
