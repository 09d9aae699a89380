"""Where minictr keeps its socket, its state and its runtime files, as root and rootless."""

import os

ROOT_SOCKET = "/run/minictr/minictr.sock"
ROOT_DATA = "/var/lib/minictr"


def is_root() -> bool:
    return os.geteuid() == 0


def runtime_dir() -> str:
    """The directory of the default socket and of the monitors' runtime files."""
    if os.environ.get("MINICTR_RUNTIME_DIR"):
        return os.environ["MINICTR_RUNTIME_DIR"]
    if is_root():
        return "/run/minictr"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "minictr")
    # No session runtime dir (e.g. `su` without a login): a private one in /tmp, as Podman does.
    return f"/tmp/minictr-{os.getuid()}"


def default_socket() -> str:
    return os.path.join(runtime_dir(), "minictr.sock")


def default_data_root() -> str:
    if os.environ.get("MINICTR_DATA_ROOT"):
        return os.environ["MINICTR_DATA_ROOT"]
    if is_root():
        return ROOT_DATA
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(xdg, "minictr")


def socket_from_host(host: str) -> str:
    """`unix:///path` or a bare path → the socket path; anything else is refused."""
    if host.startswith("unix://"):
        return host[len("unix://"):]
    if host.startswith("/"):
        return host
    raise ValueError(f"unsupported host {host!r}: minictr listens on unix:// sockets only")
