"""The daemon's services, built in one place from its configuration: each gets what it depends on
in its constructor."""

import os
import secrets
from pathlib import Path

from minictr.containers.exec import ExecService
from minictr.containers.health import HealthChecks
from minictr.containers.service import ContainerService
from minictr.containers.store import SCHEMA as CONTAINERS_SCHEMA, ContainerStore
from minictr.daemon.config import DaemonConfig
from minictr.db import Database
from minictr.events import Events
from minictr.images import driver
from minictr.images.embedded import EmbeddedImage
from minictr.images.store import SCHEMA as IMAGES_SCHEMA, ImageStore
from minictr.networks.outbound import Outbound, table_name
from minictr.networks.ports import ContainerPorts
from minictr.networks.service import SCHEMA as NETWORKS_SCHEMA, NetworkService
from minictr.volumes.service import SCHEMA as VOLUMES_SCHEMA, VolumeService


class Services:
    """Everything an API handler may reach: the services of each kind and the daemon's facts."""

    def __init__(self, config: DaemonConfig):
        rootless, data_root = config.rootless, config.data_root
        self.config = config
        self.data_root = data_root
        self.rootless = rootless
        self.warnings = [config.rootless_warning] if config.rootless_warning else []
        self.registries = config.registry_settings()  # pull, push and login reach registries with these
        self.db = Database(os.path.join(data_root, "minictr.db"),
                           [IMAGES_SCHEMA, CONTAINERS_SCHEMA, VOLUMES_SCHEMA, NETWORKS_SCHEMA])
        self.daemon_id = _daemon_id(data_root)
        self.events = Events()
        self.images = ImageStore(self.db, Path(data_root), rootless)
        self.embedded_image = EmbeddedImage(self.images, config.embedded_image)
        # overlay2, or a fallback: info and doctor say which
        self.driver = driver.choose(data_root, rootless, config.storage_driver)
        # The containers' records come first: volumes and networks look containers up in them.
        store = ContainerStore(self.db, data_root, config.run_dir, self.events)
        self.volumes = VolumeService(self.db, data_root, self.events, users=store.volume_users)
        self.networks = NetworkService(self.db, data_root, rootless, self.events, store, config.default_bridge)
        # Outbound rules in nftables, installed by the daemon once the networks are loaded. As root it
        # also DNATs the host's own clients of a published port (rootless, ports are bound outside).
        self.outbound = Outbound(table_name(config.default_bridge))
        self.ports = ContainerPorts(rootless=rootless, connect_socket=config.connect_socket,
                                    kernel=None if rootless else self.outbound,
                                    default_binding_ip=self.networks.default_binding_ip)
        self.containers = ContainerService(store, self.images, self.volumes, self.networks, self.ports, self.driver,
                                           data_root=data_root, rootless=rootless,
                                           uid_ranges=_identity_map("uid_map"), gid_ranges=_identity_map("gid_map"),
                                           unavailable_limits=config.unavailable_limits)
        self.execs = ExecService(self.containers)
        self.health = HealthChecks(store, self.execs, self.events)  # probes through the exec service


def _daemon_id(data_root):
    path = os.path.join(data_root, "engine-id")
    if not os.path.exists(path):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(secrets.token_hex(16))
    with open(path) as f:
        return f.read().strip()


def _identity_map(name):
    """A container's id map in rootless mode: each id of the daemon's own namespace maps to itself.

    One line per line of our own map: the kernel wants each range of a child's map to lie
    within a single range of its parent's."""
    with open(f"/proc/self/{name}") as f:
        return [(int(line.split()[0]), int(line.split()[2])) for line in f if line.strip()]
