"""Registry endpoints: POST /images/create?fromImage= (pull, reached through images.create_image) and
POST /auth (`docker login`). The pull runs in a thread; its progress is streamed as Docker's JSON lines."""

import asyncio
import re

from minictr.api.router import JSONResponse, StreamResponse, ndjson, route
from minictr.errors import MinictrError
from minictr.tasks import spawn

_DIGEST_TAG = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_DONE = object()


def pull_reference(from_image: str, tag: str | None) -> str:
    """fromImage and tag as the docker CLI sends them; `tag` may be a digest (`sha256:…`)."""
    if not tag:
        return from_image
    return f"{from_image}{'@' if _DIGEST_TAG.fullmatch(tag) else ':'}{tag}"


async def pull_image(req):
    """`docker pull`: errors before the first progress line are answered with their status (as
    Docker: a missing manifest is a 404); later ones as an errorDetail line in the stream."""
    from minictr.spec import reference as references
    from minictr.images.pull import Puller, parse_platform
    from minictr.images.registry import decode_registry_auth

    text = pull_reference(req.arg("fromImage"), req.arg("tag"))
    parsed = references.parse(text, default_tag=False)  # a bad reference: 400, nothing sent
    if req.services.embedded_image.names(text):
        return await _pull_embedded(req)
    # No tag in fromImage nor in `tag`: every tag of the repository (the API's meaning; `docker pull -a`).
    all_tags = parsed.tag is None and parsed.digest is None
    platform = req.arg("platform") or None
    parse_platform(platform)
    credentials, _ = decode_registry_auth(req.headers.get("x-registry-auth"))

    def pulled(result):
        req.services.events.emit("image", "pull", result["reference"], {"name": result["reference"]})

    def work(progress):
        puller = Puller(req.services.images, credentials, req.services.registries, progress=progress)
        return puller.pull_all_tags(text, platform) if all_tags else puller.pull(text, platform)

    return await progress_response(work, pulled)


async def _pull_embedded(req):
    """`pull busybox-local`: the embedded image comes from its archive, never from a registry."""
    from minictr.images.embedded import REFERENCE

    imported = await asyncio.to_thread(req.services.embedded_image.provide, REFERENCE)
    if imported:
        req.services.events.emit("image", "pull", REFERENCE, {"name": REFERENCE})
    status = "Downloaded newer image" if imported else "Image is up to date"
    return StreamResponse(_line({"status": f"Status: {status} for busybox-local:latest"}))


async def _line(obj):
    yield ndjson(obj)


async def progress_response(work, on_result):
    """Run `work(progress)` in a thread and stream the progress objects it reports as Docker's JSON
    lines (pull, push). An error before the first line is raised, so that it gets its HTTP status; a later
    one becomes an errorDetail line. `on_result(result)` runs on the event loop once the work is done."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    def put(item):
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def run():
        try:
            put(("result", work(put)))
        except BaseException as error:  # noqa: BLE001 - handed to the event loop
            put(error)
        put(_DONE)

    spawn(asyncio.to_thread(run))
    first = await queue.get()
    if isinstance(first, BaseException):
        raise first

    async def stream():
        item = first
        while item is not _DONE:
            if isinstance(item, tuple):
                on_result(item[1])
            elif isinstance(item, BaseException):
                message = str(item) if isinstance(item, MinictrError) else f"internal error: {item}"
                yield ndjson({"errorDetail": {"message": message}, "error": message})
            else:
                yield ndjson(item)
            item = await queue.get()

    return StreamResponse(stream())


@route("POST", "/auth")
async def auth(req):
    """`docker login`: check the credentials against the registry (GET /v2/ with its auth flow)."""
    from minictr.images.registry import Credentials, RegistryClient

    body = await req.json()
    server = _server_domain(body.get("serveraddress") or "")
    credentials = Credentials(username=body.get("username") or "", password=body.get("password") or "",
                              identity_token=body.get("identitytoken") or "")

    def check():
        with RegistryClient(server, credentials, req.services.registries) as client:
            client.ping()

    await asyncio.to_thread(check)
    return JSONResponse({"Status": "Login Succeeded", "IdentityToken": ""})


def _server_domain(address: str) -> str:
    """`https://index.docker.io/v1/`, `localhost:5000`, `http://127.0.0.1:5000/` → the registry's host[:port]."""
    address = re.sub(r"^[a-z]+://", "", address.strip()).split("/")[0]
    return address or "docker.io"
