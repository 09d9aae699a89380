"""A real registry on loopback for the image tests, and builders for the images pushed to it.

Import what you use into your test module (pytest finds fixtures by name in the module):

    from tests.integration.registry import registry, auth_registry, busybox_archive, push_archive, registry_digest

Fixtures (session-scoped; push under names of your own, e.g. "pull/busybox:1", so tests do not collide):
- `registry`: Debian's `docker-registry serve` (the CNCF distribution server, /usr/bin/docker-registry) on
  127.0.0.1:<free port>, filesystem storage in a temp dir (`registry.storage`), no auth, deletes enabled.
- `auth_registry`: the same behind token auth. A token server in this process (http.server on loopback) signs
  RS256 JWTs with a key and self-signed certificate made by the openssl CLI; the registry trusts that
  certificate (`auth.token.rootcertbundle`). Basic auth `tester`/`secret` (`auth_registry.username`,
  `.password`) gets the pull/push/delete actions it asks for; a wrong password gets 401 from the token server;
  anonymous requests get `pull` on repositories under `public/` and nothing elsewhere (the registry then answers
  401). As a distribution token server, a GET's `scope` parameters are one scope each (an entry holding a space
  is no scope and grants nothing); a POST's form field lists them separated by spaces (OAuth2). Nothing is
  granted on the repositories in `auth_registry.token_server.denied` (a set; a user without rights there).
  `auth_registry.token_requests` records every token request (dicts: method, account, scopes, granted, query),
  e.g. to check that a client reuses its token. `auth_registry.token_lifetime` (seconds, default 300) is read
  per request.
- `busybox_archive`: a `docker save` tar (manifest.json + repositories + config + layer) of busybox-local,
  tagged `busybox-local:latest`.
- `whiteout_archive`: a `docker save` tar of a three-layer image (busybox, then files, then deletions): see
  WHITEOUT_PRESENT / WHITEOUT_ABSENT.
- `platform_index`: an OCI image layout (a directory) whose index offers linux/amd64 and linux/arm64 (variant v8)
  manifests with different contents (/platform says which); push it with `push_archive(..., all=True)`.

Helpers: `push_archive(registry, source, "name:tag")` (skopeo copy), `registry_digest(registry, name, ref)`,
`registry_manifest(...)`, `registry_request(...)` (a GET/HEAD with the registry's auth flow), `docker_archive(...)`
and `oci_layout(...)` (build archives from layer tars), `layer_tar({...})`, `start_registry(top, auth=...)` for
a registry of your own (a context manager).

A registry here listens on the host's loopback. The rootless daemon runs in its own network namespace
(docs/internals.md, "Rootless namespaces"): it reaches the host's 127.0.0.1 only if its registry traffic leaves
that namespace.
"""

import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.conftest import IMAGE, REPO

REGISTRY_BINARY = "/usr/bin/docker-registry"
USERNAME = "tester"
PASSWORD = "secret"
SERVICE = "minictr-test-registry"
ISSUER = "minictr-test-token-issuer"
PUBLIC_PREFIX = "public/"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_ACCEPT = ", ".join([DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX])

# What the whiteout image shows: (path, content) for files, None content for a directory.
WHITEOUT_PRESENT = [
    ("/data/keep", "kept\n"),
    ("/opq/new", "new in layer 3\n"),
    ("/layer2-dir", None),
]
# Deleted by layer 3: files of layer 2 (data/.wh.gone, etc/.wh.hostname-base), a directory of the base layer
# (.wh.home), a directory of layer 2 with its contents (.wh.tree), and everything that was in /opq before layer 3
# (opq/.wh..wh..opq, which keeps opq/new of the same layer).
WHITEOUT_ABSENT = ["/data/gone", "/etc/hostname-base", "/home", "/tree", "/tree/leaf", "/opq/old1", "/opq/sub",
                   "/opq/sub/old2"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- the token server -----------------------------------------------------------------


class TokenIssuer:
    """Signs registry tokens (RS256 JWTs) with a key and self-signed certificate made by openssl."""

    def __init__(self, top: Path):
        self.key = top / "token.key"
        self.cert = top / "token.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "3", "-subj", "/CN=minictr-test-token-issuer"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-in", str(self.key), "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        # libtrust's key id, which the registry computes for each certificate of its rootcertbundle.
        encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
        self.kid = ":".join(encoded[i:i + 4] for i in range(0, len(encoded), 4))

    def token(self, subject: str, access: list, lifetime: int) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + lifetime, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = (_b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())).encode()
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input,
                                   check=True, capture_output=True).stdout
        return signing_input.decode() + "." + _b64url(signature)


def _parse_scope(scope: str):
    """`repository:name:pull,push` (names may hold ':' only in registry:catalog:*) -> (type, name, actions)."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    return kind, name, [a for a in actions.split(",") if a]


class TokenServer:
    def __init__(self, issuer: TokenIssuer):
        self.issuer = issuer
        self.requests = []
        self.lifetime = 300
        self.denied = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                server.answer(self, query, self.headers.get("Authorization"), "GET")

            def do_POST(self):  # OAuth2 password grant (docker with an identity token uses it)
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                authorization = None
                if form.get("grant_type") == ["password"]:
                    pair = f"{form.get('username', [''])[0]}:{form.get('password', [''])[0]}"
                    authorization = "Basic " + base64.b64encode(pair.encode()).decode()
                elif form.get("grant_type") == ["refresh_token"]:
                    if form.get("refresh_token") == [server.refresh_token]:
                        pair = f"{USERNAME}:{PASSWORD}"
                        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
                    else:
                        authorization = "Basic invalid"
                server.answer(self, form, authorization, "POST")

        self.refresh_token = uuid.uuid4().hex
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, handler, query, authorization, method):
        account = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = None, None
            if scheme.lower() != "basic" or (user, password) != (USERNAME, PASSWORD):
                self.requests.append({"method": method, "account": user, "scopes": query.get("scope", []),
                                      "granted": None, "query": query})
                body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}).encode()
                handler.send_response(401)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)
                return
            account = user
        access = []
        for scope_list in query.get("scope", []):
            for scope in scope_list.split(" ") if method == "POST" else [scope_list]:
                kind, name, actions = _parse_scope(scope)
                if kind != "repository" or not name or any(c.isspace() for c in scope) or name in self.denied:
                    continue
                if account:
                    granted = [a for a in actions if a in ("pull", "push", "delete", "*")]
                else:
                    granted = ["pull"] if name.startswith(PUBLIC_PREFIX) and "pull" in actions else []
                if granted:
                    access.append({"type": "repository", "name": name, "actions": granted})
        lifetime = self.lifetime
        self.requests.append({"method": method, "account": account, "scopes": query.get("scope", []),
                              "granted": access, "query": query})
        token = self.issuer.token(account or "", access, lifetime)
        document = {"token": token, "access_token": token, "expires_in": lifetime,
                    "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if account and method == "POST":
            document["refresh_token"] = self.refresh_token
        body = json.dumps(document).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# --- the registry ------------------------------------------------------------------------


class Registry:
    """A running docker-registry. `host` is "127.0.0.1:PORT"; `ref("name:tag")` the full reference."""

    def __init__(self, top: Path, port: int, process, token_server=None):
        self.top = top
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.url = f"http://{self.host}"
        self.storage = top / "storage"
        self.log = top / "registry.log"
        self.process = process
        self.token_server = token_server
        self.username = USERNAME if token_server else None
        self.password = PASSWORD if token_server else None
        self._tokens = {}

    def ref(self, name: str) -> str:
        return f"{self.host}/{name}"

    @property
    def auth(self) -> bool:
        return self.token_server is not None

    @property
    def token_requests(self) -> list:
        return self.token_server.requests if self.token_server else []

    @property
    def token_lifetime(self) -> int:
        return self.token_server.lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: int) -> None:
        self.token_server.lifetime = seconds

    def log_tail(self, lines=20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _write_config(top: Path, port: int, token_server) -> Path:
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {top / 'storage'}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        f"  secret: {uuid.uuid4().hex}",
    ]
    if token_server:
        lines += [
            "auth:",
            "  token:",
            f"    realm: {token_server.realm}",
            f"    service: {SERVICE}",
            f"    issuer: {ISSUER}",
            f"    rootcertbundle: {token_server.issuer.cert}",
        ]
    config = top / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    return config


def _stop_process(process) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def start_registry(top: Path, auth: bool = False):
    """A docker-registry in `top` (made if missing), stopped by pid and its files removed afterwards."""
    if not os.access(REGISTRY_BINARY, os.X_OK):
        pytest.fail(f"{REGISTRY_BINARY} is missing: apt-get install docker-registry (scripts/install --test)")
    top = Path(top)
    top.mkdir(parents=True, exist_ok=True)
    token_server = TokenServer(TokenIssuer(top)) if auth else None
    process = None
    try:
        for attempt in range(5):  # a free port can be taken between our check and the registry's bind
            port = _free_port()
            config = _write_config(top, port, token_server)
            with open(top / "registry.log", "ab") as log:
                process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=log, stderr=log,
                                           stdin=subprocess.DEVNULL, cwd=top)
            registry = Registry(top, port, process, token_server)
            if _wait_answering(registry):
                break
            _stop_process(process)
        else:
            raise RuntimeError(f"docker-registry did not start:\n{(top / 'registry.log').read_text()}")
        yield registry
    finally:
        if process is not None:
            _stop_process(process)
        if token_server:
            token_server.stop()
        shutil.rmtree(top, ignore_errors=True)


def _wait_answering(registry: Registry, timeout=20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if registry.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(registry.url + "/v2/", timeout=2):
                return True
        except urllib.error.HTTPError as error:
            if error.code == 401:  # token auth: it answers with its challenge
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    with start_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    with start_registry(tmp_path_factory.mktemp("auth-registry"), auth=True) as running:
        yield running


# --- talking to it -----------------------------------------------------------------------


def _challenge(header: str) -> dict:
    scheme, _, rest = header.partition(" ")
    params = {}
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        params[key] = value.strip('"')
    params["scheme"] = scheme
    return params


def registry_request(registry: Registry, method: str, path: str, headers=None, credentials=True):
    """(status, headers, body) of a request to the registry, through its token flow when it has one
    (with its credentials unless credentials=False)."""
    headers = dict(headers or {})
    for attempt in range(2):
        request = urllib.request.Request(registry.url + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            if error.code != 401 or attempt == 1 or not registry.auth:
                return error.code, error.headers, error.read()
            challenge = _challenge(error.headers.get("WWW-Authenticate", ""))
            query = {"service": challenge.get("service", "")}
            if "scope" in challenge:
                query["scope"] = challenge["scope"]
            token_request = urllib.request.Request(challenge["realm"] + "?" + urllib.parse.urlencode(query))
            if credentials:
                pair = f"{registry.username}:{registry.password}".encode()
                token_request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
            with urllib.request.urlopen(token_request, timeout=30) as response:
                headers["Authorization"] = "Bearer " + json.loads(response.read())["token"]
    raise AssertionError("unreachable")


def registry_manifest(registry: Registry, name: str, reference: str):
    """(body bytes, media type, digest) of a manifest or index as the registry serves it."""
    status, headers, body = registry_request(registry, "GET", f"/v2/{name}/manifests/{reference}",
                                             {"Accept": MANIFEST_ACCEPT})
    assert status == 200, f"GET manifest {name}:{reference}: {status} {body[:300]!r}"
    digest = headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()
    return body, headers.get("Content-Type"), digest


def registry_digest(registry: Registry, name: str, reference: str = "latest") -> str:
    """The manifest digest (Docker-Content-Digest) of name:reference."""
    return registry_manifest(registry, name, reference)[2]


def registry_blob(registry: Registry, name: str, digest: str) -> bytes:
    status, _, body = registry_request(registry, "GET", f"/v2/{name}/blobs/{digest}")
    assert status == 200, f"GET blob {name}@{digest}: {status}"
    return body


def registry_blob_path(registry: Registry, digest: str) -> Path:
    """Where the registry's filesystem storage keeps a blob (to corrupt it in a test)."""
    hex_ = digest.split(":", 1)[1]
    return registry.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"


def push_archive(registry: Registry, source, name: str, *, all: bool = False, format: str | None = None,
                 extra=()) -> str:
    """skopeo copy SOURCE docker://REGISTRY/NAME; returns the pushed manifest's digest.

    SOURCE: a docker-save tar (docker-archive:), an OCI layout directory (oci:), or a string with its own
    transport ("oci-archive:x.tar"). all=True copies every manifest of an index (--all, digests preserved);
    format: "v2s2" or "oci" to convert."""
    if isinstance(source, str) and ":" in source.split("/", 1)[0]:
        src = source
    else:
        path = Path(source)
        src = f"oci:{path}" if path.is_dir() else f"docker-archive:{path}"
    with tempfile.TemporaryDirectory(prefix="skopeo-") as tmp:
        digest_file = Path(tmp) / "digest"
        command = ["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                   "--digestfile", str(digest_file)]
        if registry.auth:
            command += ["--dest-creds", f"{registry.username}:{registry.password}"]
        if all:
            command += ["--all", "--preserve-digests"]
        if format:
            command += ["--format", format]
        command += [*extra, src, f"docker://{registry.ref(name)}"]
        env = dict(os.environ, TMPDIR=tmp, HOME=os.environ.get("HOME", tmp))
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, f"{' '.join(command)}: {result.stderr}\n--- registry ---\n{registry.log_tail()}"
        return digest_file.read_text().strip()


# --- building images ---------------------------------------------------------------------


def layer_tar(entries: dict, mtime: int = 1700000000) -> bytes:
    """A layer tar from {path: content}: str/bytes for a file, None for a directory, ("symlink", target).
    Parent directories are not added implicitly (list them for the layer to hold them)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            content = entries[path]
            info = tarfile.TarInfo(path.lstrip("/"))
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, tuple) and content[0] == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, content[1], 0o777
                tar.addfile(info)
            else:
                data = content.encode() if isinstance(content, str) else content
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def image_config(diff_ids: list, *, architecture="amd64", variant=None, cmd=("sh",), history=None,
                 env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)) -> bytes:
    document = {
        "architecture": architecture,
        "os": "linux",
        "created": "2026-11-27T00:00:00Z",
        "config": {"Cmd": list(cmd), "Env": list(env)},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": history or [{"created": "2026-11-27T00:00:00Z", "created_by": f"layer {i}"}
                               for i in range(len(diff_ids))],
    }
    if variant:
        document["variant"] = variant
    return json.dumps(document, separators=(",", ":")).encode()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 1700000000
    tar.addfile(info, io.BytesIO(data))


def docker_archive(out: Path, layers: list, repo_tags=(), config: bytes | None = None) -> Path:
    """A `docker save` tar (manifest.json, repositories, <id>.json, <diff hex>/layer.tar) of layer tars
    (bytes or paths), bottom first. Returns out; the image id is sha256 of the config (`archive_image_id`)."""
    blobs = [Path(layer).read_bytes() if not isinstance(layer, bytes) else layer for layer in layers]
    diff_ids = [_sha(blob) for blob in blobs]
    config = config or image_config(diff_ids)
    config_hex = hashlib.sha256(config).hexdigest()
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": list(repo_tags),
                 "Layers": [f"{d.split(':')[1]}/layer.tar" for d in diff_ids]}]
    repositories = {}
    for repo_tag in repo_tags:
        repo, _, tag = repo_tag.rpartition(":")
        repositories.setdefault(repo, {})[tag] = diff_ids[-1].split(":")[1]
    with tarfile.open(out, "w") as tar:
        for diff_id, blob in zip(diff_ids, blobs):
            _add(tar, f"{diff_id.split(':')[1]}/layer.tar", blob)
        _add(tar, f"{config_hex}.json", config)
        _add(tar, "manifest.json", json.dumps(manifest).encode())
        if repositories:
            _add(tar, "repositories", json.dumps(repositories).encode())
    return Path(out)


def archive_image_id(archive: Path) -> str:
    """The image id (sha256 of the config) of the first image of a docker-save tar."""
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        return _sha(tar.extractfile(manifest[0]["Config"]).read())


def oci_layout(out: Path, images: list, ref_name: str | None = None) -> Path:
    """An OCI image layout directory. images: [(platform dict, [layer tar bytes], config bytes or None)].
    One image: index.json points at its manifest; several: at an image index (tagged ref_name) listing them."""
    blobs_dir = Path(out) / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        digest = _sha(data)
        (blobs_dir / digest.split(":")[1]).write_bytes(data)
        return digest

    manifests = []
    for platform, layers, config in images:
        descriptors, diff_ids = [], []
        for layer in layers:
            diff_ids.append(_sha(layer))
            compressed = gzip.compress(layer, compresslevel=1, mtime=0)
            descriptors.append({"mediaType": OCI_LAYER_GZIP, "digest": put(compressed), "size": len(compressed)})
        config = config or image_config(diff_ids, architecture=platform["architecture"],
                                        variant=platform.get("variant"))
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": put(config), "size": len(config)},
            "layers": descriptors,
        }).encode()
        manifests.append({"mediaType": OCI_MANIFEST, "digest": put(manifest), "size": len(manifest),
                          "platform": platform})
    annotations = {"org.opencontainers.image.ref.name": ref_name} if ref_name else None
    if len(manifests) == 1:
        top = dict(manifests[0])
        top.pop("platform")
    else:
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
        top = {"mediaType": OCI_INDEX, "digest": put(index), "size": len(index)}
    if annotations:
        top["annotations"] = annotations
    (Path(out) / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    (Path(out) / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return Path(out)


@pytest.fixture(scope="session")
def busybox_layer(tmp_path_factory) -> bytes:
    """The busybox-local rootfs tar (images/busybox/build), as bytes."""
    out = tmp_path_factory.mktemp("busybox-layer") / "rootfs.tar"
    subprocess.run([str(REPO / "images" / "busybox" / "build"), str(out)], check=True, capture_output=True)
    return out.read_bytes()


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory, busybox_layer) -> Path:
    """A `docker save` tar of busybox-local (one layer, Cmd ["sh"]), tagged busybox-local:latest."""
    out = tmp_path_factory.mktemp("busybox-archive") / "busybox-local.tar"
    return docker_archive(out, [busybox_layer], repo_tags=[f"{IMAGE}:latest"])


def whiteout_layers(busybox_layer: bytes) -> list:
    """busybox, then a layer adding files, then one deleting them (OCI whiteouts): WHITEOUT_PRESENT/ABSENT."""
    layer2 = layer_tar({
        "data": None, "data/keep": "kept\n", "data/gone": "to be deleted\n",
        "etc": None, "etc/hostname-base": "deleted by layer 3\n",
        "tree": None, "tree/leaf": "in a deleted dir\n",
        "opq": None, "opq/old1": "hidden by the opaque dir\n", "opq/sub": None, "opq/sub/old2": "hidden too\n",
        "layer2-dir": None,
    })
    layer3 = layer_tar({
        "data": None, "data/.wh.gone": b"",
        "etc": None, "etc/.wh.hostname-base": b"",
        ".wh.tree": b"",
        "opq": None, "opq/.wh..wh..opq": b"", "opq/new": "new in layer 3\n",
        ".wh.home": b"",
    })
    return [busybox_layer, layer2, layer3]


@pytest.fixture(scope="session")
def whiteout_archive(tmp_path_factory, busybox_layer) -> Path:
    """A `docker save` tar of a three-layer image with whiteouts, tagged whiteout-test:latest."""
    out = tmp_path_factory.mktemp("whiteout-archive") / "whiteout.tar"
    return docker_archive(out, whiteout_layers(busybox_layer), repo_tags=["whiteout-test:latest"])


@pytest.fixture(scope="session")
def platform_index(tmp_path_factory, busybox_layer) -> Path:
    """An OCI layout whose index offers linux/amd64 (/platform = "amd64") and linux/arm64/v8 ("arm64")."""
    out = tmp_path_factory.mktemp("platform-index") / "layout"
    images = []
    for platform in ({"architecture": "amd64", "os": "linux"},
                     {"architecture": "arm64", "os": "linux", "variant": "v8"}):
        marker = layer_tar({"platform": platform["architecture"] + "\n"})
        images.append((platform, [busybox_layer, marker], None))
    return oci_layout(out, images, ref_name="latest")
