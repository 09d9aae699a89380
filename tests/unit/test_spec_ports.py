"""spec/ports.py: `-p` and `--expose` parsed as Docker does, and the PortBindings a start publishes."""

import pytest

from minictr.errors import InvalidArgument
from minictr.spec import ports as spec_ports


@pytest.mark.parametrize("spec, expected", [
    ("80", [("80/tcp", {"HostIp": "", "HostPort": ""})]),
    ("8080:80", [("80/tcp", {"HostIp": "", "HostPort": "8080"})]),
    ("0:80", [("80/tcp", {"HostIp": "", "HostPort": "0"})]),
    ("127.0.0.1:8080:80/udp", [("80/udp", {"HostIp": "127.0.0.1", "HostPort": "8080"})]),
    ("127.0.0.1::80", [("80/tcp", {"HostIp": "127.0.0.1", "HostPort": ""})]),
    ("[::1]:8080:80", [("80/tcp", {"HostIp": "::1", "HostPort": "8080"})]),
    ("8080-8081:80-81", [("80/tcp", {"HostIp": "", "HostPort": "8080"}),
                         ("81/tcp", {"HostIp": "", "HostPort": "8081"})]),
])
def test_publish_specs_parse_as_docker_does(spec, expected):
    assert spec_ports.parse_publish(spec) == expected


@pytest.mark.parametrize("spec", ["80:0", "80:70000", "x:80", "80/sctp", "1.2.3:80:80", "a:b:c:d", "80-79",
                                  "8080-8082:80-81", "8080:"])
def test_bad_publish_specs_are_refused(spec):
    with pytest.raises(InvalidArgument):
        spec_ports.parse_publish(spec)


def test_publish_options_expose_what_they_publish():
    exposed, bindings = spec_ports.publish_options(("8080:80", "53/udp"), ("9000-9001",))
    assert exposed == {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}, "9001/tcp": {}}
    assert bindings == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": [{"HostIp": "", "HostPort": ""}]}


def test_publish_all_adds_every_exposed_port_on_a_free_port():
    host_config = {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}, "PublishAllPorts": True}
    wanted = spec_ports.wanted_bindings(host_config, {"80/tcp": {}, "53/udp": {}})
    assert sorted(wanted) == [(53, "udp", "", 0), (80, "tcp", "", 8080)]  # "": every address
    assert spec_ports.wanted_bindings({"PortBindings": None}, {"80/tcp": {}}) == []


def test_run_options_become_port_bindings_and_exposed_ports():
    import click

    from minictr.cli.bodies import create_body
    from minictr.cli.run_options import with_run_options

    command = click.command()(with_run_options(lambda **options: options))
    ctx = command.make_context("run", ["-p", "127.0.0.1:8080:80", "-P", "--expose", "53/udp", "busybox"])
    body = create_body(ctx.params)
    assert body["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    assert body["HostConfig"]["PublishAllPorts"] is True
    assert body["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
