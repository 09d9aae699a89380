"""/containers/…: parse the request, call the container service, shape the answer."""

import json
import signal

from minictr.api.router import EmptyResponse, HijackResponse, JSONResponse, StreamResponse, route
from minictr.errors import InvalidArgument


@route("POST", "/containers/create")
async def create_container(req):
    body = await req.json()
    container_id = await req.services.containers.create(body, req.arg("name"))
    return JSONResponse({"Id": container_id, "Warnings": []}, 201)


@route("POST", "/containers/{id}/start")
async def start_container(req):
    started = await req.services.containers.start(req.params["id"])
    return EmptyResponse(204 if started else 304)


@route("POST", "/containers/{id}/attach")
async def attach_container(req):
    # Registered before the connection is hijacked: a 404 still answers as JSON, and a
    # `start` that races the 101 answer already finds this client.
    attach = req.services.containers.prepare_attach(req.params["id"], req.flag("stdin"),
                                                    req.flag("stdout"), req.flag("stderr"))
    return HijackResponse(attach.serve)


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
    await req.services.containers.kill(req.params["id"], _signal(req.arg("signal") or "KILL"))
    return EmptyResponse(204)


@route("GET", "/containers/json")
async def list_containers(req):
    return JSONResponse(req.services.containers.list(all=req.flag("all")))


@route("GET", "/containers/{id}/json")
async def inspect_container(req):
    return JSONResponse(req.services.containers.inspect(req.params["id"]))


@route("DELETE", "/containers/{id}")
async def remove_container(req):
    await req.services.containers.remove(req.params["id"], force=req.flag("force"))
    return EmptyResponse(204)


def _signal(name):
    if name.isdigit():
        return int(name)
    name = name.upper()
    try:
        return signal.Signals[name if name.startswith("SIG") else "SIG" + name]
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {name}") from None
