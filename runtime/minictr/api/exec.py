"""/containers/{id}/exec and /exec/…: parse the request, call the exec service, shape the answer."""

from minictr.api.router import EmptyResponse, HijackResponse, JSONResponse, route, stream_content_type
from minictr.errors import InvalidArgument


@route("POST", "/containers/{id}/exec")
async def create_exec(req):
    body = await req.json()
    return JSONResponse({"Id": req.services.execs.create(req.params["id"], body)}, 201)


@route("POST", "/exec/{id}/start")
async def start_exec(req):
    body = await req.json()
    execs = req.services.execs
    # Checked before the hijack, so that these errors still answer as JSON.
    instance = execs.claim(req.params["id"])
    start_tty = body.get("Tty")
    if start_tty is not None:
        instance.tty = instance.tty or bool(start_tty)
    # The start request's Tty decides the framing, as in Docker 20.10: docker-py's exec_start sends
    # {"Tty": false} for an exec created with a tty, and then reads 8-byte frames.
    instance.framed = not (instance.tty if start_tty is None else bool(start_tty))
    if body.get("ConsoleSize"):
        instance.console_size = body["ConsoleSize"]
    if body.get("Detach"):
        await execs.start_detached(instance)
        return EmptyResponse(200)

    async def run(reader, writer, early):
        await execs.serve(instance, reader, writer, early)

    return HijackResponse(run, stream_content_type(req, not instance.framed))


@route("GET", "/exec/{id}/json")
async def inspect_exec(req):
    return JSONResponse(req.services.execs.inspect(req.params["id"]))


@route("POST", "/exec/{id}/resize")
async def resize_exec(req):
    try:
        height, width = int(req.arg("h") or 0), int(req.arg("w") or 0)
    except ValueError:
        raise InvalidArgument("h and w must be integers") from None
    await req.services.execs.resize(req.params["id"], height, width)
    return EmptyResponse(200)
