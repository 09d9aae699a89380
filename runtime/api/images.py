"""/images/…: parse the request, call the image store (in a thread: it does disk I/O), shape the answer."""

import asyncio

from minictr.api.router import JSONResponse, StreamResponse, ndjson, route, spool_body
from minictr.errors import InvalidArgument, MinictrError


@route("GET", "/images/json")
async def list_images(req):
    return JSONResponse(await asyncio.to_thread(req.services.images.list_images))


@route("GET", "/images/{name*}/json")
async def inspect_image(req):
    return JSONResponse(await asyncio.to_thread(req.services.images.inspect, req.params["name"]))


@route("DELETE", "/images/{name*}")
async def remove_image(req):
    services = req.services
    result = await asyncio.to_thread(services.images.remove, req.params["name"], req.flag("force"),
                                     services.containers.uses_image)
    # Events as Docker sends them: one per reference untagged, one for the image (not its layers).
    deleted = [item["Deleted"] for item in result if "Deleted" in item]
    for item in result:
        if "Untagged" in item:
            _emit(req, "untag", deleted[0] if deleted else item["Untagged"], item["Untagged"])
    if deleted:
        _emit(req, "delete", deleted[0], deleted[0])
    return JSONResponse(result)


@route("POST", "/images/create")
async def create_image(req):
    """`docker import` (fromSrc=-, the tar in the body). Pulls (fromImage) come with the registry client."""
    if req.arg("fromSrc") != "-":
        if req.arg("fromImage"):
            raise MinictrError(f"pull access denied for {req.arg('fromImage')}: "
                               "this minictr cannot pull from registries yet; use `minictr load` or `minictr import`")
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
    """`docker system prune` calls this: minictr does not prune images yet, so nothing goes."""
    return JSONResponse({"ImagesDeleted": [], "SpaceReclaimed": 0})


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
    _emit(req, "tag", image_id, reference if tag else f"{repo}:latest")
    return EmptyResponse(201)
