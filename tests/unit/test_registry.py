"""The registry client's pieces: the WWW-Authenticate parser, where plain HTTP may go, the token
flow (reused for its lifetime, renewed on 401), X-Registry-Auth, and platform selection."""

import base64
import hashlib
import json

import httpx
import pytest

from minictr.errors import InvalidArgument, NotFound
from minictr.images import registry as registry_module
from minictr.images.pull import Platform, human_size, parse_platform, progress_bar, select_manifest
from minictr.images.registry import (
    Credentials, RegistryClient, RegistryError, RegistrySettings, Unauthorized, allows_plain_http,
    decode_registry_auth, encode_registry_auth, parse_challenges,
)


# --- WWW-Authenticate --------------------------------------------------------------------


def test_docker_hubs_bearer_challenge():
    header = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
              'scope="repository:library/alpine:pull"')
    assert parse_challenges(header) == [("bearer", {
        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
        "scope": "repository:library/alpine:pull"})]


def test_several_challenges_spaces_unquoted_values_and_escapes():
    header = 'Basic realm="Registry Realm", Bearer realm="https://a/t", service=reg ,error="say \\"no\\""'
    assert parse_challenges(header) == [
        ("basic", {"realm": "Registry Realm"}),
        ("bearer", {"realm": "https://a/t", "service": "reg", "error": 'say "no"'}),
    ]


def test_a_scope_with_several_actions_and_a_case_insensitive_scheme():
    assert parse_challenges('BEARER Realm="r",scope="repository:a/b:pull,push"') == [
        ("bearer", {"realm": "r", "scope": "repository:a/b:pull,push"})]


@pytest.mark.parametrize("header", ["", "   ", "Bearer", "Basic"])
def test_challenges_without_parameters(header):
    assert [params for _, params in parse_challenges(header)] == ([{}] if header.strip() else [])


# --- plain HTTP ---------------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["localhost", "localhost:5000", "127.0.0.1:5000", "127.8.9.10",
                                    "[::1]:5000", "registry.localhost:80"])
def test_loopback_registries_may_be_plain_http(domain):
    assert allows_plain_http(domain)


@pytest.mark.parametrize("domain", ["example.com", "example.com:5000", "10.0.0.1:5000", "192.0.2.1",
                                    "[2001:db8::1]:5000", "localhost.example.com", "127.0.0.1.example.com"])
def test_other_registries_need_https(domain):
    assert not allows_plain_http(domain)


def test_registries_marked_insecure_by_name_or_network():
    assert allows_plain_http("example.com:5000", {"example.com:5000"})
    assert allows_plain_http("example.com:5000", {"example.com"})
    assert not allows_plain_http("example.com:5001", {"example.com:5000"})
    assert allows_plain_http("10.1.2.3:5000", {"10.0.0.0/8"})
    assert not allows_plain_http("11.1.2.3:5000", {"10.0.0.0/8"})


# --- the token flow, against a fake registry ------------------------------------------------


class FakeRegistry:
    """A registry behind a token server, as httpx.MockTransport handlers."""

    def __init__(self, scheme="bearer", lifetime=300):
        self.scheme = scheme
        self.lifetime = lifetime
        self.token_requests = []
        self.token_queries = []  # every parameter, repeated ones included
        self.challenge_scope = None  # a `scope` for the 401's challenge
        self.valid_tokens = set()
        self.seen = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.host == "auth.example":
            return self._token(request)
        if request.url.host == "storage.localhost":
            return httpx.Response(200, content=b"blob bytes")
        authorization = request.headers.get("authorization", "")
        if self.scheme == "basic":
            if authorization != "Basic " + base64.b64encode(b"tester:secret").decode():
                return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        elif authorization.removeprefix("Bearer ") not in self.valid_tokens:
            scope = f',scope="{self.challenge_scope}"' if self.challenge_scope else ""
            return httpx.Response(401, headers={"WWW-Authenticate":
                                                f'Bearer realm="https://auth.example/token",service="reg"{scope}'})
        if request.url.path == "/v2/":
            return httpx.Response(200, json={})
        if "/manifests/" in request.url.path:
            return httpx.Response(200, content=MANIFEST,
                                  headers={"Content-Type": registry_module.OCI_MANIFEST})
        if "/blobs/" in request.url.path and request.url.path.endswith("storage"):
            return httpx.Response(307, headers={"Location": "http://storage.localhost:9000/signed?x=1"})
        if "/blobs/" in request.url.path and request.url.path.endswith("redirect"):
            return httpx.Response(307, headers={"Location": "http://192.0.2.1:5000/elsewhere"})
        return httpx.Response(404, json={"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]})

    def _token(self, request):
        self.token_requests.append(dict(request.url.params.multi_items()))
        self.token_queries.append(request.url.params.multi_items())
        token = f"token-{len(self.token_requests)}"
        self.valid_tokens.add(token)
        return httpx.Response(200, json={"token": token, "expires_in": self.lifetime})


MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": registry_module.OCI_MANIFEST,
                       "config": {}, "layers": []}).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def client_for(fake, credentials=None, settings=RegistrySettings()):
    return RegistryClient("registry.example", credentials, settings, transport=httpx.MockTransport(fake))


def test_an_anonymous_token_for_the_repository_scope_is_fetched_once_and_reused():
    fake = FakeRegistry()
    with client_for(fake) as client:
        for _ in range(3):
            data, media_type, digest = client.get_manifest("ns/app", "1")
    assert (data, media_type, digest) == (MANIFEST, registry_module.OCI_MANIFEST, MANIFEST_DIGEST)
    assert fake.token_requests == [{"service": "reg", "scope": "repository:ns/app:pull"}]
    assert all(r.url.scheme == "https" for r in fake.seen)


def test_a_token_is_renewed_when_the_registry_refuses_it():
    fake = FakeRegistry()
    with client_for(fake) as client:
        client.get_manifest("ns/app", "1")
        fake.valid_tokens.clear()  # the registry forgets it (expired early, key rotated)
        client.get_manifest("ns/app", "1")
    assert len(fake.token_requests) == 2


def test_a_token_is_renewed_after_its_lifetime(monkeypatch):
    fake = FakeRegistry(lifetime=60)
    now = [1000.0]
    monkeypatch.setattr(registry_module.time, "monotonic", lambda: now[0])
    with client_for(fake) as client:
        client.get_manifest("ns/app", "1")
        now[0] += 30
        client.get_manifest("ns/app", "1")
        assert len(fake.token_requests) == 1
        now[0] += 60
        client.get_manifest("ns/app", "1")
    assert len(fake.token_requests) == 2


def test_credentials_go_to_the_token_server_as_basic_auth():
    fake = FakeRegistry()
    with client_for(fake, Credentials("tester", "secret")) as client:
        client.get_manifest("ns/app", "1")
    token_request = next(r for r in fake.seen if r.url.host == "auth.example")
    assert token_request.headers["authorization"] == "Basic " + base64.b64encode(b"tester:secret").decode()


def test_each_scope_of_a_mount_is_its_own_parameter_with_the_account():
    fake = FakeRegistry()
    with client_for(fake, Credentials("tester", "secret")) as client:
        client.request("POST", "new/app", "/v2/new/app/blobs/uploads/", actions=("pull", "push"),
                       also=("repository:held/base:pull",), params={"mount": MANIFEST_DIGEST, "from": "held/base"})
    assert fake.token_queries == [[("service", "reg"), ("scope", "repository:new/app:pull,push"),
                                   ("scope", "repository:held/base:pull"), ("account", "tester")]]


def test_the_scopes_a_challenge_lists_with_spaces_are_asked_one_per_parameter():
    fake = FakeRegistry()
    # As distribution challenges a mount whose token lacks the source repository.
    fake.challenge_scope = "repository:new/app:pull,push repository:held/base:pull"
    with client_for(fake) as client:
        client.request("POST", "new/app", "/v2/new/app/blobs/uploads/", actions=("pull", "push"))
    assert fake.token_queries == [[("service", "reg"), ("scope", "repository:new/app:pull,push"),
                                   ("scope", "repository:held/base:pull")]]


def test_basic_auth_registries_get_the_credentials_after_the_challenge():
    fake = FakeRegistry(scheme="basic")
    with client_for(fake, Credentials("tester", "secret")) as client:
        client.ping()
    with client_for(fake, Credentials("tester", "wrong")) as client, pytest.raises(Unauthorized):
        client.ping()


def test_a_manifest_asked_by_digest_must_match_it():
    with client_for(FakeRegistry()) as client:
        assert client.get_manifest("ns/app", MANIFEST_DIGEST)[2] == MANIFEST_DIGEST
        with pytest.raises(InvalidArgument, match="does not match its digest"):
            client.get_manifest("ns/app", "sha256:" + "0" * 64)


def test_a_manifest_over_the_size_bound_is_refused():
    with client_for(FakeRegistry()) as client, pytest.raises(InvalidArgument, match="larger than the limit"):
        client.get_manifest("ns/app", "1", max_size=10)


def test_a_hostile_digest_never_becomes_a_url():
    fake = FakeRegistry()
    with client_for(fake) as client:
        with pytest.raises(InvalidArgument, match="invalid digest"):
            client.head_blob("ns/app", "sha256:../../x")
    assert fake.seen == []


def test_a_redirect_to_plain_http_elsewhere_is_refused_before_it_is_sent():
    fake = FakeRegistry()
    with client_for(fake) as client:
        with pytest.raises(RegistryError, match="refusing plain HTTP to 192.0.2.1:5000"):
            client.request("GET", "ns/app", "/v2/ns/app/blobs/redirect")
    assert not any(r.url.host == "192.0.2.1" for r in fake.seen)


def test_the_registry_errors_are_shown_in_its_words():
    with client_for(FakeRegistry()) as client:
        with pytest.raises(NotFound, match="unknown to the registry"):
            with client.open_blob("ns/app", "sha256:" + "b" * 64):
                pass


# --- X-Registry-Auth --------------------------------------------------------------------------


def test_x_registry_auth_round_trip_as_the_docker_cli_sends_it():
    header = encode_registry_auth("tester", "secret", "localhost:5000")
    assert "=" not in header.rstrip("=") and "+" not in header and "/" not in header
    credentials, server = decode_registry_auth(header.rstrip("="))  # docker sends it unpadded too
    assert credentials == Credentials("tester", "secret") and server == "localhost:5000"
    assert decode_registry_auth(None) == (Credentials(), "")
    with pytest.raises(InvalidArgument, match="X-Registry-Auth"):
        decode_registry_auth("!!!not base64!!!")


# --- platforms ---------------------------------------------------------------------------------


INDEX = {"manifests": [
    {"mediaType": registry_module.OCI_MANIFEST, "digest": "sha256:" + "1" * 64,
     "platform": {"os": "linux", "architecture": "amd64"}},
    {"mediaType": registry_module.OCI_MANIFEST, "digest": "sha256:" + "2" * 64,
     "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
    {"mediaType": registry_module.OCI_MANIFEST, "digest": "sha256:" + "3" * 64,
     "platform": {"os": "linux", "architecture": "arm64"}},
    {"mediaType": registry_module.OCI_MANIFEST, "digest": "sha256:" + "4" * 64,
     "platform": {"os": "unknown", "architecture": "unknown"}},
]}


@pytest.mark.parametrize("wanted, digit", [("linux/amd64", "1"), ("linux/arm/v7", "2"), ("linux/arm64", "3"),
                                           ("linux/arm64/v8", "3"), ("linux/aarch64", "3")])
def test_the_manifest_for_a_platform_is_chosen_from_an_index(wanted, digit):
    assert select_manifest(INDEX, parse_platform(wanted), "x")["digest"] == "sha256:" + digit * 64


def test_a_platform_the_index_does_not_offer_is_a_clear_error():
    with pytest.raises(NotFound, match=r"no matching manifest for linux/s390x .*offers linux/amd64, linux/arm/v7, "
                                       r"linux/arm64\)"):
        select_manifest(INDEX, Platform("linux", "s390x"), "x")


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"])
def test_a_malformed_platform_is_refused(text):
    with pytest.raises(InvalidArgument, match="invalid platform"):
        parse_platform(text)


def test_progress_bars_as_docker_renders_them():
    assert human_size(1_234_567) == "1.235MB" and human_size(999) == "999B"
    bar = progress_bar(500, 1000)
    assert bar.startswith("[" + "=" * 25 + ">") and bar.endswith("]     500B/1kB")  # %8v/%v


def test_loopback_only_refuses_any_other_registry_before_sending():
    fake = FakeRegistry()
    with client_for(fake, settings=RegistrySettings(loopback_only=True)) as client, pytest.raises(RegistryError, match="loopback registries only"):
        client.get_manifest("ns/app", "1")
    assert fake.seen == []


def test_redirects_to_blob_storage_are_followed_without_the_registrys_credentials():
    fake = FakeRegistry()
    with client_for(fake) as client:
        response = client.request("GET", "ns/app", "/v2/ns/app/blobs/storage")
    assert response.content == b"blob bytes"
    storage = [r for r in fake.seen if r.url.host == "storage.localhost"]
    assert len(storage) == 1 and "authorization" not in storage[0].headers
