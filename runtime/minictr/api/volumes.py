"""/volumes/…: parse the request, call the volume service, shape the answer."""

import asyncio

from minictr.api.router import EmptyResponse, JSONResponse, api_version_before, route


def _filters(req):
    from minictr.spec.filters import parse

    return parse(req.arg("filters"))


@route("GET", "/volumes")
async def list_volumes(req):
    volumes = req.services.volumes.list(_filters(req))
    return JSONResponse({"Volumes": [v.to_api() for v in volumes], "Warnings": []})


@route("POST", "/volumes/create")
async def create_volume(req):
    body = await req.json("VolumeCreateRequest")
    # No name: a random one, labelled anonymous as Docker's (so `volume prune` without -a takes it).
    volume = req.services.volumes.create(body.get("Name") or None, body.get("Driver") or "local",
                                         body.get("Labels"), body.get("DriverOpts"), anonymous=not body.get("Name"))
    return JSONResponse(volume.to_api(), 201)


@route("POST", "/volumes/prune")
async def prune_volumes(req):
    filters = _filters(req)
    # API 1.42 made prune take only anonymous volumes; older clients (the docker CLI 20.10 speaks
    # 1.41) still get every unused volume, as Docker's router adds `all=true` for them.
    if api_version_before(req, "1.42"):
        filters.setdefault("all", ["true"])
    deleted, reclaimed = await asyncio.to_thread(req.services.volumes.prune, filters)
    return JSONResponse({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


@route("GET", "/volumes/{name}")
async def inspect_volume(req):
    return JSONResponse(req.services.volumes.get(req.params["name"]).to_api())


@route("DELETE", "/volumes/{name}")
async def remove_volume(req):
    await asyncio.to_thread(req.services.volumes.remove, req.params["name"], req.flag("force"))
    return EmptyResponse(204)
