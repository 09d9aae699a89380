"""Image references parse, normalize and display as Docker's do."""

import pytest

from minictr.errors import InvalidArgument
from minictr.spec.reference import is_full_id, parse

HEX = "a" * 64


@pytest.mark.parametrize("text, full, familiar", [
    ("alpine", "docker.io/library/alpine:latest", "alpine:latest"),
    ("alpine:3.19", "docker.io/library/alpine:3.19", "alpine:3.19"),
    ("library/alpine", "docker.io/library/alpine:latest", "alpine:latest"),
    ("docker.io/library/alpine", "docker.io/library/alpine:latest", "alpine:latest"),
    ("index.docker.io/library/alpine", "docker.io/library/alpine:latest", "alpine:latest"),
    ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
    ("busybox-local", "docker.io/library/busybox-local:latest", "busybox-local:latest"),
    ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
    ("localhost:5000/x:1", "localhost:5000/x:1", "localhost:5000/x:1"),
    ("host:5000/ns/name:tag", "host:5000/ns/name:tag", "host:5000/ns/name:tag"),
    ("quay.io/a/b/c", "quay.io/a/b/c:latest", "quay.io/a/b/c:latest"),
    ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
    ("a__b.c-d---e", "docker.io/library/a__b.c-d---e:latest", "a__b.c-d---e:latest"),
    (f"name@sha256:{HEX}", f"docker.io/library/name@sha256:{HEX}", f"name@sha256:{HEX}"),
    (f"name:1@sha256:{HEX}", f"docker.io/library/name:1@sha256:{HEX}", f"name:1@sha256:{HEX}"),
    ("docker.io/alpine", "docker.io/library/alpine:latest", "alpine:latest"),
    ("localhost", "docker.io/library/localhost:latest", "localhost:latest"),
    ("127.0.0.1:5000/ns/x", "127.0.0.1:5000/ns/x:latest", "127.0.0.1:5000/ns/x:latest"),
    (f"127.0.0.1:5000/x@sha256:{HEX}", f"127.0.0.1:5000/x@sha256:{HEX}", f"127.0.0.1:5000/x@sha256:{HEX}"),
])
def test_references_normalize_as_docker_does(text, full, familiar):
    ref = parse(text)
    assert ref.full() == full
    assert ref.familiar() == familiar


def test_a_digest_reference_gets_no_default_tag():
    ref = parse(f"busybox@sha256:{HEX}")
    assert ref.tag is None
    assert ref.digest == f"sha256:{HEX}"


def test_default_tag_can_be_left_out():
    assert parse("alpine", default_tag=False).full() == "docker.io/library/alpine"


def test_parts_of_a_reference():
    ref = parse("localhost:5000/ns/x:2")
    assert (ref.domain, ref.path, ref.tag, ref.name) == ("localhost:5000", "ns/x", "2", "localhost:5000/ns/x")
    assert parse("ns/x").familiar_name == "ns/x"


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("Alpine", "must be lowercase"),
    ("docker.io/User/app", "must be lowercase"),
    (HEX, "64-byte hexadecimal"),
    ("alpine:", "invalid tag"),
    ("alpine:-bad", "invalid tag"),
    ("alpine:" + "t" * 129, "invalid tag"),
    ("alpine@sha256:abc", "invalid digest"),
    ("alpine@sha256:" + "A" * 64, "64 lowercase hex"),
    ("a/-b", "invalid repository name"),
    ("a//b", "invalid repository name"),
    ("a b", "invalid"),
    ("x" * 256, "255 characters"),
    ("-host.io/x", "invalid registry"),
    ("UPPER/Case", "must be lowercase"),
    ("UPPER/case", "must be lowercase"),  # not a registry host to look up (issue 17), as in Docker 20.10
    ("Ns/app:1", "must be lowercase"),
    ("host:port/x", "invalid registry"),
    ("name!", "invalid"),
    ("x@", "invalid digest"),
])
def test_bad_references_are_refused_with_the_reason(text, reason):
    with pytest.raises(InvalidArgument, match=reason):
        parse(text)


def test_full_ids_are_recognised():
    assert is_full_id(f"sha256:{HEX}")
    assert not is_full_id(HEX)
    assert not is_full_id("sha256:abc")
