"""`ps` with every flag and filter against real containers, `inspect --format`, and the docker
CLI printing the same as ours for the same templates (root and rootless)."""

import json
import os
import shutil
import subprocess

import pytest

from tests.integration.dockercli import older_than


@pytest.fixture
def trio(daemon, image):
    """Three containers, oldest first: created `ps-new`, exited `ps-done` (3), running `ps-web`."""
    names = ["ps-new", "ps-done", "ps-web"]
    daemon.ok("create", "--name", "ps-new", "--label", "tier=db", image, "true")
    daemon.ok("run", "-d", "--name", "ps-done", "--label", "tier=web", image, "sh", "-c", "exit 3")
    daemon.ok("wait", "ps-done")
    daemon.ok("run", "-d", "--name", "ps-web", "--label", "tier=web", "--label", "env=prod", image, "sleep", "300")
    yield names
    daemon.cli("rm", "-f", *names)


def ps(daemon, *args):
    return daemon.ok("ps", *args).splitlines()


def test_ps_shows_running_containers_in_dockers_columns(daemon, trio):
    lines = ps(daemon)
    assert lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert len(lines) == 2 and lines[1].endswith("ps-web") and '"sleep 300"' in lines[1] and "Up " in lines[1]


def test_all_quiet_and_no_trunc(daemon, trio):
    short = ps(daemon, "-a", "-q")
    full = ps(daemon, "-a", "-q", "--no-trunc")
    assert len(short) == 3 and all(len(i) == 12 for i in short)
    assert [f[:12] for f in full] == short and all(len(f) == 64 for f in full)
    assert ps(daemon, "-a", "--format", "{{.Names}}") == ["ps-web", "ps-done", "ps-new"]  # newest first


def test_last_n_and_latest_include_every_state(daemon, trio):
    assert ps(daemon, "-n", "2", "--format", "{{.Names}}") == ["ps-web", "ps-done"]
    assert ps(daemon, "-l", "--format", "{{.Names}} {{.State}}") == ["ps-web running"]


def test_size_shows_the_writable_layer_and_the_image(daemon, trio, image):
    daemon.ok("exec", "ps-web", "sh", "-c", "head -c 5000 /dev/zero > /big") if _has_exec(daemon) else None
    lines = ps(daemon, "-s", "--filter", "name=ps-web")
    assert lines[0].split()[-1] == "SIZE"
    assert "(virtual " in lines[1]
    summary = daemon.client().get("/containers/json", {"size": 1, "filters": '{"name":["ps-web"]}'})[0]
    assert summary["SizeRootFs"] > summary["SizeRw"] >= 0
    if _has_exec(daemon):
        assert summary["SizeRw"] >= 5000


def _has_exec(daemon):
    return daemon.cli("exec", "--help").returncode == 0


@pytest.mark.parametrize("flt, expected", [
    (["status=exited"], ["ps-done"]),
    (["status=created"], ["ps-new"]),
    (["status=running", "status=created"], ["ps-web", "ps-new"]),
    (["name=ps-d"], ["ps-done"]),
    (["name=^ps-(new|web)$"], ["ps-web", "ps-new"]),
    (["label=tier=web"], ["ps-web", "ps-done"]),
    (["label=tier=web", "label=env"], ["ps-web"]),
    (["label=tier"], ["ps-web", "ps-done", "ps-new"]),
    (["exited=3"], ["ps-done"]),
    (["exited=0"], []),
    (["before=ps-done"], ["ps-new"]),
    (["since=ps-new"], ["ps-web", "ps-done"]),
    (["ancestor=busybox-local"], ["ps-web", "ps-done", "ps-new"]),
    (["ancestor=busybox-local:latest", "status=running"], ["ps-web"]),
    (["ancestor=no-such-image"], []),
])
def test_filters_select_as_docker_does(daemon, trio, flt, expected):
    args = ["-a", "--format", "{{.Names}}"]
    for f in flt:
        args += ["--filter", f]
    assert ps(daemon, *args) == expected


def test_id_filter_and_ancestor_by_image_id(daemon, trio):
    done = daemon.ok("inspect", "--format", "{{.Id}} {{.Image}}", "ps-done").split()
    assert ps(daemon, "-a", "--filter", f"id={done[0][:10]}", "--format", "{{.Names}}") == ["ps-done"]
    assert len(ps(daemon, "-a", "-q", "--filter", f"ancestor={done[1]}")) == 3


@pytest.mark.parametrize("flt, message", [
    ("color=red", "invalid filter 'color'"),
    ("status=sleeping", "invalid filter 'status=sleeping'"),
    ("since=ghost-container", "No such container: ghost-container"),
    ("nonsense", "bad format of filter"),
])
def test_bad_filters_are_one_line_errors(daemon, trio, flt, message):
    result = daemon.cli("ps", "--filter", flt)
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_invalid_filter_is_a_400_from_the_api(daemon):
    from minictr.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="invalid filter 'x'"):
        daemon.client().get("/containers/json", {"filters": '{"x":["1"]}'})
    # the older map form is accepted too
    assert daemon.client().get("/containers/json", {"filters": '{"status":{"running":true}}'}) == []


def test_format_table_json_and_labels(daemon, trio):
    lines = ps(daemon, "--format", 'table {{.Names}}\\t{{.Label "env"}}\\t{{.Labels}}')
    assert lines[0].split() == ["NAMES", "env", "LABELS"]
    assert lines[1].split() == ["ps-web", "prod", "env=prod,tier=web"]
    rows = [json.loads(line) for line in ps(daemon, "-a", "--format", "json")]
    assert [r["Names"] for r in rows] == ["ps-web", "ps-done", "ps-new"]
    assert rows[1]["State"] == "exited" and rows[1]["Status"].startswith("Exited (3)")
    assert rows[0]["Command"] == '"sleep 300"'


def test_bad_format_is_a_one_line_error(daemon, trio):
    for template in ("{{.Nope}}", "{{.Names"):
        result = daemon.cli("ps", "--format", template)
        assert result.returncode != 0 and "template" in result.stderr and "Traceback" not in result.stderr


def test_inspect_format_on_the_raw_document(daemon, trio):
    out = daemon.ok("inspect", "--format",
                    '{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{index .Config.Labels "tier"}} '
                    '{{if .State.Running}}up{{else}}down{{end}} {{.HostConfig.RestartPolicy.Name}} '
                    '{{.HostConfig.LogConfig.Type}} {{json .Config.Cmd}}', "ps-done", "ps-web")
    assert out.splitlines() == ['/ps-done exited 3 web down no json-file ["sh","-c","exit 3"]',
                                '/ps-web running 0 web up no json-file ["sleep","300"]']
    env = daemon.ok("inspect", "--format", "{{range .Config.Env}}{{.}} {{end}}|{{join .Args \",\"}}", "ps-done")
    assert "PATH=" in env and env.strip().endswith("|-c,exit 3")


def test_inspect_has_dockers_fields_and_sizes(daemon, trio):
    doc = daemon.client().get("/containers/ps-web/json", {"size": 1})
    state = doc["State"]
    for key in ("Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid", "ExitCode", "Error",
                "StartedAt", "FinishedAt"):
        assert key in state
    assert state["Running"] is True and state["Pid"] > 0
    assert doc["RestartCount"] == 0 and doc["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert doc["HostConfig"]["RestartPolicy"]["Name"] == "no"
    assert doc["SizeRootFs"] >= doc["SizeRw"] >= 0
    assert "SizeRw" not in daemon.client().get("/containers/ps-web/json")


def test_inspect_format_error_is_one_line(daemon, trio):
    result = daemon.cli("inspect", "--format", "{{.NoSuchField}}", "ps-web")
    assert result.returncode != 0 and 'map has no entry for key "NoSuchField"' in result.stderr
    assert "Traceback" not in result.stderr


DOCKER = shutil.which("docker")


def _docker(daemon, *args):
    env = dict(os.environ, DOCKER_HOST=daemon.host, HOME=str(daemon.top), DOCKER_CONFIG=str(daemon.top / "docker"))
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.skipif(DOCKER is None, reason="no docker CLI on the PATH")
@pytest.mark.parametrize("args", [
    ["ps", "-a", "--format", "{{.ID}} {{.Names}} {{.Image}} {{.Command}} {{.State}} {{.Labels}} {{.Ports}}"],
    ["ps", "-a", "--no-trunc", "--format", "table {{.ID}}\\t{{.Command}}\\t{{.Label \"tier\"}}\\t{{.Networks}}"],
    ["ps", "-a", "-q"],
    ["ps", "-a", "--filter", "label=tier=web", "--filter", "status=exited", "--format", "{{.Names}}"],
    ["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}} {{.CreatedAt}}"],
    ["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{json .Config.Env}} {{.Config.Labels}}", "ps-done", "ps-web"],
    ["inspect", "--format", "{{index .Config.Labels \"tier\"}} {{.HostConfig.RestartPolicy}} {{.Config.Entrypoint}} {{lower .Name}}", "ps-web"],
    ["inspect", "--format", "{{json .}}", "ps-new"],
])
def test_docker_cli_prints_the_same(daemon, trio, args):
    theirs = _docker(daemon, *args)
    assert theirs.returncode == 0, theirs.stderr
    ours = daemon.ok(*args)
    if args[-2:] == ["{{json .}}", "ps-new"] and older_than(23):
        # The CLI 20.10 decodes the answer into its own types and encodes them again: it drops the
        # fields newer than its API (1.41) and adds a zero value for each field it knows that the
        # daemon did not send (KernelMemory, gone from the API since). The rest is ours unchanged.
        assert _without_zero_values_missing_from(json.loads(theirs.stdout), json.loads(ours)) == \
            _known_to(json.loads(ours), json.loads(theirs.stdout))
        return
    if "{{.Labels}}" in args[-1] and older_than(23):
        # The CLI 20.10 joins a container's labels in Go's map order, a new one each run; later ones sort them.
        assert _labels_sorted(ours) == _labels_sorted(theirs.stdout)
        return
    assert ours == theirs.stdout


def _labels_sorted(text):
    """`text` with each comma-joined list of labels (`tier=web,env=prod`) in sorted order."""
    return [[",".join(sorted(word.split(","))) if "=" in word else word for word in line.split(" ")]
            for line in text.splitlines()]


def _known_to(document, reference):
    """`document` without the keys `reference` lacks, at every depth."""
    if isinstance(document, dict) and isinstance(reference, dict):
        return {k: _known_to(v, reference[k]) for k, v in document.items() if k in reference}
    return document


def _without_zero_values_missing_from(document, reference):
    """`document` without the keys `reference` lacks whose values are zero values (0, "", null, [], {})."""
    if isinstance(document, dict) and isinstance(reference, dict):
        return {k: _without_zero_values_missing_from(v, reference.get(k)) for k, v in document.items()
                if k in reference or v not in (0, "", None, [], {}, False)}
    return document


# Docker's list (its container view) has these keys per network, and no aliases, links or DNS names.
LIST_ENDPOINT_KEYS = {"IPAMConfig", "Links", "Aliases", "NetworkID", "EndpointID", "Gateway", "IPAddress",
                      "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "MacAddress",
                      "DriverOpts"}


@pytest.fixture
def netted(daemon, image):
    """`ps-netted` running on network ps-net with a published and an exposed port; `ps-ended`, exited,
    on the default bridge with an exposed port."""
    daemon.ok("network", "create", "ps-net")
    daemon.ok("run", "-d", "--name", "ps-netted", "--network", "ps-net", "--expose", "80", "-p", "127.0.0.1::81",
              image, "sleep", "300")
    daemon.ok("run", "--name", "ps-ended", "--expose", "80", image, "true")
    yield
    daemon.cli("rm", "-f", "ps-netted", "ps-ended")
    daemon.cli("network", "rm", "ps-net")


def _listed(daemon, name):
    [summary] = daemon.client().get("/containers/json", {"all": 1, "filters": json.dumps({"name": [f"^{name}$"]})})
    return summary


def test_the_list_has_each_containers_networks_as_inspect_has_them(daemon, netted):
    # Testcontainers reads the gateway of its container from this list; `ps --format {{.Networks}}` its names.
    running = _listed(daemon, "ps-netted")["NetworkSettings"]["Networks"]
    inspected = json.loads(daemon.ok("inspect", "ps-netted"))[0]["NetworkSettings"]["Networks"]
    assert set(running) == {"ps-net"} and set(running["ps-net"]) == LIST_ENDPOINT_KEYS
    for key in ("NetworkID", "EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "MacAddress"):
        assert running["ps-net"][key] == inspected["ps-net"][key], key
    assert running["ps-net"]["IPAddress"] and running["ps-net"]["Gateway"] and running["ps-net"]["Aliases"] is None
    # A stopped container keeps its network, without an address (Docker clears them at the exit).
    ended = _listed(daemon, "ps-ended")["NetworkSettings"]["Networks"]
    assert set(ended) == {"bridge"} and ended["bridge"]["NetworkID"] == daemon.client().get("/networks/bridge")["Id"]
    assert ended["bridge"]["IPAddress"] == "" and ended["bridge"]["EndpointID"] == ""
    daemon.ok("network", "connect", "bridge", "ps-netted")
    assert daemon.ok("ps", "--filter", "name=ps-netted", "--format", "{{.Networks}}").strip() == "bridge,ps-net"
    bridge = _listed(daemon, "ps-netted")["NetworkSettings"]["Networks"]["bridge"]
    assert bridge["Gateway"] == json.loads(daemon.ok("network", "inspect", "bridge"))[0]["IPAM"]["Config"][0]["Gateway"]


def test_the_list_shows_ports_of_running_containers_only(daemon, netted):
    # Docker drops a container's ports with its network at the exit: `compose ps` shows none for it.
    ports = _listed(daemon, "ps-netted")["Ports"]
    assert {(p["PrivatePort"], p["Type"], "PublicPort" in p) for p in ports} == {(80, "tcp", False), (81, "tcp", True)}
    assert _listed(daemon, "ps-ended")["Ports"] == []
    # Inspect too (compose ps reads it there): an empty map, as Docker's daemon/inspect.go makes it.
    assert json.loads(daemon.ok("inspect", "ps-ended"))[0]["NetworkSettings"]["Ports"] == {}
    assert set(json.loads(daemon.ok("inspect", "ps-netted"))[0]["NetworkSettings"]["Ports"]) == {"80/tcp", "81/tcp"}
    assert daemon.ok("ps", "-a", "--filter", "name=ps-ended", "--format", "{{.Ports}}") == "\n"


@pytest.mark.skipif(DOCKER is None, reason="no docker CLI on the PATH")
def test_docker_ps_prints_the_networks_and_ports_we_print(daemon, netted):
    daemon.ok("network", "connect", "bridge", "ps-netted")
    args = ["ps", "-a", "--filter", "name=ps-", "--format", "{{.Names}} {{.Networks}} [{{.Ports}}]"]
    theirs = _docker(daemon, *args)
    assert theirs.returncode == 0, theirs.stderr
    # The docker CLI joins the names in Go's map order (a new one each run): compared as sets.
    shown = {line.split()[0]: (set(line.split()[1].split(",")), line.split(" ", 2)[2])
             for line in theirs.stdout.splitlines()}
    assert shown["ps-ended"] == ({"bridge"}, "[]")
    assert shown["ps-netted"][0] == {"bridge", "ps-net"} and "80/tcp" in shown["ps-netted"][1]
    assert "ps-ended bridge []" in daemon.ok(*args).splitlines()
