"""/containers/…: parse the request, call the container service, shape the answer."""

import asyncio
import json

from minictr.api.router import EmptyResponse, HijackResponse, JSONResponse, StreamResponse, route, stream_content_type
from minictr.errors import InvalidArgument
from minictr.spec.signals import parse_signal


@route("POST", "/containers/create")
async def create_container(req):
    from minictr.spec.ports import wanted_bindings

    body = await req.json("ContainerConfig")
    # A host port is checked here, as Docker's create does, not first when the container starts.
    wanted_bindings(body.get("HostConfig") or {}, None)
    containers = req.services.containers
    await asyncio.to_thread(req.services.embedded_image.provide, body.get("Image"))
    container_id, warnings = await containers.create(body, req.arg("name"))
    return JSONResponse({"Id": container_id, "Warnings": warnings}, 201)


@route("POST", "/containers/{id}/start")
async def start_container(req):
    started = await req.services.containers.start(req.params["id"])
    return EmptyResponse(204 if started else 304)


@route("POST", "/containers/{id}/attach")
async def attach_container(req):
    # Registered before the connection is hijacked: a 404 still answers as JSON, and a
    # `start` that races the 101 answer already finds this client.
    attach = req.services.containers.prepare_attach(req.params["id"], req.flag("stdin"),
                                                    req.flag("stdout"), req.flag("stderr"),
                                                    req.arg("detachKeys"))
    return HijackResponse(attach.serve, stream_content_type(req, attach.tty))


@route("POST", "/containers/{id}/resize")
async def resize_container(req):
    try:
        height, width = int(req.arg("h") or 0), int(req.arg("w") or 0)
    except ValueError:
        raise InvalidArgument("h and w must be integers") from None
    await req.services.containers.resize(req.params["id"], height, width)
    return EmptyResponse(200)


@route("POST", "/containers/{id}/wait")
async def wait_container(req):
    containers = req.services.containers
    container_id = containers.get(req.params["id"]).id
    condition = req.arg("condition") or "not-running"

    async def body():
        code = await containers.wait(container_id, condition)
        yield json.dumps({"StatusCode": code, "Error": None}).encode()

    return StreamResponse(body())


@route("POST", "/containers/{id}/kill")
async def kill_container(req):
    await req.services.containers.kill(req.params["id"], parse_signal(req.arg("signal") or "KILL"))
    return EmptyResponse(204)


@route("POST", "/containers/{id}/stop")
async def stop_container(req):
    stopped = await req.services.containers.stop(req.params["id"], _timeout(req), req.arg("signal"))
    return EmptyResponse(204 if stopped else 304)


@route("POST", "/containers/{id}/restart")
async def restart_container(req):
    await req.services.containers.restart(req.params["id"], _timeout(req), req.arg("signal"))
    return EmptyResponse(204)


@route("POST", "/containers/{id}/pause")
async def pause_container(req):
    await req.services.containers.pause(req.params["id"])
    return EmptyResponse(204)


@route("POST", "/containers/{id}/unpause")
async def unpause_container(req):
    await req.services.containers.unpause(req.params["id"])
    return EmptyResponse(204)


@route("POST", "/containers/{id}/rename")
async def rename_container(req):
    if not req.arg("name"):
        raise InvalidArgument("Neither old nor new names may be empty")
    await req.services.containers.rename(req.params["id"], req.arg("name"))
    return EmptyResponse(204)


def _timeout(req):
    value = req.arg("t") or req.arg("timeout")
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"invalid value for t: {value!r}: an integer number of seconds") from None


@route("GET", "/containers/json")
async def list_containers(req):
    from minictr.spec import filters

    try:
        limit = int(req.arg("limit") or -1)
    except ValueError:
        raise InvalidArgument(f"invalid limit: {req.arg('limit')}") from None
    containers = req.services.containers
    size = req.flag("size")
    listing = lambda: containers.list(all=req.flag("all"), filters=filters.parse(req.arg("filters")),
                                      limit=limit, size=size)
    # Sizes walk the containers' upper dirs: off the event loop.
    return JSONResponse(await asyncio.to_thread(listing) if size else listing())


@route("GET", "/containers/{id}/json")
async def inspect_container(req):
    containers = req.services.containers
    if req.flag("size"):
        info = await asyncio.to_thread(containers.inspect, req.params["id"], True)
    else:
        info = containers.inspect(req.params["id"])
    info["ExecIDs"] = req.services.execs.running_ids(info["Id"]) or None
    return JSONResponse(info)


# `{id*}`: the docker CLI sends `rm --link /PARENT/ALIAS` unquoted (/containers//PARENT/ALIAS).
@route("DELETE", "/containers/{id*}")
async def remove_container(req):
    if req.flag("link"):  # `rm --link /PARENT/ALIAS`: that legacy link goes, no container
        await asyncio.to_thread(req.services.networks.remove_link, req.params["id"])
        return EmptyResponse(204)
    await req.services.containers.remove(req.params["id"], force=req.flag("force"), volumes=req.flag("v"))
    return EmptyResponse(204)


@route("POST", "/containers/prune")
async def prune_containers(req):
    """Remove every stopped container (created, exited, dead) that passes the label filters."""
    from minictr.spec.filters import labels_match, parse
    from minictr.errors import MinictrError

    filters = parse(req.arg("filters"))
    unknown = set(filters) - {"label", "label!"}
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    containers = req.services.containers
    stopped = [c for c in await asyncio.to_thread(containers.list, True, None, -1, True)
               if c["State"] in ("created", "exited", "dead")
               and labels_match(filters.get("label"), c.get("Labels") or {})
               and not any(labels_match([item], c.get("Labels") or {}) for item in filters.get("label!", []))]
    deleted, reclaimed = [], 0
    for summary in stopped:
        try:
            await containers.remove(summary["Id"])
        except MinictrError:
            continue  # started or removed meanwhile
        deleted.append(summary["Id"])
        reclaimed += summary.get("SizeRw") or 0
    return JSONResponse({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})


@route("POST", "/commit")
async def commit_container(req):
    """`docker commit`: ?container=&repo=&tag=&comment=&author=&pause=&changes=…, the body an
    optional container config whose fields override the container's."""
    container = req.arg("container") or ""
    if not container:
        raise InvalidArgument("No container name or ID supplied")
    repo, tag = req.arg("repo") or "", req.arg("tag") or ""
    reference = (f"{repo}:{tag}" if tag else repo) if repo else None
    if tag and not repo:
        raise InvalidArgument("tag requires a repository")
    overrides = await req.json("ContainerConfig")
    image_id = await req.services.containers.commit(
        container, reference=reference, changes=req.query.get("changes", []), overrides=overrides or None,
        message=req.arg("comment") or "", author=req.arg("author") or "", pause=req.flag("pause", True))
    target = req.services.containers.get(container)
    req.services.events.emit("container", "commit", target.id,
                             {"comment": req.arg("comment") or "", "imageID": image_id,
                              "imageRef": reference or "", "name": target.name})
    return JSONResponse({"Id": image_id}, 201)
