"""minictrd: the daemon that owns containers and images and serves the Docker Engine API."""

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys

from minictr import paths
from minictr.errors import MinictrError

log = logging.getLogger("minictr.daemon")


class Services:
    """Everything an API handler may reach: the services of each kind and the daemon's facts."""

    def __init__(self, data_root, run_dir, rootless):
        from minictr.containers.service import ContainerService
        from minictr.containers.store import SCHEMA as CONTAINERS_SCHEMA, ContainerStore
        from minictr.db import Database
        from minictr.images.store import SCHEMA as IMAGES_SCHEMA, ImageStore
        from minictr.volumes.service import SCHEMA as VOLUMES_SCHEMA, VolumeService
        from minictr.networks.service import SCHEMA as NETWORKS_SCHEMA, NetworkService
        from pathlib import Path

        self.data_root = data_root
        self.rootless = rootless
        self.warnings = [w for w in [os.environ.get("MINICTR_ROOTLESS_WARNING")] if w]
        self.db = Database(os.path.join(data_root, "minictr.db"), [IMAGES_SCHEMA, CONTAINERS_SCHEMA, VOLUMES_SCHEMA,
                                                                         NETWORKS_SCHEMA])
        self.daemon_id = self._daemon_id()
        from minictr.events import Events

        self.events = Events()
        self.images = ImageStore(self.db, Path(data_root), rootless)
        from minictr.images import driver

        self.driver = driver.choose(data_root, rootless)  # overlay2, or a fallback: info and doctor say which
        self.volumes = VolumeService(self.db, data_root, self.events)
        store = ContainerStore(self.db, data_root, run_dir, self.events)
        self.networks = NetworkService(self.db, data_root, rootless, self.events, store)
        from minictr.networks.ports import ContainerPorts

        self.ports = ContainerPorts(rootless=rootless)  # root: binds itself; rootless: through the wrapper
        self.containers = ContainerService(store, self.images, self.volumes, self.networks, self.ports, self.driver,
                                           data_root=data_root, rootless=rootless,
                                           uid_ranges=_identity_map("uid_map"), gid_ranges=_identity_map("gid_map"))
        self.volumes.set_users(store.volume_users)
        from minictr.containers.exec import ExecService

        self.execs = ExecService(self.containers)

    def _daemon_id(self):
        path = os.path.join(self.data_root, "engine-id")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(secrets.token_hex(16))
        with open(path) as f:
            return f.read().strip()


def _identity_map(name):
    """A container's id map in rootless mode: each id of the daemon's own namespace maps to itself.

    One line per line of our own map: the kernel wants each range of a child's map to lie
    within a single range of its parent's."""
    with open(f"/proc/self/{name}") as f:
        return [(int(line.split()[0]), int(line.split()[2])) for line in f if line.strip()]


async def _serve(socket_path, data_root, run_dir, rootless):
    from minictr.api import server  # importing the package registers every route

    services = Services(data_root, run_dir, rootless)
    services.volumes.load()
    services.networks.load()
    services.containers.load()
    services.networks.reconcile(services.containers.running_ids())
    from minictr.networks import outbound

    services.outbound = await asyncio.to_thread(outbound.install, services.networks)
    if not rootless:  # rootless, the host's ports are bound outside the daemon's namespace
        services.ports.kernel = services.outbound
    running = [services.containers.get(i) for i in services.containers.running_ids()]
    await services.ports.restore((c, services.networks.settings(c)) for c in running)
    from minictr.networks.dns import serve_networks

    dns = await serve_networks(services.networks, rootless)
    listener = await server.serve(socket_path, services)
    log.info("listening on unix://%s (%s)", socket_path, "rootless" if rootless else "root")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    # Containers keep running: their monitors own them, and the next daemon picks them up.
    listener.close()
    await services.containers.cgroups_settled(timeout=2)
    dns.close()
    await asyncio.to_thread(services.outbound.close)
    try:
        os.unlink(socket_path)
    except FileNotFoundError:
        pass
    if rootless and not services.containers.any_alive():
        from minictr.daemon.rootless import stop_holder

        stop_holder(run_dir)
    services.db.close()


def _write_pidfile(path):
    """The pid to signal to stop this daemon (the outer wrapper's, when rootless)."""
    with open(path, "w") as f:
        f.write(f"{os.getpid()}\n")


def _die_with_wrapper():
    """The rootless daemon proper ends when its wrapper in the host's namespaces is killed.
    Armed here, after exec: the kernel clears it on the credential changes of joining a user
    namespace."""
    import prctl

    prctl.set_pdeathsig(signal.SIGKILL)
    if os.getppid() != int(os.environ.get("MINICTR_WRAPPER_PID", "0")):
        sys.exit(1)  # the wrapper died before the signal was armed


def _name_process():
    try:
        import prctl

        prctl.set_name("minictrd")
    except ImportError:
        pass


def _own_mount_namespace():
    """As root the daemon starts in the host's mount namespace: the overlays it mounts to copy
    from or export a stopped container must never show there, and must vanish with it.
    (The rootless daemon has its own already.) Before asyncio: unshare affects one thread only."""
    from minictr import native

    try:
        native.unshare_mount_namespace()
    except OSError as e:
        from minictr.daemon.preflight import CannotStart

        raise CannotStart(f"cannot make a mount namespace for the daemon: {e}") from None


def run(host=None, data_root=None, inner=False, unavailable_limits=None, insecure_registries=()):
    """Run the daemon in the foreground until SIGTERM; returns an exit status.

    UNAVAILABLE_LIMITS (refuse|warn, default MINICTR_UNAVAILABLE_LIMITS or refuse): what create does
    with a limit this machine cannot enforce; passed on to the rootless daemon proper in the environment.
    INSECURE_REGISTRIES (HOST[:PORT]…) may be reached over plain HTTP: added to MINICTR_INSECURE_REGISTRIES."""
    if insecure_registries:
        known = [r for r in os.environ.get("MINICTR_INSECURE_REGISTRIES", "").split(",") if r]
        os.environ["MINICTR_INSECURE_REGISTRIES"] = ",".join(known + list(insecure_registries))
    if unavailable_limits:
        if unavailable_limits not in ("refuse", "warn"):
            print(f"minictrd: invalid --unavailable-limits {unavailable_limits!r}: refuse or warn", file=sys.stderr)
            return 2
        os.environ["MINICTR_UNAVAILABLE_LIMITS"] = unavailable_limits
    level = logging.DEBUG if os.environ.get("MINICTR_DEBUG") else logging.INFO
    logging.basicConfig(level=level, format="minictrd: %(levelname)s: %(message)s", stream=sys.stderr)
    socket_path = paths.socket_from_host(host) if host else paths.default_socket()
    data_root = data_root or paths.default_data_root()
    run_dir = os.path.dirname(socket_path)
    rootless = inner or os.environ.get("MINICTR_ROOTLESS") == "1"
    try:
        from minictr.daemon.preflight import check_writable_dir

        check_writable_dir(run_dir, "runtime directory")
        check_writable_dir(data_root, "data root")
        if not inner:
            _write_pidfile(os.path.join(run_dir, "minictrd.pid"))
        if inner:
            _die_with_wrapper()
        elif os.geteuid() != 0:
            from minictr.daemon.rootless import run_in_namespaces

            argv = [sys.executable, "-m", "minictr.daemon", "--inner", "-H", f"unix://{socket_path}",
                    "--data-root", os.path.abspath(data_root)]
            return run_in_namespaces(argv, run_dir)
        _name_process()
        if not inner:
            _own_mount_namespace()
        asyncio.run(_serve(socket_path, os.path.abspath(data_root), run_dir, rootless))
    except MinictrError as e:
        print(f"minictrd: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="minictrd", description=__doc__)
    parser.add_argument("-H", "--host", default=os.environ.get("MINICTR_HOST"), help="unix://PATH to listen on")
    parser.add_argument("--data-root", help="where images and containers are kept")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--unavailable-limits", choices=("refuse", "warn"),
                        help="a limit this machine cannot enforce: refuse the container (default) or warn and run")
    parser.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                        help="a registry that may be reached over plain HTTP (repeatable)")
    args = parser.parse_args(argv)
    sys.exit(run(args.host, args.data_root, args.inner, args.unavailable_limits, args.insecure_registry))
