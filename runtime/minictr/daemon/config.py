"""The daemon's configuration: built once at its start from its flags, its environment and the
defaults, then handed to the services' constructors. No service reads the environment itself.

| Setting                | Flag                   | Environment                      | Default                      |
|------------------------|------------------------|----------------------------------|------------------------------|
| socket_path            | -H unix://PATH         | MINICTR_HOST                     | paths.default_socket()       |
| data_root              | --data-root            | (MINICTR_DATA_ROOT, in paths)    | paths.default_data_root()    |
| unavailable_limits     | --unavailable-limits   | MINICTR_UNAVAILABLE_LIMITS       | refuse                       |
| insecure_registries    | --insecure-registry …  | MINICTR_INSECURE_REGISTRIES (,)  | none (the flags add to it)   |
| rootless               | --inner                | MINICTR_ROOTLESS=1               | no                           |
| debug                  |                        | MINICTR_DEBUG (any value)        | no                           |
| registry_loopback_only |                        | MINICTR_REGISTRY_LOOPBACK_ONLY=1 | no                           |
| push_chunk_size        |                        | MINICTR_PUSH_CHUNK_SIZE (bytes)  | 16 MiB                       |
| dns_forward            |                        | MINICTR_DNS_FORWARD (IP[:PORT],…)| None: the host's resolv.conf |
| default_bridge         |                        | MINICTR_DEFAULT_BRIDGE           | minictr0                     |
| storage_driver         |                        | MINICTR_STORAGE_DRIVER           | "": tried at start           |
| embedded_image         |                        | MINICTR_EMBEDDED_IMAGE           | <venv>/../share/busybox-local.tar |
| connect_socket         |                        | MINICTR_CONNECT_SOCKET           | None                         |
| rootless_warning       |                        | MINICTR_ROOTLESS_WARNING         | ""                           |
| wrapper_pid            | (with --inner)         | MINICTR_WRAPPER_PID              | 0                            |
| ns_holder              |                        | MINICTR_NS_HOLDER                | None                         |

The last four (and MINICTR_ROOTLESS) are how the rootless wrapper (rootless.py) tells the daemon
proper, which it starts in its namespaces, what it set up: process plumbing, not user settings.
"""

import os
import sys
from dataclasses import dataclass, field
from typing import Mapping

from minictr import paths
from minictr.spec import paths as spec_paths
from minictr.images.registry import DEFAULT_PUSH_CHUNK_SIZE, RegistrySettings
from minictr.networks.service import DEFAULT_BRIDGE

UNAVAILABLE_LIMITS = ("refuse", "warn")


class ConfigError(ValueError):
    """A flag or an environment variable the daemon cannot start with; the message says which."""


@dataclass(frozen=True)
class DaemonConfig:
    socket_path: str
    data_root: str  # absolute
    inner: bool = False  # the rootless daemon proper, started by its wrapper
    rootless: bool = False
    debug: bool = False
    unavailable_limits: str = "refuse"  # what create does with a limit this machine cannot enforce
    insecure_registries: tuple = ()
    registry_loopback_only: bool = False
    push_chunk_size: int = DEFAULT_PUSH_CHUNK_SIZE
    dns_forward: str | None = None
    default_bridge: str = DEFAULT_BRIDGE
    storage_driver: str = ""
    connect_socket: str | None = None
    rootless_warning: str = ""
    wrapper_pid: int = 0
    ns_holder: int | None = None
    embedded_image: str = ""  # the rootfs archive of busybox-local, shared by every daemon (images/embedded.py)
    environ: Mapping = field(default_factory=dict, repr=False, compare=False)  # passed on to the daemon proper

    @property
    def run_dir(self) -> str:
        """The socket's directory: the pid file, the monitors' runtime files, the wrapper's sockets."""
        return os.path.dirname(self.socket_path)

    def registry_settings(self) -> RegistrySettings:
        return RegistrySettings(frozenset(self.insecure_registries), self.registry_loopback_only,
                                self.connect_socket, self.push_chunk_size)

    def inner_argv(self, executable: str) -> list:
        """The command line of the rootless daemon proper: this configuration's flags."""
        return ([executable, "-m", "minictr.daemon", "--inner", "-H", f"unix://{self.socket_path}",
                 "--data-root", self.data_root, "--unavailable-limits", self.unavailable_limits]
                + [arg for name in self.insecure_registries for arg in ("--insecure-registry", name)])


def build(host=None, data_root=None, inner=False, unavailable_limits=None, insecure_registries=(),
          environ=None) -> DaemonConfig:
    """The configuration from the flags (None: not given) and `environ` (default: this process's)."""
    environ = dict(os.environ if environ is None else environ)
    if unavailable_limits and unavailable_limits not in UNAVAILABLE_LIMITS:
        raise ConfigError(f"invalid --unavailable-limits {unavailable_limits!r}: refuse or warn")
    host = host or environ.get("MINICTR_HOST")
    return DaemonConfig(
        socket_path=spec_paths.socket_from_host(host) if host else paths.default_socket(),
        data_root=os.path.abspath(data_root or paths.default_data_root()),
        inner=inner,
        rootless=inner or environ.get("MINICTR_ROOTLESS") == "1",
        debug=bool(environ.get("MINICTR_DEBUG")),
        # An invalid value from the environment is refused by the container service, as before.
        unavailable_limits=unavailable_limits or environ.get("MINICTR_UNAVAILABLE_LIMITS") or "refuse",
        insecure_registries=_insecure_registries(environ.get("MINICTR_INSECURE_REGISTRIES", ""), insecure_registries),
        registry_loopback_only=environ.get("MINICTR_REGISTRY_LOOPBACK_ONLY") == "1",
        push_chunk_size=_bytes(environ, "MINICTR_PUSH_CHUNK_SIZE", DEFAULT_PUSH_CHUNK_SIZE),
        dns_forward=environ.get("MINICTR_DNS_FORWARD"),
        default_bridge=environ.get("MINICTR_DEFAULT_BRIDGE") or DEFAULT_BRIDGE,
        storage_driver=environ.get("MINICTR_STORAGE_DRIVER", ""),
        connect_socket=environ.get("MINICTR_CONNECT_SOCKET") or None,
        rootless_warning=environ.get("MINICTR_ROOTLESS_WARNING", ""),
        wrapper_pid=int(environ.get("MINICTR_WRAPPER_PID") or 0) if inner else 0,
        ns_holder=int(environ["MINICTR_NS_HOLDER"]) if environ.get("MINICTR_NS_HOLDER", "").isdigit() else None,
        embedded_image=environ.get("MINICTR_EMBEDDED_IMAGE") or default_embedded_image(),
        environ=environ,
    )


def default_embedded_image():
    """Where scripts/install puts busybox-local's archive: beside the venv minictr runs from
    (/opt/minictr/venv -> /opt/minictr/share/busybox-local.tar), readable by every user."""
    return os.path.join(os.path.dirname(sys.prefix), "share", "busybox-local.tar")


def _insecure_registries(from_environ, flags):
    """HOST[:PORT] (or CIDR) names, comma-separated in the environment; each flag adds its own."""
    names = (name.strip() for name in ",".join([from_environ, *flags]).split(","))
    return tuple(dict.fromkeys(name for name in names if name))


def _bytes(environ, name, default):
    value = environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: not a number of bytes") from None
