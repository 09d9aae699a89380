"""/images/…: parse the request, call the image store (in a thread: it does disk I/O), shape the answer."""

import asyncio

from minictr.api.router import JSONResponse, StreamResponse, ndjson, route, spool_body
from minictr.errors import InvalidArgument, MinictrError


@route("GET", "/images/json")
async def list_images(req):
    from minictr.spec.filters import parse
    from minictr.images.usage import list_images as filtered

    filters = parse(req.arg("filters"))
    return JSONResponse(await asyncio.to_thread(filtered, req.services.images, filters, req.flag("all")))


@route("GET", "/images/{name*}/json")
async def inspect_image(req):
    return JSONResponse(await asyncio.to_thread(req.services.images.inspect, req.params["name"]))


@route("DELETE", "/images/{name*}")
async def remove_image(req):
    services = req.services
    # The image's id, for the events (an untag-only answer does not carry it); NotFound as remove's.
    image_id = (await asyncio.to_thread(services.images.resolve, req.params["name"])).id
    result = await asyncio.to_thread(services.images.remove, req.params["name"], req.flag("force"),
                                     services.containers.uses_image)
    # Events as Docker sends them: one per reference untagged (the image's id, the reference as its
    # name: `events --filter image=ID` sees them), one for the image (not its layers).
    deleted = [item["Deleted"] for item in result if "Deleted" in item]
    for item in result:
        if "Untagged" in item:
            _emit(req, "untag", deleted[0] if deleted else image_id, item["Untagged"])
    if deleted:
        _emit(req, "delete", deleted[0], deleted[0])
    return JSONResponse(result)


@route("POST", "/images/create")
async def create_image(req):
    """`docker import` (fromSrc=-, the tar in the body), or `docker pull` (fromImage: api/registry.py)."""
    if req.arg("fromSrc") != "-":
        if req.arg("fromImage"):
            from minictr.api.registry import pull_image

            return await pull_image(req)
        raise InvalidArgument("only fromSrc=- (the tarball in the request body) is supported")
    repo, tag = req.arg("repo"), req.arg("tag")
    reference = f"{repo}:{tag}" if repo and tag else repo
    changes = req.query.get("changes", [])
    message = req.arg("message") or ""
    spool = await spool_body(req)
    try:
        image_id = await asyncio.to_thread(req.services.images.import_tar, spool, reference, changes, message)
    finally:
        spool.close()
    _emit(req, "import", image_id, reference or image_id)
    return StreamResponse(_once({"status": image_id}))


@route("POST", "/images/load")
async def load_images(req):
    spool = await spool_body(req)
    try:
        loaded = await asyncio.to_thread(req.services.images.load, spool)
    except MinictrError as e:
        # Docker answers 200 and streams the error (docker-py raises ImageLoadError from it).
        return StreamResponse(_once({"errorDetail": {"message": str(e)}, "error": str(e)}))
    finally:
        spool.close()
    for name in loaded:
        _emit(req, "load", name, name)
    lines = [{"stream": f"Loaded image{' ID' if name.startswith('sha256:') else ''}: {name}\n"}
             for name in loaded]
    return StreamResponse(_many(lines))


def _emit(req, action, actor_id, name):
    req.services.events.emit("image", action, actor_id, {"name": name})



async def _once(obj):
    yield ndjson(obj)


async def _many(objs):
    for obj in objs:
        yield ndjson(obj)


@route("POST", "/images/prune")
async def prune_images(req):
    """`docker image prune [-a] [--filter until=…|label=…]` (and `docker system prune`)."""
    from minictr.spec.filters import parse
    from minictr.images.usage import prune

    services = req.services
    result = await asyncio.to_thread(prune, services.images, parse(req.arg("filters")),
                                     services.containers.uses_image)
    for item in result["ImagesDeleted"] or []:
        if "Untagged" in item:
            _emit(req, "untag", item["Untagged"], item["Untagged"])
    services.events.emit("image", "prune", "", {"reclaimed": result["SpaceReclaimed"]})
    return JSONResponse(result)


@route("GET", "/images/{name*}/history")
async def image_history(req):
    from minictr.images.usage import history

    return JSONResponse(await asyncio.to_thread(history, req.services.images, req.params["name"]))


@route("POST", "/images/{name*}/tag")
async def tag_image(req):
    """`docker tag`: ?repo=&tag= (tag defaults to latest); 201 with no body."""
    from minictr.api.router import EmptyResponse

    repo, tag = req.arg("repo") or "", req.arg("tag") or ""
    if not repo:
        raise InvalidArgument("repository name must have at least one component")
    reference = f"{repo}:{tag}" if tag else repo
    store = req.services.images
    await asyncio.to_thread(store.tag, req.params["name"], reference)
    image_id = (await asyncio.to_thread(store.resolve, reference)).id
    from minictr.spec import reference as references

    # Named as Docker names it, familiar (`evt:1`, not the docker CLI's `docker.io/library/evt:1`).
    _emit(req, "tag", image_id, references.parse(reference).familiar())
    return EmptyResponse(201)


@route("GET", "/images/get")
async def save_images(req):
    """`docker save IMAGE...`: ?names=a&names=b; an unknown name is a 404 before any byte."""
    return await _save(req, req.query.get("names", []))


@route("GET", "/images/{name*}/get")
async def save_image(req):
    return await _save(req, [req.params["name"]])


async def _save(req, names):
    from minictr.tasks import thread_stream
    from minictr.images import save

    if not names:
        raise InvalidArgument("no images to save: give one or more names")
    store = req.services.images
    images = await asyncio.to_thread(save.resolve_names, store, names)
    for image in images:
        for ref in image.references or [None]:
            _emit(req, "save", image.id, ref.familiar() if ref else image.id)
    return StreamResponse(thread_stream(lambda out: save.write_archive(store, images, out)),
                          content_type="application/x-tar")


@route("POST", "/images/{name*}/push")
async def push_image(req):
    """`docker push`: ?tag=, credentials in X-Registry-Auth. Errors before the first progress
    line get their status; later ones are an errorDetail line, as Docker streams them."""
    from minictr.api.registry import progress_response
    from minictr.spec import reference as references
    from minictr.images.push import Pusher
    from minictr.images.registry import decode_registry_auth

    name, tag = req.params["name"], req.arg("tag") or ""
    text = f"{name}:{tag}" if tag else name
    parsed = references.parse(text, default_tag=False)  # a bad reference: 400, nothing sent
    # No tag at all: every local tag of the repository (the API's meaning; `docker push -a`).
    all_tags = parsed.tag is None and parsed.digest is None
    familiar = parsed.familiar_name if all_tags else references.parse(text).familiar()
    credentials, _ = decode_registry_auth(req.headers.get("x-registry-auth"))

    def work(progress):
        pusher = Pusher(req.services.images, credentials, req.services.registries, progress=progress)
        return pusher.push_all_tags(name) if all_tags else pusher.push(text)

    return await progress_response(work, lambda result: _emit(req, "push", familiar, familiar))
