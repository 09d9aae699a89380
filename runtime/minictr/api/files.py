"""/containers/{id}/archive, changes, export, top: parse, call runtime/containers/files.py, shape the answer."""

from minictr.api.router import EmptyResponse, JSONResponse, StreamResponse, route, spool_body
from minictr.containers import files
from minictr.errors import InvalidArgument

_STAT_HEADER = "X-Docker-Container-Path-Stat"


def _path(req):
    path = req.arg("path")
    if not path:
        raise InvalidArgument("path is required")
    return path


@route("GET", "/containers/{id}/archive")
async def get_archive(req):
    """GET: a tar of the path; HEAD (routed here too): only its stat header."""
    services, ref, path = req.services, req.params["id"], _path(req)
    if req.method == "HEAD":
        path_stat = await files.stat_path(services.containers, ref, path)
        response = EmptyResponse(200)
    else:
        path_stat, chunks = await files.archive_path(services.containers, ref, path)
        response = StreamResponse(chunks, "application/x-tar")
    response.headers = [(_STAT_HEADER, files.encode_path_stat(path_stat))]
    return response


@route("PUT", "/containers/{id}/archive")
async def put_archive(req):
    services, ref, path = req.services, req.params["id"], _path(req)
    services.containers.get(ref)  # 404 before reading a body for nothing
    spool = await spool_body(req)
    try:
        await files.extract_to_dir(services.containers, ref, path, spool,
                                   no_overwrite_dir_non_dir=req.flag("noOverwriteDirNonDir"),
                                   copy_uid_gid=req.flag("copyUIDGID"))
    finally:
        spool.close()
    return EmptyResponse(200)


@route("GET", "/containers/{id}/changes")
async def container_changes(req):
    return JSONResponse(await files.changes(req.services.containers, req.params["id"]))


@route("GET", "/containers/{id}/export")
async def export_container(req):
    return StreamResponse(await files.export(req.services.containers, req.params["id"]), "application/x-tar")


@route("GET", "/containers/{id}/top")
async def top_container(req):
    return JSONResponse(await files.top(req.services.containers, req.params["id"], req.arg("ps_args") or "-ef"))
