"""A container's mounts over its life: the request checked and resolved at create (with
volumes-from and the image's VOLUMEs), volumes made and seeded, the monitor's mount keys,
inspect's Mounts, and the anonymous volumes removed with the container.
(containers/mounts.py has the syntax and the checks of one mount.)"""

import asyncio
import logging
import os
import secrets

from minictr import native
from minictr.containers import mounts as container_mounts
from minictr.spec import mounts as mount_syntax
from minictr.errors import InvalidArgument, MinictrError, NotFound

log = logging.getLogger("minictr.containers")


class Mounting:
    def __init__(self, store, volumes):
        self.store = store
        self.volumes = volumes  # the volume service, or None in a daemon without volumes

    def check(self, config, host_config, image_config):
        """Every mount of the request, checked and resolved, with volumes-from's and the image's
        VOLUMEs (anonymous volumes where nothing else is mounted); nothing is created yet."""
        volumes = {**(image_config.get("Volumes") or {}), **(config.get("Volumes") or {})}
        config["Volumes"] = volumes or None
        mounts = mount_syntax.requested(host_config, volumes)
        taken = {m["destination"] for m in mounts}
        for raw in host_config.get("VolumesFrom") or []:
            ref, mode = mount_syntax.parse_volumes_from(raw)
            for mount in self.store.get(ref).mounts:
                if mount["destination"] in taken:
                    continue
                copied = {**mount, "from": mount.get("from") or True}
                if mode:
                    copied["rw"] = mode == "rw"
                mounts.append(copied)
                taken.add(mount["destination"])
        for mount in mounts:
            if mount["type"] == "bind":
                container_mounts.check_bind_source(mount)
            elif mount["type"] == "volume" and self.volumes is None:
                raise InvalidArgument("volumes are not available in this daemon")
        return container_mounts.by_depth(mounts)

    def attach(self, container, mounts):
        """Create bind sources and volumes into `container.mounts` (as it goes: a failure
        midway removes the anonymous ones made so far); returns the volumes to seed as
        (destination, volume)."""
        seeds = []
        for mount in mounts:
            mount = dict(mount)
            if mount["type"] == "bind":
                container_mounts.create_bind_source(mount)
            elif mount["type"] == "volume":
                if mount["anonymous"] and not mount.get("from"):
                    mount["name"] = secrets.token_hex(32)
                volume = self.volumes.ensure(mount["name"], anonymous=mount["anonymous"])
                if not mount.get("from") and not mount.get("nocopy") and self.volumes.needs_seed(volume.name):
                    seeds.append((mount["destination"], volume))
            mount.pop("create_source", None)
            mount.pop("volume_options", None)
            container.mounts.append(mount)
        return seeds

    async def seed(self, root_fd, seeds):
        """Docker copies what the image has at a new volume's mount point into it, once
        (`root_fd`: the container's `/`)."""
        for destination, volume in seeds:
            if os.listdir(volume.mountpoint):
                continue
            await asyncio.to_thread(container_mounts.seed_volume, root_fd, destination,
                                    volume.mountpoint, native.open_in_root)
            self.volumes.mark_seeded(volume.name)

    def remove_anonymous(self, container):
        """`rm -v`, `--rm`: the container's own anonymous volumes go with it, unless another
        container (volumes-from) still uses one."""
        if self.volumes is None:
            return
        for mount in container.mounts:
            if mount["type"] != "volume" or not mount["anonymous"] or mount.get("from"):
                continue
            if [c for c in self.store.volume_users(mount["name"]) if c != container.id]:
                continue
            try:
                self.volumes.remove(mount["name"], force=True)
            except NotFound:
                pass
            except MinictrError as e:
                log.warning("removing volume %s: %s", mount["name"], e)

    def inspect_entries(self, container):
        """inspect's Mounts array: Docker's fields, in the order they are mounted."""
        entries = []
        for mount in container.mounts:
            mountpoint = ""
            if mount["type"] == "volume" and self.volumes is not None:
                try:
                    mountpoint = self.volumes.get(mount["name"]).mountpoint
                except MinictrError:
                    pass
            entries.append(container_mounts.inspect_entry(mount, mountpoint))
        return entries

    def monitor_entries(self, container):
        """The monitor's `bind` and `tmpfs` keys for the container's mounts, parents first."""
        entries = []
        for mount in container_mounts.by_depth(container.mounts):
            access = "rw" if mount["rw"] else "ro"
            if mount["type"] == "bind":
                entries.append(("bind", mount["source"], mount["destination"], access))
            elif mount["type"] == "tmpfs":
                options = mount["options"] + ("" if mount["rw"] else ",ro")
                entries.append(("tmpfs", mount["destination"], options or "-"))
            else:
                entries.append(self._volume_entry(mount, access))
        if container.host_config.get("ReadonlyRootfs"):
            entries.append(("readonly_rootfs", "1"))
        return entries

    def archive_binds(self, container):
        """(source, destination, readonly) of the container's binds and volumes, parents first:
        what Docker mounts for an archive operation on a container that is not running (a
        tmpfs volume has no files then, and is left out)."""
        binds = []
        for mount in container_mounts.by_depth(container.mounts):
            if mount["type"] == "bind":
                binds.append((mount["source"], mount["destination"], not mount["rw"]))
            elif mount["type"] == "volume":
                kind, source, _ = self.volumes.mount_source(self.volumes.get(mount["name"]))
                if kind == "bind":
                    binds.append((source, mount["destination"], not mount["rw"]))
        return binds

    def _volume_entry(self, mount, access):
        kind, source, options = self.volumes.mount_source(self.volumes.get(mount["name"]))
        if kind == "tmpfs":
            options = (options or "") + ("" if mount["rw"] else ",ro")
            return ("tmpfs", mount["destination"], options.strip(",") or "-")
        return ("bind", source, mount["destination"], access)
