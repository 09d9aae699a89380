"""/networks/…: parse the request, call the network service, shape the answer."""

import asyncio

from minictr.api.router import EmptyResponse, JSONResponse, route
from minictr.containers.state import State
from minictr.errors import InvalidArgument


def _filters(req):
    from minictr.containers.filters import parse

    return parse(req.arg("filters"))


@route("GET", "/networks")
async def list_networks(req):
    service = req.services.networks
    return JSONResponse([service.to_api(n) for n in service.list(_filters(req))])


@route("POST", "/networks/create")
async def create_network(req):
    body = await req.json()
    config = ((body.get("IPAM") or {}).get("Config") or [{}])
    if len(config) > 1:
        raise InvalidArgument("only one IPAM configuration per network is supported")
    ipam = config[0] if config else {}
    network = await asyncio.to_thread(
        req.services.networks.create, body.get("Name"), body.get("Driver") or "bridge", ipam.get("Subnet"),
        ipam.get("Gateway"), ipam.get("IPRange"), bool(body.get("Internal")), body.get("Labels"))
    return JSONResponse({"Id": network.id, "Warning": ""}, 201)


@route("POST", "/networks/prune")
async def prune_networks(req):
    removed = await asyncio.to_thread(req.services.networks.prune, _filters(req))
    return JSONResponse({"NetworksDeleted": removed or None})


@route("GET", "/networks/{id}")
async def inspect_network(req):
    service = req.services.networks
    return JSONResponse(service.to_api(service.get(req.params["id"])))


@route("DELETE", "/networks/{id}")
async def remove_network(req):
    await asyncio.to_thread(req.services.networks.remove, req.params["id"])
    return EmptyResponse(204)


def _running_pid(container):
    return container.pid if container.state in (State.RUNNING, State.PAUSED) else 0


@route("POST", "/networks/{id}/connect")
async def connect_network(req):
    body = await req.json()
    container = req.services.containers.get(body.get("Container") or "")
    endpoint = body.get("EndpointConfig") or {}
    ip = (endpoint.get("IPAMConfig") or {}).get("IPv4Address")
    async with container.lock:
        await asyncio.to_thread(req.services.networks.connect, req.params["id"], container, ip,
                                endpoint.get("Aliases") or [], _running_pid(container))
    return EmptyResponse(200)


@route("POST", "/networks/{id}/disconnect")
async def disconnect_network(req):
    body = await req.json()
    container = req.services.containers.get(body.get("Container") or "")
    async with container.lock:
        await asyncio.to_thread(req.services.networks.disconnect, req.params["id"], container,
                                bool(body.get("Force")))
    return EmptyResponse(200)
