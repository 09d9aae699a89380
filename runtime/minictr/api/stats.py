"""/containers/{id}/stats and /containers/{id}/update: a container's resource use, and new limits."""

import asyncio
import json

from minictr.api.router import JSONResponse, StreamResponse, route
from minictr.containers import stats
from minictr.errors import MinictrError


@route("GET", "/containers/{id}/stats")
async def container_stats(req):
    """stream=1 (Docker's default): a sample every second while the container runs; stream=0: one, with
    precpu_stats a second earlier unless one-shot=1."""
    containers = req.services.containers
    container_id = containers.get(req.params["id"]).id
    stream, one_shot = req.flag("stream", True), req.flag("one-shot")

    async def samples():
        previous = None
        if not stream and not one_shot:
            previous = await asyncio.to_thread(stats.collect, containers, container_id)
            await asyncio.sleep(1)
        while True:
            try:
                current = await asyncio.to_thread(stats.collect, containers, container_id)
            except MinictrError:
                return  # removed meanwhile
            current = stats.with_previous(current, previous)
            yield (json.dumps(current) + "\n").encode()
            if not stream or current["cpu_stats"]["online_cpus"] == 0:
                return
            previous = current
            await asyncio.sleep(1)

    return StreamResponse(samples())


@route("POST", "/containers/{id}/update")
async def update_container(req):
    body = await req.json("UpdateConfig")
    warnings = await req.services.containers.update(req.params["id"], body)
    return JSONResponse({"Warnings": warnings})
