"""`--link NAME[:ALIAS]` as Docker parses it, and the legacy variables a link gives (the values of
moby's daemon/links tests)."""

import pytest

from minictr.errors import InvalidArgument
from minictr.spec.links import check_links, env_prefix, link_environment, parse_link


@pytest.mark.parametrize("text,expected", [
    ("db", ("db", "db")),
    ("db:database", ("db", "database")),
    ("/db:/app/database", ("db", "database")),  # the form inspect shows, sent back by a client
])
def test_a_link_names_its_target_and_alias(text, expected):
    assert parse_link(text) == expected


@pytest.mark.parametrize("text,message", [
    ("", "empty string specified for links"),
    ("a:b:c", "bad format for links: a:b:c"),
    (":alias", "bad format for links: :alias"),
])
def test_a_bad_link_is_refused_in_dockers_words(text, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_link(text)


def test_links_of_a_body_must_be_a_list():
    assert check_links(None) == []
    with pytest.raises(InvalidArgument, match="invalid HostConfig.Links"):
        check_links("db:database")


def test_the_prefix_is_the_alias_upper_cased_with_dashes_as_underscores():
    assert env_prefix("/app/my-db") == "MY_DB"
    assert env_prefix("db.v2") == "DB.V2"  # Docker changes '-' only


def test_one_port_gives_the_variables_docker_gives():
    env = link_environment("/app/db", "172.17.0.2", ["PASSWORD=gordon", "PATH=/bin", "HOME=/root", "E1="],
                           {"6379/tcp": {}})
    assert env == [
        "DB_PORT=tcp://172.17.0.2:6379",
        "DB_PORT_6379_TCP=tcp://172.17.0.2:6379", "DB_PORT_6379_TCP_ADDR=172.17.0.2",
        "DB_PORT_6379_TCP_PORT=6379", "DB_PORT_6379_TCP_PROTO=tcp",
        "DB_NAME=/app/db",
        "DB_ENV_PASSWORD=gordon", "DB_ENV_E1=",
    ]


def test_the_main_port_is_the_lowest_of_any_protocol_as_docker_20_10_gives_it():
    # What Docker 20.10 printed for `--expose 6379 --expose 6380 --expose 53/udp` (env | sort).
    env = link_environment("/app/db", "172.29.0.2", ["PASSWORD=gordon"], {"6379/tcp": {}, "6380/tcp": {}, "53/udp": {}})
    assert sorted(env) == [
        "DB_ENV_PASSWORD=gordon", "DB_NAME=/app/db", "DB_PORT=udp://172.29.0.2:53",
        "DB_PORT_53_UDP=udp://172.29.0.2:53", "DB_PORT_53_UDP_ADDR=172.29.0.2", "DB_PORT_53_UDP_PORT=53",
        "DB_PORT_53_UDP_PROTO=udp",
        "DB_PORT_6379_TCP=tcp://172.29.0.2:6379", "DB_PORT_6379_TCP_ADDR=172.29.0.2", "DB_PORT_6379_TCP_PORT=6379",
        "DB_PORT_6379_TCP_PROTO=tcp",
        "DB_PORT_6380_TCP=tcp://172.29.0.2:6380", "DB_PORT_6380_TCP_ADDR=172.29.0.2", "DB_PORT_6380_TCP_PORT=6380",
        "DB_PORT_6380_TCP_PROTO=tcp",
    ]


def test_a_run_of_three_ports_has_a_start_and_an_end():
    env = dict(e.split("=", 1) for e in link_environment(
        "/app/docker", "172.0.17.2", None, {"6381/tcp": {}, "6379/tcp": {}, "6380/tcp": {}, "80/tcp": {}}))
    assert env["DOCKER_PORT"] == "tcp://172.0.17.2:80"
    assert env["DOCKER_PORT_6379_TCP_START"] == "tcp://172.0.17.2:6379"
    assert env["DOCKER_PORT_6379_TCP_END"] == "tcp://172.0.17.2:6381"
    assert env["DOCKER_PORT_6379_TCP_PORT_START"] == "6379"
    assert env["DOCKER_PORT_6379_TCP_PORT_END"] == "6381"
    assert env["DOCKER_PORT_6380_TCP_ADDR"] == "172.0.17.2"
    assert "DOCKER_PORT_80_TCP_START" not in env


def test_no_exposed_port_gives_no_port_variable():
    assert link_environment("/app/db", "172.17.0.2", [], None) == ["DB_NAME=/app/db"]
