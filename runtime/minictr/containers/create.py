"""`create`: an API create body becomes a container record, its directories, mounts and
volumes (seeded from the image), and its network endpoints; nothing runs yet."""

import asyncio
import logging
import os
import secrets

from minictr.containers import config as container_config
from minictr.containers import namespaces, unsupported
from minictr.containers.logs import log_settings
from minictr.containers.names import random_name
from minictr.containers.state import State
from minictr.containers.store import Container
from minictr.errors import InvalidArgument, MinictrError
from minictr.spec import hosts
from minictr.spec.names import check_name
from minictr.spec.times import rfc3339

log = logging.getLogger("minictr.containers")


class Creator:
    def __init__(self, store, images, networks, mounting, deleter, groups, confinement, resources, open_root):
        self.store = store
        self.images = images
        self.networks = networks
        self.mounting = mounting
        self.deleter = deleter
        self.groups = groups
        self.confinement = confinement
        self.resources = resources
        self.open_root = open_root  # open_root(id): async context manager, an fd on the container's `/`

    async def create(self, body, name=None):
        """Create a container from an API create body; returns its id and the warnings for the
        create response."""
        self.groups.warm_migration()  # for the start that usually follows at once
        name = check_name(name) if name else random_name(self.store.names())
        self.store.check_name_free(name)
        if not body.get("Image"):
            raise InvalidArgument("No image specified")
        unsupported.check(body)  # a flag minictr would ignore: 400 naming it
        image = await asyncio.to_thread(self.images.resolve, body["Image"])
        container_id = secrets.token_hex(32)
        config, host_config = container_config.merge(body, image.config, container_id)
        log_settings(host_config)  # refuses a logging driver or option minictr does not have
        self.confinement.check(host_config)
        namespaces.check(body, host_config, self.store)
        warnings = self.resources.check(host_config)
        if not config["Entrypoint"] and not config["Cmd"]:
            raise InvalidArgument("No command specified")
        mounts = self.mounting.check(config, host_config, image.config or {})
        endpoints = self.networks.plan(container_id, host_config, body.get("NetworkingConfig"), body.get("MacAddress"))
        links = self.networks.links.plan(container_id, host_config)
        container = Container(id=container_id, name=name, image_id=image.id, image_ref=body["Image"],
                              config=config, host_config=host_config, created=rfc3339(), state=State.CREATED)
        seeds = await self._make(container, mounts, endpoints, links)
        self.store.add(container)
        if seeds:
            try:
                async with self.open_root(container.id) as root_fd:
                    await self.mounting.seed(root_fd, seeds)
            except (OSError, MinictrError) as e:
                log.warning("seeding the volumes of %s: %s", container.name, e)
        self.store.emit(container, "create")
        return container.id, warnings

    async def _make(self, container, mounts, endpoints, links):
        """The container's directories, mounts, row, endpoints and links (all gone again if one
        fails); returns the volumes to seed."""
        self._make_dirs(container)
        try:
            seeds = await asyncio.to_thread(self.mounting.attach, container, mounts)
            # The endpoints before the row: a daemon killed in between leaves endpoints of no
            # container, which its next start drops (and a directory, which it sweeps), never a
            # container without its networks.
            self.networks.record(endpoints)
            self.networks.links.record(links)
            self.store.insert(container)
            self.networks.write_files(container)
        except Exception:
            self.store.delete(container)
            self.deleter.remove_files(container)
            self.mounting.remove_anonymous(container)
            await asyncio.to_thread(self.networks.container_removed, container.id)
            raise
        return seeds

    def _make_dirs(self, container):
        top = self.store.paths(container)["top"]
        os.makedirs(top, 0o700)
        for sub in ("diff", "work", "rootfs"):
            os.mkdir(os.path.join(top, sub), 0o755)
        with open(os.path.join(top, "hostname"), "w") as f:
            f.write(container.config["Hostname"] + "\n")
        with open(os.path.join(top, "hosts"), "w") as f:
            f.write(hosts.hosts_file(container.config["Hostname"]))
        # Docker's empty /.dockerenv: tools tell that they run in a container by it (Testcontainers
        # then reaches its containers through the gateway).
        open(os.path.join(top, "dockerenv"), "w").close()
