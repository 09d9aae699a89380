"""docs/compat.md stays true: every endpoint row marked yes/partial has a route, every row marked no
answers 501 naming it; every flag marked no is refused by create naming it, every flag marked
yes/partial is an option of `minictr run` or handled by the docker CLI itself."""

import re
from pathlib import Path

import pytest

from minictr.api import router
from minictr.api import containers, exec, images, networks, swarm, system, volumes  # noqa: F401 (register routes)
from minictr.cli.run_options import RUN_OPTIONS
from minictr.containers import unsupported
from minictr.errors import InvalidArgument

import minictr

# The repository's docs: beside tests/, or (a copied suite) beside the package minictr runs from.
DOC = next((p for p in (Path(__file__).resolve().parents[2] / "docs" / "compat.md",
                        Path(minictr.__file__).resolve().parents[1] / "docs" / "compat.md") if p.exists()),
           Path("docs/compat.md"))
METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD")


def _rows():
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) >= 3 and cells[0] not in ("method", "flag") and not cells[0].startswith("---"):
            rows.append(cells)
    return rows


ENDPOINTS = [r for r in _rows() if r[0] in METHODS]
FLAGS = [r for r in _rows() if r[0].startswith("--")]


def _concrete(path):
    return re.sub(r"\{\w+\}", "x1", path)


def test_the_table_is_complete():
    assert len(ENDPOINTS) >= 100
    assert {r[2] for r in ENDPOINTS} <= {"yes", "partial", "no"}
    assert {r[1] for r in FLAGS} <= {"yes", "partial", "no"}
    sections = {r[1].split("/")[1] for r in ENDPOINTS}
    assert sections >= {"containers", "exec", "images", "networks", "volumes", "swarm", "plugins", "build",
                        "secrets", "configs", "services", "nodes", "tasks", "distribution", "session"}
    assert len({(r[0], r[1]) for r in ENDPOINTS}) == len(ENDPOINTS)  # no duplicate rows


@pytest.mark.parametrize("method,path,status", [r[:3] for r in ENDPOINTS], ids=lambda v: str(v))
def test_endpoint_row_matches_the_router(method, path, status):
    handler, why = router.match(method, _concrete(path))
    if status == "no":
        assert handler is None and why == 501, (method, path)
        assert router.unsupported(_concrete(path), method)
    else:
        assert handler is not None, (method, path, why)
        assert router.match(method, "/v1.43" + _concrete(path))[0] is handler


def test_every_route_of_the_server_has_a_row():
    documented = [(m, re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", p) + "$")) for m, p, s, *_ in ENDPOINTS
                  if s != "no"]
    for method, regex, _handler in router._ROUTES:
        example = re.sub(r"\(\?P<\w+>[^)]*\)", "x1", regex.pattern.strip("^$"))
        assert any(m == method and r.match(example) for m, r in documented), (method, example)


def _run_option_names():
    import click

    @click.command()
    def probe(**kwargs):
        pass

    for option in RUN_OPTIONS:
        probe = option(probe)
    return {opt for param in probe.params for opt in getattr(param, "opts", [])}


def _refused_flags():
    fields = {**unsupported.HOST_CONFIG, **unsupported.CONFIG}
    return ({flag for flag, _unset in fields.values()} | set(unsupported.ENDPOINT.values())
            | set(unsupported.ENDPOINT_IPAM.values()))


@pytest.mark.parametrize("flag,status,field", [r[:3] for r in FLAGS], ids=lambda v: str(v))
def test_flag_row_is_true(flag, status, field):
    if status == "no":
        assert flag in _refused_flags(), f"{flag} is marked no but create does not refuse it"
        assert flag not in _run_option_names(), f"{flag} is marked no but `minictr run` offers it"
    elif status == "yes":
        # Supported: the daemon does not refuse it (it may be API-only, as --dns-option).
        assert flag not in _refused_flags(), f"{flag} is marked yes but create refuses it"
    else:
        # Partial: some values refused (create's table lists which are accepted), or the CLI's own.
        assert flag in _refused_flags() or flag in _run_option_names() or field == "client", flag


def _body_setting(field, value):
    body = {"Image": "x", "HostConfig": {}}
    if field.startswith("HostConfig."):
        body["HostConfig"][field.split(".", 1)[1]] = value
    elif field.startswith("EndpointsConfig."):
        key = field.rsplit(".", 1)[-1]
        endpoint = {"IPAMConfig": {key: value}} if "IPAMConfig" in field else {key: value}
        body["NetworkingConfig"] = {"EndpointsConfig": {"net": endpoint}}
    else:
        body[field] = value
    return body


_SAMPLES = {list: ["a"], dict: {"a": "b"}, str: "other", int: 7, bool: True}


@pytest.mark.parametrize("flag,field", [(r[0], r[2]) for r in FLAGS if r[1] == "no"], ids=lambda v: str(v))
def test_a_no_flag_is_refused_by_create_naming_it(flag, field):
    key = field.rsplit(".", 1)[-1]
    unset = ({**unsupported.HOST_CONFIG, **unsupported.CONFIG}.get(key) or ("", ()))[1]
    typed = next((v for v in unset if v is not None), "")
    value = {"Healthcheck": {"Test": ["CMD", "true"]}, "LinkLocalIPs": ["169.254.1.1"]}.get(key, _SAMPLES[type(typed)])
    with pytest.raises(InvalidArgument, match=re.escape(f"minictr does not support {flag}")):
        unsupported.check(_body_setting(field, value))


def test_defaults_the_docker_cli_and_docker_py_send_are_accepted():
    unsupported.check({"Image": "x", "HostConfig": {
        "Devices": [], "IpcMode": "", "PidMode": "", "UTSMode": "", "UsernsMode": "", "CgroupParent": "",
        "OomKillDisable": False, "OomScoreAdj": 0, "MemorySwappiness": None, "Runtime": "", "Isolation": "",
        "CgroupnsMode": "", "GroupAdd": None, "Links": None, "BlkioWeight": 0, "DeviceRequests": None,
        "Sysctls": None, "CpuCount": 0, "Annotations": None},
        "Healthcheck": {"Test": ["NONE"]}, "Domainname": "", "MacAddress": "",
        "NetworkingConfig": {"EndpointsConfig": {"bridge": {"IPAMConfig": None, "Links": None, "MacAddress": ""}}}})
