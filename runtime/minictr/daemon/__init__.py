"""minictrd: the daemon that owns containers and images and serves the Docker Engine API."""

import argparse
import asyncio
import logging
import os
import signal
import sys

from minictr.daemon.config import UNAVAILABLE_LIMITS, ConfigError, build as build_config
from minictr.daemon.data_root import claim_data_root, make_private
from minictr.daemon.preflight import check_writable_dir
from minictr.errors import MinictrError
from minictr.hostinfo import CannotStart

log = logging.getLogger("minictr.daemon")


async def _serve(config):
    from minictr.api import server  # importing the package registers every route
    from minictr.daemon import reaper
    from minictr.daemon.services import Services
    from minictr.networks import outbound
    from minictr.networks.dns import default_upstreams, serve_networks

    reaper.install(asyncio.get_running_loop())  # before the first monitor is spawned
    services = Services(config)
    services.volumes.load()
    services.networks.load()
    services.containers.load()
    services.health.resume()
    _reconcile_networks(services)
    await asyncio.to_thread(outbound.install, services.outbound, services.networks)
    running = [services.containers.get(i) for i in services.containers.running_ids()]
    await services.ports.restore((c, services.networks.settings(c)) for c in running)
    dns = await serve_networks(services.networks, config.rootless, default_upstreams(config.dns_forward),
                               config.connect_socket)
    listener = await server.serve(config.socket_path, services)
    log.info("listening on unix://%s (%s)", config.socket_path, "rootless" if config.rootless else "root")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    # Containers keep running: their monitors own them, and the next daemon picks them up.
    listener.close()
    services.health.close()
    await services.containers.cgroups_settled(timeout=2)
    dns.close()
    await asyncio.to_thread(services.outbound.close)
    try:
        os.unlink(config.socket_path)
    except FileNotFoundError:
        pass
    if config.rootless and not services.containers.any_alive():
        from minictr.daemon.rootless import stop_holder

        stop_holder(config.run_dir, config.ns_holder)
    services.db.close()


def _reconcile_networks(services):
    """Leases and attachments of containers that ended or went: freed now, or, on a full disk,
    by the next start (a full disk must not keep the daemon from serving)."""
    from minictr.db import is_disk_full

    try:
        services.networks.reconcile(services.containers.running_ids())
    except Exception as e:
        if not is_disk_full(e):
            raise
        log.warning("the networks are reconciled at the next start: no space left on device: %s", services.db.path)



def _die_with_wrapper(wrapper_pid):
    """The rootless daemon proper ends when its wrapper in the host's namespaces is killed.
    Armed here, after exec: the kernel clears it on the credential changes of joining a user
    namespace."""
    import prctl

    prctl.set_pdeathsig(signal.SIGKILL)
    if os.getppid() != wrapper_pid:
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
        raise CannotStart(f"cannot make a mount namespace for the daemon: {e}") from None


def run(host=None, data_root=None, inner=False, unavailable_limits=None, insecure_registries=()):
    """Run the daemon in the foreground until SIGTERM; returns an exit status.

    The flags (None: not given) and the environment make its configuration (daemon/config.py):
    UNAVAILABLE_LIMITS (refuse|warn) is what create does with a limit this machine cannot enforce;
    INSECURE_REGISTRIES (HOST[:PORT]…) may be reached over plain HTTP."""
    try:
        config = build_config(host, data_root, inner, unavailable_limits, insecure_registries)
    except ConfigError as e:
        print(f"minictrd: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if config.debug else logging.INFO,
                        format="minictrd: %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return _run(config)
    except MinictrError as e:
        print(f"minictrd: {e}", file=sys.stderr)
        return 1


def _run(config):
    check_writable_dir(config.run_dir, "runtime directory")
    check_writable_dir(config.data_root, "data root")
    if config.inner:
        _die_with_wrapper(config.wrapper_pid)  # its wrapper holds the locks for it
    else:
        # The locks' fds stay open, and so held, until this process ends. The pid file names the
        # pid to signal to stop this daemon (the wrapper's, when rootless).
        claim_data_root(config.data_root, config.run_dir)
        make_private(config.data_root)
        if os.geteuid() != 0:
            from minictr.daemon.rootless import run_in_namespaces

            return run_in_namespaces(config.inner_argv(sys.executable), config.run_dir, config.environ)
    _name_process()
    if not config.inner:
        _own_mount_namespace()
    asyncio.run(_serve(config))
    return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="minictrd", description=__doc__)
    parser.add_argument("-H", "--host", help="unix://PATH to listen on (default: MINICTR_HOST)")
    parser.add_argument("--data-root", help="where images and containers are kept")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--unavailable-limits", choices=UNAVAILABLE_LIMITS,
                        help="a limit this machine cannot enforce: refuse the container (default) or warn and run")
    parser.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                        help="a registry that may be reached over plain HTTP (repeatable)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sys.exit(run(args.host, args.data_root, args.inner, args.unavailable_limits, args.insecure_registry))
