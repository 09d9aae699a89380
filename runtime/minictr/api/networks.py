"""/networks/…: parse the request, call the network service, shape the answer (Docker Engine API's
NetworkCreate, NetworkList, NetworkInspect, NetworkDelete, NetworkPrune, NetworkConnect,
NetworkDisconnect). What a request asks that minictr does not do is refused with a 400 naming it,
never ignored."""

import asyncio
import time

from minictr.api.router import EmptyResponse, JSONResponse, route
from minictr.errors import Forbidden, InvalidArgument
from minictr.spec.times import until_filter

_PRUNE_FILTERS = {"until", "label", "label!"}


def _filters(req):
    from minictr.spec.filters import parse

    return parse(req.arg("filters"))


@route("GET", "/networks")
async def list_networks(req):
    service = req.services.networks
    filters = _filters(req)
    for value in filters.get("dangling", []):
        if value.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={value}'")
    for value in filters.get("type", []):
        if value not in ("custom", "builtin"):
            raise InvalidArgument(f"invalid filter: 'type'='{value}'")
    networks = await asyncio.to_thread(service.list, filters)
    # Docker's list leaves the attached containers out (API >= 1.28): inspect has them.
    return JSONResponse([dict(service.to_api(n), Containers={}) for n in networks])


def _create_arguments(body):
    """NetworkCreate's body (its types checked) as the service's arguments; what we do not do is a 400."""
    if body.get("EnableIPv4") is False:
        raise InvalidArgument("networks without IPv4 are not supported (EnableIPv4: false)")
    _check_swarm_fields(body)
    labels = body.get("Labels") or {}
    ipam = body.get("IPAM") or {}
    if ipam.get("Driver") not in (None, "", "default"):
        raise InvalidArgument(f"IPAM driver {ipam['Driver']!r} is not supported (only \"default\")")
    if ipam.get("Options"):
        raise InvalidArgument(f"IPAM option {sorted(ipam['Options'])[0]!r} is not supported")
    config, config6 = _ipam_configs(ipam.get("Config") or [])
    # Attachable only matters to swarm services; on a local bridge Docker stores and reports it, and
    # Compose 1.29 asks for it on every project network.
    return {"name": body.get("Name"), "driver": body.get("Driver") or "bridge", "subnet": config.get("Subnet"),
            "gateway": config.get("Gateway"), "ip_range": config.get("IPRange"),
            "internal": bool(body.get("Internal")), "labels": labels, "attachable": bool(body.get("Attachable")),
            "options": body.get("Options") or {}, "aux_addresses": config.get("AuxiliaryAddresses") or {},
            "ipv6": bool(body.get("EnableIPv6")), "subnet6": config6.get("Subnet"), "gateway6": config6.get("Gateway")}


def _ipam_configs(entries):
    """IPAM.Config -> (the IPv4 entry, the IPv6 entry), {} for one not given: one of each at most,
    told apart by their subnet (`docker network create --subnet A --subnet B`)."""
    chosen = {4: {}, 6: {}}
    for entry in entries:
        entry = entry or {}
        version = 6 if ":" in (entry.get("Subnet") or entry.get("Gateway") or "") else 4
        if chosen[version]:
            raise InvalidArgument(f"only one IPv{version} IPAM configuration per network is supported")
        if version == 6 and entry.get("IPRange"):
            raise InvalidArgument("an IPv6 IPRange is not supported")
        if version == 6 and entry.get("AuxiliaryAddresses"):
            raise InvalidArgument("IPAM AuxiliaryAddresses of an IPv6 subnet are not supported")
        chosen[version] = entry
    return chosen[4], chosen[6]


def _check_swarm_fields(body):
    """The fields of swarm networks, refused as Docker 20.10 refuses them without a swarm (libnetwork's
    words, 403); a configuration-only network, which Docker would keep for ConfigFrom, we do not make."""
    if body.get("ConfigOnly"):
        if body.get("Ingress") or body.get("Internal") or body.get("Attachable") or body.get("Scope"):
            raise Forbidden("configuration network can only contain network specific fields. Network operator "
                            "fields like [ ingress | internal | attachable | scope ] are not supported.")
        raise InvalidArgument("configuration-only networks (ConfigOnly) are not supported")
    if (body.get("ConfigFrom") or {}).get("Network"):
        raise InvalidArgument("networks made from a configuration network (ConfigFrom) are not supported")
    if body.get("Scope") == "swarm":
        raise Forbidden("cannot create a swarm scoped network when swarm is not active")
    if body.get("Scope") not in (None, "", "local"):
        raise InvalidArgument(f"scope {body['Scope']!r} is not supported: networks are local")
    if body.get("Ingress"):
        raise Forbidden("Ingress network can only be global scope network")


@route("POST", "/networks/create")
async def create_network(req):
    body = await req.json("NetworkCreateRequest")
    network = await asyncio.to_thread(req.services.networks.create, **_create_arguments(body))
    return JSONResponse({"Id": network.id, "Warning": ""}, 201)


@route("POST", "/networks/prune")
async def prune_networks(req):
    from minictr.spec.filters import labels_match
    from minictr.spec.times import rfc3339_to_unix
    from minictr.errors import MinictrError

    filters = _filters(req)
    unknown = set(filters) - _PRUNE_FILTERS
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    until = until_filter(filters.get("until"), time.time())
    service = req.services.networks

    def prune():
        removed = []
        for network in service.list({"dangling": ["true"]}):
            if until is not None and rfc3339_to_unix(network.created) > until:
                continue
            if not labels_match(filters.get("label"), network.labels):
                continue
            if filters.get("label!") and any(labels_match([f], network.labels) for f in filters["label!"]):
                continue
            try:
                service.remove(network.id)
                removed.append(network.name)
            except MinictrError:
                continue  # a container was connected meanwhile
        return removed

    removed = await asyncio.to_thread(prune)
    return JSONResponse({"NetworksDeleted": removed or None})


@route("GET", "/networks/{id}")
async def inspect_network(req):
    scope = req.arg("scope")
    if scope not in (None, "", "local"):
        raise InvalidArgument(f"scope {scope!r} is not supported: networks are local")
    # `verbose` only adds swarm services' details in Docker: a local network's answer is the same.
    service = req.services.networks
    return JSONResponse(service.to_api(service.get(req.params["id"])))


@route("DELETE", "/networks/{id}")
async def remove_network(req):
    await asyncio.to_thread(req.services.networks.remove, req.params["id"])
    return EmptyResponse(204)


def _running_pid(container):
    return container.pid if container.state.alive else 0


def _container(req, body):
    if not body.get("Container"):
        raise InvalidArgument("no container specified (Container)")
    req.services.networks.get(req.params["id"])  # a missing network is named before the container
    return req.services.containers.get(body["Container"])


@route("POST", "/networks/{id}/connect")
async def connect_network(req):
    body = await req.json("NetworkConnectRequest")
    container = _container(req, body)
    endpoint = body.get("EndpointConfig") or {}
    ipam = endpoint.get("IPAMConfig") or {}
    if endpoint.get("DriverOpts"):
        raise InvalidArgument("EndpointConfig.DriverOpts is not supported on network connect")
    async with container.lock:
        await asyncio.to_thread(req.services.networks.connect, req.params["id"], container,
                                ipam.get("IPv4Address") or None, endpoint.get("Aliases") or [],
                                _running_pid(container), endpoint.get("Links") or [], endpoint.get("MacAddress"),
                                ipam.get("LinkLocalIPs") or [], ipam.get("IPv6Address") or None)
    return EmptyResponse(200)


@route("POST", "/networks/{id}/disconnect")
async def disconnect_network(req):
    body = await req.json("NetworkDisconnectRequest")
    container = _container(req, body)
    async with container.lock:
        await asyncio.to_thread(req.services.networks.disconnect, req.params["id"], container,
                                bool(body.get("Force")))
    return EmptyResponse(200)
