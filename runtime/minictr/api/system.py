"""/_ping, /version, /info."""

import os
import platform

from minictr import API_VERSION, MIN_API_VERSION, __version__
from minictr.api.router import JSONResponse, TextResponse, route
from minictr.api.swarm import swarm_info
from minictr.errors import NotFound


@route("GET", "/_ping")
async def ping(req):
    response = TextResponse("OK")
    # As Docker's: clients must not cache the ping; Builder-Version 1 (no BuildKit) makes the docker
    # CLI use the classic builder, whose POST /build answers 501 "minictr does not support build".
    response.headers = [("Builder-Version", "1"), ("Cache-Control", "no-cache, no-store, must-revalidate"),
                        ("Pragma", "no-cache")]
    return response


@route("GET", "/version")
async def version(req):
    uname = platform.uname()
    # Docker's fields; GoVersion names the interpreter that runs the daemon (we have no Go).
    facts = {"GitCommit": "", "GoVersion": f"{platform.python_implementation().lower()}{platform.python_version()}",
             "Os": "linux", "Arch": _docker_arch(uname.machine), "KernelVersion": uname.release, "BuildTime": ""}
    # The docker CLI prints the engine's lines from the component's details (moby's SystemVersion).
    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, **facts, "Experimental": "false"}
    return JSONResponse({
        "Platform": {"Name": "minictr"},
        "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        **facts,
        "Experimental": False,
    })


@route("GET", "/info")
async def info(req):
    services = req.services
    containers = services.containers.list(all=True)
    running = sum(1 for c in containers if c["State"] == "running")
    uname = platform.uname()
    security = ["name=rootless"] if services.rootless else []
    return JSONResponse({
        "ID": services.daemon_id,
        "Containers": len(containers),
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": len(containers) - running,
        "Images": len(services.images.list_images()),
        "Driver": services.driver.name,
        "DriverStatus": services.driver.status(services.data_root),
        "DockerRootDir": services.data_root,
        "Name": uname.node,
        "OperatingSystem": _os_name(),
        "OSType": "linux",
        "Architecture": uname.machine,
        "KernelVersion": uname.release,
        "NCPU": os.cpu_count(),
        "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1",
        "SecurityOptions": security,
        "ServerVersion": __version__,
        "LoggingDriver": "json-file",
        "Runtimes": {"minictr": {"path": "minictr-monitor"}},
        "DefaultRuntime": "minictr",
        "LiveRestoreEnabled": True,
        "Debug": services.config.debug,
        "Swarm": swarm_info(),
        "Warnings": services.warnings,
    })


def _docker_arch(machine):
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


# What `docker system prune` calls besides /containers/, /images/, /volumes/ and /networks/prune
# (api/networks.py): minictr has no build cache yet, so nothing goes.

@route("POST", "/build/prune")
async def prune_build_cache(req):
    return JSONResponse({"CachesDeleted": [], "SpaceReclaimed": 0})


@route("GET", "/plugins/{name}/json")
async def inspect_plugin(req):
    # minictr has no plugins, so no name is one (Docker's 404 for a plugin it lacks). `docker inspect NAME`
    # asks for a plugin after containers, images, networks and volumes: only a 404 lets it print
    # "Error: No such object: NAME" (a 501 stops it with the plugins refusal instead).
    raise NotFound(f'plugin "{req.params["name"]}" not found')


@route("GET", "/system/df")
async def disk_usage(req):
    """`docker system df`: images (LayersSize, each with Containers and SharedSize), containers
    (SizeRw, SizeRootFs), local volumes (UsageData), build cache (none). `type=` narrows it."""
    import asyncio

    from minictr.containers.config import directory_size
    from minictr.images.usage import disk_usage as image_usage

    services = req.services
    kinds = set(req.query.get("type", [])) or {"image", "container", "volume", "build-cache"}
    unknown = kinds - {"image", "container", "volume", "build-cache"}
    if unknown:
        from minictr.errors import InvalidArgument

        raise InvalidArgument(f"unknown object type: {sorted(unknown)[0]}")

    def gather():
        answer = {}
        if "image" in kinds:
            containers = services.containers.list(all=True)
            answer["LayersSize"], answer["Images"] = image_usage(
                services.images, [services.containers.get(c["Id"]) for c in containers])
        if "container" in kinds:
            answer["Containers"] = services.containers.list(all=True, size=True)
        if "volume" in kinds:
            answer["Volumes"] = []
            for volume in services.volumes.list():
                document = volume.to_api()
                document["UsageData"] = {"Size": directory_size(volume.mountpoint),
                                         "RefCount": len(services.volumes._users(volume.name))}
                answer["Volumes"].append(document)
        if "build-cache" in kinds:
            answer["BuildCache"] = []
            answer["BuilderSize"] = 0  # Docker 20.10's deprecated total of the build cache; docker-py reads it
        return answer

    return JSONResponse(await asyncio.to_thread(gather))
