"""A client of the OCI distribution API (Docker's registry HTTP API v2).

One `RegistryClient` per registry. It speaks HTTPS, and plain HTTP only to
registries that may have it (`allows_plain_http`: localhost, 127.0.0.0/8, ::1,
and those the daemon was told are insecure), decided before anything is sent.

Authentication as Docker does it: a request without credentials, and on 401
the `WWW-Authenticate` challenge says how — `Basic` (the user's credentials)
or `Bearer realm=…,service=…,scope=…` (a token from the realm, anonymous or
with the user's credentials, for `repository:NAME:ACTIONS`). As the distribution
token spec and Docker ask, each scope entry is its own `scope` query parameter
(a challenge's space-separated list is split), with `account=` the user. Tokens
are kept per set of scopes for their lifetime and fetched again on a 401.

httpx is imported here and only here: the daemon's pull and push paths load
this module, the CLI never does.
"""

import base64
import ipaddress
import json
import logging
import re
import threading
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass

from minictr import hostsocket
from minictr.errors import InvalidArgument, MinictrError, NotFound
from minictr.images.blobs import check_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX)
INDEX_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)

MAX_MANIFEST_SIZE = 4 << 20  # as containerd: a manifest or index is small JSON
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
DOCKER_HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io")
LOOPBACK_ONLY_ENV = "MINICTR_REGISTRY_LOOPBACK_ONLY"  # "1": no registry off this machine (the test suite)
DEFAULT_PUSH_CHUNK_SIZE = 16 << 20
_DEFAULT_TOKEN_LIFETIME = 60  # seconds, the spec's default for a token without expires_in
_TIMEOUT = 30.0


class RegistryError(MinictrError):
    """The registry refused or failed a request; the message says what and where."""


class Unauthorized(RegistryError):
    status = 401


class TransientError(RegistryError):
    """A failure worth retrying: the connection broke, or the registry answered 429 or 5xx."""


@dataclass(frozen=True)
class RegistrySettings:
    """How this daemon reaches registries, from its configuration (daemon/config.py)."""

    insecure: frozenset = frozenset()  # HOST[:PORT], HOST or CIDR that may be plain HTTP (--insecure-registry)
    loopback_only: bool = False  # no registry off this machine (MINICTR_REGISTRY_LOOPBACK_ONLY=1)
    connect_socket: str | None = None  # rootless: the wrapper makes the connections (hostsocket.py)
    push_chunk_size: int = DEFAULT_PUSH_CHUNK_SIZE  # a bigger blob is pushed in PATCH chunks of this size


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth refresh token (docker login to some registries)
    registry_token: str = ""  # a bearer token given as is

    def __bool__(self):
        return bool(self.username or self.identity_token or self.registry_token)


# --- the WWW-Authenticate header ---------------------------------------------------

_CHALLENGE_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)')


def parse_challenges(header: str) -> list[tuple[str, dict]]:
    """`Bearer realm="https://auth",service="reg",scope="repository:x:pull"` → [("bearer", {realm: …, …})].

    Several challenges may share a header (`Basic realm="x", Bearer realm="y"`); schemes are
    lowercased, parameter names too, quoted values unescaped."""
    challenges = []
    rest = header.strip()
    while rest:
        match = re.match(r"([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)", rest)
        if match is None:
            break
        scheme, rest = match.group(1).lower(), rest[match.end():]
        params = {}
        while rest:
            param = _CHALLENGE_PARAM.match(rest)
            if param is None:
                break
            # A token followed by `=` is a parameter; a bare token starts the next challenge.
            params[param.group(1).lower()] = (param.group(2).replace('\\"', '"').replace("\\\\", "\\")
                                              if param.group(2) is not None else param.group(3))
            rest = rest[param.end():].lstrip()
        challenges.append((scheme, params))
        rest = rest.lstrip(", ")
    return challenges


# --- where plain HTTP may be used --------------------------------------------------


def split_host_port(domain: str) -> tuple[str, str | None]:
    if domain.startswith("["):
        host, _, rest = domain[1:].partition("]")
        return host, rest.removeprefix(":") or None
    host, colon, port = domain.rpartition(":")
    return (host, port) if colon else (domain, None)


def allows_plain_http(domain: str, insecure=()) -> bool:
    """Plain HTTP only for localhost, 127.0.0.0/8, ::1, or a registry marked insecure
    (`HOST:PORT` or `HOST`, or a CIDR its address literal falls in). Decided from the name alone."""
    host, _ = split_host_port(domain)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = _address(host)
    if address is not None and address.is_loopback:
        return True
    for entry in insecure:
        if entry in (domain, host):
            return True
        if "/" in entry and address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
    return False


def _is_loopback(domain: str) -> bool:
    host, _ = split_host_port(domain)
    address = _address(host)
    return host == "localhost" or host.endswith(".localhost") or (address is not None and address.is_loopback)


def _address(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def endpoint_host(domain: str) -> str:
    """Where a registry's API is: Docker Hub's is not at docker.io."""
    return DOCKER_HUB_ENDPOINT if domain in DOCKER_HUB_NAMES else domain


# --- the client ----------------------------------------------------------------------


class RegistryClient:
    """Requests to one registry, authenticated per repository scope.

    The surface push and pull use: `request(method, repository, path, actions)`,
    `get_manifest`, `put_manifest`, `head_blob`, `open_blob` (streaming), and
    `blob_url` / `upload_url` helpers for uploads."""

    def __init__(self, domain: str, credentials: Credentials | None = None,
                 settings: RegistrySettings = RegistrySettings(), timeout: float = _TIMEOUT, transport=None):
        import httpx  # only the daemon's pull/push path pays for it

        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a log line per request

        self.domain = domain
        self.host = endpoint_host(domain)
        self.credentials = credentials or Credentials()
        self._insecure = settings.insecure
        self._loopback_only = settings.loopback_only
        self.plain_http_allowed = allows_plain_http(self.host, self._insecure) or allows_plain_http(
            domain, self._insecure)
        self._httpx = httpx
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=True,
                                    limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
                                    trust_env=True, event_hooks={"request": [self._check_request]},
                                    transport=transport)
        if settings.connect_socket:  # the rootless daemon: connections are made in the host's network namespace
            self._client._transport._pool._network_backend = hostsocket.httpcore_backend(settings.connect_socket)
        self._scheme = None
        self._lock = threading.Lock()
        self._challenge = None  # (scheme, params) of the last 401 from this registry
        self._tokens = {}  # (scope entries) → (token, expiry)

    def close(self) -> None:
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- the base URL: HTTPS, or plain HTTP where allowed ---

    def _check_request(self, request) -> None:
        """Every request, redirects and token realms included, before it is sent: plain HTTP
        only to a host that may have it; with MINICTR_REGISTRY_LOOPBACK_ONLY=1, loopback hosts only."""
        host = request.url.netloc.decode()
        if request.url.scheme != "https" and not (allows_plain_http(host, self._insecure)
                                                  or host == self.host and self.plain_http_allowed):
            raise RegistryError(
                f"refusing plain HTTP to {host} ({_shown(request.url)}): HTTPS is required except for localhost, "
                "127.0.0.0/8, ::1 and registries given to the daemon with --insecure-registry")
        if self._loopback_only and not _is_loopback(host):
            raise RegistryError(f"refusing to contact {host}: {LOOPBACK_ONLY_ENV}=1 allows loopback registries only")

    @property
    def base_url(self) -> str:
        if self._scheme is None:
            self._scheme = self._probe_scheme()
        return f"{self._scheme}://{self.host}"

    def _probe_scheme(self) -> str:
        """HTTPS first; a registry that may be plain HTTP and does not speak TLS gets HTTP (as Docker)."""
        try:
            self._client.get(f"https://{self.host}/v2/", timeout=10.0).close()
            return "https"
        except self._httpx.HTTPError as error:
            if self.plain_http_allowed:
                return "http"
            raise RegistryError(
                f"cannot reach {self.domain} over HTTPS: {_reason(error)} (plain HTTP is used only for localhost, "
                f"127.0.0.0/8, ::1 and registries the daemon was given with --insecure-registry)") from None

    # --- requests with auth ---

    def request(self, method: str, repository: str | None, path: str, actions=("pull",), *, also=(),
                headers=None, content=None, params=None, stream=False, url=None):
        """One request to `/v2/…` (or the absolute `url` a registry gave, e.g. an upload's Location),
        authorised for `repository:<repository>:<actions>` and the scope entries in `also` (a
        cross-repository mount needs `repository:FROM:pull`). A 401 fetches a token and retries once.
        With stream=True the caller closes the response (`with closing(client.request(...)) as r`)."""
        scope = ((f"repository:{repository}:{','.join(actions)}",) if repository else ()) + tuple(also)
        target = url or f"{self.base_url}{path}"
        for attempt in range(2):
            request = self._client.build_request(method, target, headers={**(headers or {}), **self._auth(scope)},
                                                 content=content, params=params)
            try:
                response = self._client.send(request, stream=True)
            except self._httpx.HTTPError as error:
                raise TransientError(f"{method} {_shown(target)}: {_reason(error)}") from None
            if response.status_code != 401 or attempt == 1:
                break
            challenge = response.headers.get("www-authenticate", "")
            response.close()
            if not self._answer_challenge(challenge, scope):
                break
        if response.status_code == 401:
            text = _error_text(response)
            response.close()
            raise Unauthorized(f"{self.domain}: unauthorized: {text or 'authentication required'}")
        if not stream:
            try:
                response.read()
            finally:
                response.close()
        return response

    def _auth(self, scope: tuple) -> dict:
        with self._lock:
            token = self._tokens.get(scope)
            if token is not None and token[1] > time.monotonic():
                return {"Authorization": f"Bearer {token[0]}"}
            challenge = self._challenge
        if challenge is None:
            return {}
        if challenge[0] == "basic":
            return self._basic_header()
        if challenge[0] == "bearer":
            return {"Authorization": f"Bearer {self._fetch_token(challenge[1], scope)}"}
        return {}

    def _answer_challenge(self, header: str, scope: tuple) -> bool:
        """Learn from a 401's challenge; True when a retry may succeed."""
        for scheme, params in parse_challenges(header):
            if scheme == "bearer" and params.get("realm"):
                with self._lock:
                    self._tokens.pop(scope, None)
                    self._challenge = (scheme, params)
                return True
            if scheme == "basic":
                with self._lock:
                    retry = self._challenge != (scheme, params) and bool(self.credentials.username)
                    self._challenge = (scheme, params)
                return retry
        return False

    def _basic_header(self) -> dict:
        if not self.credentials.username:
            return {}
        pair = f"{self.credentials.username}:{self.credentials.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    def _fetch_token(self, params: dict, scope: tuple) -> str:
        if self.credentials.registry_token:
            return self.credentials.registry_token
        realm = params["realm"]
        if not realm.startswith("https://") and not (realm.startswith("http://") and allows_plain_http(
                _host_of(realm), self._insecure)):
            raise RegistryError(f"{self.domain}: the token realm {realm} is not HTTPS (plain HTTP only for "
                                "localhost, 127.0.0.0/8, ::1 and --insecure-registry hosts)")
        scopes = token_scopes(scope, params.get("scope", ""))
        if self.credentials.identity_token:
            # OAuth2's form: one `scope` field, its entries separated by spaces (RFC 6749, 3.3).
            response = self._client.post(realm, data={
                "grant_type": "refresh_token", "refresh_token": self.credentials.identity_token,
                "service": params.get("service", ""), "scope": " ".join(scopes), "client_id": "minictr"})
        else:
            try:
                response = self._client.get(realm, params=token_query(params.get("service", ""), scopes,
                                                                      self.credentials),
                                            headers=self._basic_header())
            except self._httpx.HTTPError as error:
                raise RegistryError(f"{self.domain}: getting a token from {realm}: {_reason(error)}") from None
        if response.status_code in (401, 403):
            raise Unauthorized(f"{self.domain}: unauthorized: the token server refused the credentials"
                               if self.credentials else f"{self.domain}: unauthorized: authentication required")
        if response.status_code != 200:
            raise RegistryError(f"{self.domain}: the token server answered {response.status_code}")
        try:
            answer = response.json()
            token = answer.get("token") or answer.get("access_token")
            lifetime = int(answer.get("expires_in") or _DEFAULT_TOKEN_LIFETIME)
        except (ValueError, TypeError, AttributeError):
            token = None
        if not token or not isinstance(token, str):
            raise RegistryError(f"{self.domain}: the token server's answer has no token")
        with self._lock:
            # Renewed a little early: a token must not expire between the check and its use.
            self._tokens[scope] = (token, time.monotonic() + max(lifetime - 5, 1))
        return token

    # --- the API ---

    def ping(self) -> None:
        """GET /v2/ with the credentials, as `docker login` checks them (Unauthorized when refused)."""
        response = self.request("GET", None, "/v2/")  # a 401 is answered (a token without a scope) or raised
        if response.status_code != 200:
            raise RegistryError(f"{self.domain}: GET /v2/ answered {response.status_code}: {_error_text(response)}")

    def get_manifest(self, repository: str, reference: str, accept=MANIFEST_TYPES,
                     max_size: int | None = None) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest by tag or digest. The bytes are bounded and,
        asked by digest, checked against it; by tag, the digest is their sha256."""
        import hashlib

        max_size = MAX_MANIFEST_SIZE if max_size is None else max_size
        if reference.startswith("sha256:"):
            check_digest(reference)
        with closing(self.request("GET", repository, f"/v2/{repository}/manifests/{reference}",
                                  headers={"Accept": ", ".join(accept)}, stream=True)) as response:
            if response.status_code == 404:
                raise NotFound(f"manifest for {repository}:{reference} not found: manifest unknown")
            _check_status(response, f"GET manifest {repository}:{reference}")
            data = _read_bounded(response, max_size, f"the manifest of {repository}:{reference}")
            media_type = response.headers.get("content-type", "").split(";")[0].strip()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise InvalidArgument(f"the manifest of {repository}@{reference} does not match its digest (got {digest})")
        try:
            media_type = json.loads(data).get("mediaType") or media_type
        except (ValueError, AttributeError):
            raise InvalidArgument(f"the manifest of {repository}:{reference} is not JSON") from None
        return data, media_type, digest

    def list_tags(self, repository: str) -> list[str]:
        """GET /v2/<repository>/tags/list: the repository's tags (NotFound when it has none there)."""
        with closing(self.request("GET", repository, f"/v2/{repository}/tags/list", stream=True)) as response:
            if response.status_code == 404:
                raise NotFound(f"repository {repository} not found: name unknown")
            _check_status(response, f"GET tags of {repository}")
            data = _read_bounded(response, MAX_MANIFEST_SIZE, f"the tags of {repository}")
        try:
            tags = json.loads(data).get("tags") or []
        except (ValueError, AttributeError):
            raise InvalidArgument(f"the tag list of {repository} is not JSON") from None
        return [tag for tag in tags if isinstance(tag, str)]

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """Upload a manifest under a tag or digest; returns its digest."""
        import hashlib

        response = self.request("PUT", repository, f"/v2/{repository}/manifests/{reference}",
                                actions=("pull", "push"), headers={"Content-Type": media_type}, content=data)
        _check_status(response, f"PUT manifest {repository}:{reference}", expected=(200, 201))
        return response.headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(data).hexdigest()

    def head_blob(self, repository: str, digest: str, actions=("pull",)) -> int | None:
        """The blob's size when the repository has it, else None."""
        check_digest(digest)
        response = self.request("HEAD", repository, f"/v2/{repository}/blobs/{digest}", actions=actions)
        if response.status_code == 404:
            return None
        _check_status(response, f"HEAD blob {digest}")
        return int(response.headers.get("content-length", "0") or 0)

    @contextmanager
    def open_blob(self, repository: str, digest: str):
        """A streaming response of the blob (redirects to blob storage followed):
        `with client.open_blob(repo, d) as r: for chunk in r.iter_bytes(): …`. Verify the bytes yourself."""
        check_digest(digest)
        response = self.request("GET", repository, f"/v2/{repository}/blobs/{digest}", stream=True)
        try:
            if response.status_code == 404:
                raise NotFound(f"{repository}: blob {digest} unknown to the registry")
            _check_status(response, f"GET blob {digest}")
            yield response
        finally:
            response.close()

    def absolute(self, location: str) -> str:
        """A Location header (maybe relative) as a URL on this registry."""
        return location if re.match(r"https?://", location) else f"{self.base_url}{location}"


def token_scopes(wanted, challenged: str) -> list[str]:
    """The scope entries to ask a token for: the request's, then those of the challenge's `scope`
    (a registry lists several there separated by spaces) that are not already asked."""
    scopes = list(wanted)
    for entry in challenged.split():
        if entry not in scopes:
            scopes.append(entry)
    return scopes


def token_query(service: str, scopes, credentials: Credentials) -> list[tuple[str, str]]:
    """A token request's query as Docker sends it: `service`, one `scope` parameter per entry (a
    token server reads each as one scope), and `account` when the user gives credentials."""
    query = [("service", service)] if service else []
    query += [("scope", entry) for entry in scopes]
    if credentials.username and credentials.password:
        query.append(("account", credentials.username))
    return query


def _check_status(response, what: str, expected=(200,)) -> None:
    if response.status_code in expected:
        return
    if response.status_code in (401, 403):
        raise Unauthorized(f"{what}: {response.status_code} denied: {_error_text(response)}")
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientError(f"{what}: the registry answered {response.status_code}: {_error_text(response)}")
    raise RegistryError(f"{what}: the registry answered {response.status_code}: {_error_text(response)}")


def _error_text(response) -> str:
    """The registry's own words: `{"errors": [{"code", "message"}]}`."""
    try:
        body = response.read()
        errors = json.loads(body).get("errors") or []
        return "; ".join(f"{e.get('code', '').lower().replace('_', ' ')}: {e.get('message', '')}".strip(": ")
                         for e in errors) or ""
    except Exception:  # noqa: BLE001 - the text of an error must not raise another
        return ""


def _read_bounded(response, max_size: int, what: str) -> bytes:
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_size:
        raise InvalidArgument(f"{what} is larger than the limit of {max_size} bytes")
    chunks, total = [], 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > max_size:
            raise InvalidArgument(f"{what} is larger than the limit of {max_size} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _reason(error) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:300]


def _shown(url) -> str:
    return str(url).split("?")[0]


def _host_of(url: str) -> str:
    return re.sub(r"^https?://", "", url).split("/")[0]


def decode_registry_auth(header: str | None) -> tuple[Credentials, str]:
    """The X-Registry-Auth header as the docker CLI sends it: base64url JSON
    {username, password, serveraddress, identitytoken, registrytoken}. Returns (credentials, server)."""
    if not header:
        return Credentials(), ""
    try:
        padded = header + "=" * (-len(header) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise InvalidArgument("invalid X-Registry-Auth header: not base64url JSON") from None
    if not isinstance(data, dict):
        return Credentials(), ""
    return Credentials(username=str(data.get("username") or ""), password=str(data.get("password") or ""),
                       identity_token=str(data.get("identitytoken") or ""),
                       registry_token=str(data.get("registrytoken") or "")), str(data.get("serveraddress") or "")


def encode_registry_auth(username: str = "", password: str = "", server: str = "",
                         identity_token: str = "") -> str:
    data = {"username": username, "password": password, "serveraddress": server}
    if identity_token:
        data["identitytoken"] = identity_token
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
