"""Where minictr keeps its socket and its state, as root and rootless: pure functions of the user
id and an environment mapping (os.environ, or a test's dict), so the CLI and the daemon agree."""

import posixpath

ROOT_RUNTIME = "/run/minictr"
ROOT_DATA = "/var/lib/minictr"


def runtime_dir(uid, environ):
    """The directory of the default socket and of the monitors' runtime files."""
    if environ.get("MINICTR_RUNTIME_DIR"):
        return environ["MINICTR_RUNTIME_DIR"]
    if uid == 0:
        return ROOT_RUNTIME
    xdg = environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return posixpath.join(xdg, "minictr")
    # No session runtime dir (e.g. `su` without a login): a private one in /tmp, as Podman does.
    return f"/tmp/minictr-{uid}"


def default_socket(uid, environ):
    return posixpath.join(runtime_dir(uid, environ), "minictr.sock")


def default_data_root(uid, environ, home):
    """HOME is the user's home directory (os.path.expanduser("~")), for rootless data under it."""
    if environ.get("MINICTR_DATA_ROOT"):
        return environ["MINICTR_DATA_ROOT"]
    if uid == 0:
        return ROOT_DATA
    xdg = environ.get("XDG_DATA_HOME") or posixpath.join(home, ".local", "share")
    return posixpath.join(xdg, "minictr")


def socket_from_host(host):
    """`unix:///path` or a bare path → the socket path; anything else is refused."""
    if host.startswith("unix://"):
        return host[len("unix://"):]
    if host.startswith("/"):
        return host
    raise ValueError(f"unsupported host {host!r}: minictr listens on unix:// sockets only")
