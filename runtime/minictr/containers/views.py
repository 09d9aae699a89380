"""What a user sees of containers: the list (`ps`), inspect, and their sizes."""

import os

from minictr.containers import config as container_config
from minictr.containers.filters import ContainerFilter
from minictr.errors import InvalidArgument, MinictrError, NotFound


class Views:
    def __init__(self, store, images, mounting, networks, ports):
        self.store = store
        self.images = images
        self.mounting = mounting
        self.networks = networks
        self.ports = ports  # published ports (networks/ports.py ContainerPorts), or None

    def list(self, all=False, filters=None, limit=-1, size=False):
        """GET /containers/json: newest first; `filters` is {key: [values]} as Docker's `ps --filter`
        (an unknown key or a bad value is InvalidArgument); `limit` > 0 keeps the last N created in
        any state; `size` adds SizeRw and SizeRootFs."""
        chosen = ContainerFilter(filters or {}, all=all, limit=limit, lookup=self.store.get,
                                 ancestor_ids=self._image_and_children).select(
            sorted(self.store.all(), key=lambda c: c.created, reverse=True), container_config.state_string)
        image_sizes = {}
        summaries = []
        networks = self.networks.list_settings(chosen)
        for container in chosen:
            summary = container_config.summary(container)
            summary["Mounts"] = self.mounting.inspect_entries(container)
            summary["NetworkSettings"] = {"Networks": networks[container.id]}
            # Docker lists ports of running containers only: its ports go with the network at the exit.
            if self.ports and container.state.alive:
                summary["Ports"] = self.ports.list_entry(container)
            if size:
                summary.update(self._sizes(container, image_sizes))
            summaries.append(summary)
        return summaries

    def inspect(self, ref, size=False):
        """GET /containers/{id}/json: Docker's document, with SizeRw and SizeRootFs if `size`."""
        container = self.store.get(ref)
        document = container_config.inspect(container, self.store.paths(container))
        document["Mounts"] = self.mounting.inspect_entries(container)
        document["NetworkSettings"].update(self.networks.settings(container))
        document["HostConfig"]["Links"] = self.networks.links.inspect_entries(container)
        if self.ports and container.state.alive:
            document["NetworkSettings"].update(self.ports.settings(container))
        else:  # Docker's: the ports go with the network at the exit (and come with it at the start)
            document["NetworkSettings"]["Ports"] = {}
        if size:
            document.update(self._sizes(container, {}))
        return document

    def _image_and_children(self, ref):
        """The ids of image `ref` and of the images of our containers built on top of it (whose
        layers start with all of its layers), for `ancestor=`; none when `ref` names no image."""
        try:
            image = self.images.resolve(ref)
        except (NotFound, InvalidArgument):
            return set()
        ids = {image.id}
        base = list(image.layer_dirs)
        for image_id in {c.image_id for c in self.store.all()} - ids:
            try:
                layers = list(self.images.resolve(image_id).layer_dirs)
            except MinictrError:
                continue
            if base and len(layers) > len(base) and layers[-len(base):] == base:
                ids.add(image_id)
        return ids

    def _sizes(self, container, image_sizes):
        """SizeRw (the bytes of the container's upper dir) and SizeRootFs (that and its image)."""
        size_rw = container_config.directory_size(os.path.join(self.store.paths(container)["top"], "diff"))
        if container.image_id not in image_sizes:
            try:
                image_sizes[container.image_id] = self.images.inspect(container.image_id)["Size"]
            except MinictrError:
                image_sizes[container.image_id] = 0
        return {"SizeRw": size_rw, "SizeRootFs": size_rw + image_sizes[container.image_id]}
