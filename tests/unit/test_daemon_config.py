"""The daemon's configuration: each setting from its flag, its environment variable or its default
(the table in daemon/config.py), and no environment read anywhere else in the daemon's code."""

import ast
import sys
from pathlib import Path

import pytest

from minictr.daemon import config as daemon_config, parse_args
from minictr.daemon.config import ConfigError, build
from minictr.images.registry import RegistrySettings

BASE = {"MINICTR_RUNTIME_DIR": "/run/test-minictr", "MINICTR_DATA_ROOT": "/var/lib/test-minictr"}

# (flags, environment, setting, value): one row per line of the module's table.
TABLE = [
    ({}, {}, "socket_path", "/run/test-minictr/minictr.sock"),
    ({}, {"MINICTR_HOST": "unix:///tmp/env.sock"}, "socket_path", "/tmp/env.sock"),
    ({"host": "unix:///tmp/flag.sock"}, {"MINICTR_HOST": "unix:///tmp/env.sock"}, "socket_path", "/tmp/flag.sock"),
    ({}, {}, "data_root", "/var/lib/test-minictr"),
    ({"data_root": "/srv/minictr"}, {}, "data_root", "/srv/minictr"),
    ({}, {}, "unavailable_limits", "refuse"),
    ({}, {"MINICTR_UNAVAILABLE_LIMITS": "warn"}, "unavailable_limits", "warn"),
    ({"unavailable_limits": "refuse"}, {"MINICTR_UNAVAILABLE_LIMITS": "warn"}, "unavailable_limits", "refuse"),
    ({}, {}, "insecure_registries", ()),
    ({"insecure_registries": ["b:5000"]}, {"MINICTR_INSECURE_REGISTRIES": "a, 10.0.0.0/8,"},
     "insecure_registries", ("a", "10.0.0.0/8", "b:5000")),
    ({}, {}, "rootless", False),
    ({}, {"MINICTR_ROOTLESS": "1"}, "rootless", True),
    ({"inner": True}, {}, "rootless", True),
    ({}, {}, "debug", False),
    ({}, {"MINICTR_DEBUG": "yes"}, "debug", True),
    ({}, {}, "registry_loopback_only", False),
    ({}, {"MINICTR_REGISTRY_LOOPBACK_ONLY": "1"}, "registry_loopback_only", True),
    ({}, {}, "push_chunk_size", 16 << 20),
    ({}, {"MINICTR_PUSH_CHUNK_SIZE": "65536"}, "push_chunk_size", 65536),
    ({}, {}, "dns_forward", None),
    ({}, {"MINICTR_DNS_FORWARD": ""}, "dns_forward", ""),  # set but empty: forward nothing
    ({}, {"MINICTR_DNS_FORWARD": "127.0.0.1:5300"}, "dns_forward", "127.0.0.1:5300"),
    ({}, {}, "default_bridge", "minictr0"),
    ({}, {"MINICTR_DEFAULT_BRIDGE": "mct123"}, "default_bridge", "mct123"),
    ({}, {}, "storage_driver", ""),
    ({}, {"MINICTR_STORAGE_DRIVER": "vfs"}, "storage_driver", "vfs"),
    ({}, {}, "embedded_image", str(Path(sys.prefix).parent / "share" / "busybox-local.tar")),
    ({}, {"MINICTR_EMBEDDED_IMAGE": "/srv/busybox.tar"}, "embedded_image", "/srv/busybox.tar"),
    ({}, {}, "connect_socket", None),
    ({}, {"MINICTR_CONNECT_SOCKET": "/run/user/1/minictr/connect.sock"}, "connect_socket",
     "/run/user/1/minictr/connect.sock"),
    ({}, {}, "rootless_warning", ""),
    ({}, {"MINICTR_ROOTLESS_WARNING": "single-id mapping"}, "rootless_warning", "single-id mapping"),
    ({}, {"MINICTR_WRAPPER_PID": "42"}, "wrapper_pid", 0),  # only the daemon proper has a wrapper
    ({"inner": True}, {"MINICTR_WRAPPER_PID": "42"}, "wrapper_pid", 42),
    ({}, {}, "ns_holder", None),
    ({}, {"MINICTR_NS_HOLDER": "4242"}, "ns_holder", 4242),
]


@pytest.mark.parametrize("flags, environ, setting, value", TABLE)
def test_each_setting_comes_from_its_flag_its_variable_or_its_default(monkeypatch, flags, environ, setting, value):
    for name in ("MINICTR_RUNTIME_DIR", "MINICTR_DATA_ROOT"):  # paths.py reads these two itself
        monkeypatch.setenv(name, BASE[name])
    assert getattr(build(**flags, environ={**BASE, **environ}), setting) == value


def test_the_registry_settings_are_made_of_the_configuration():
    config = build(insecure_registries=["r:5000"], environ={**BASE, "MINICTR_REGISTRY_LOOPBACK_ONLY": "1",
                                                             "MINICTR_CONNECT_SOCKET": "/x.sock",
                                                             "MINICTR_PUSH_CHUNK_SIZE": "1024"})
    assert config.registry_settings() == RegistrySettings(frozenset({"r:5000"}), True, "/x.sock", 1024)


def test_the_daemon_proper_gets_the_wrappers_flags_and_builds_the_same_settings():
    environ = {**BASE, "MINICTR_INSECURE_REGISTRIES": "a"}
    outer = build("unix:///tmp/m.sock", "/srv/m", unavailable_limits="warn", insecure_registries=["b"],
                  environ=environ)
    argv = outer.inner_argv("python3")
    assert argv[:4] == ["python3", "-m", "minictr.daemon", "--inner"]
    args = parse_args(argv[3:])
    inner = build(args.host, args.data_root, args.inner, args.unavailable_limits, args.insecure_registry,
                  environ=environ)
    assert inner.rootless and inner.socket_path == "/tmp/m.sock" and inner.data_root == "/srv/m"
    assert inner.unavailable_limits == "warn" and inner.insecure_registries == ("a", "b")


def test_a_bad_flag_or_number_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="invalid --unavailable-limits 'maybe': refuse or warn"):
        build(unavailable_limits="maybe", environ=BASE)
    with pytest.raises(ConfigError, match="MINICTR_PUSH_CHUNK_SIZE='big': not a number of bytes"):
        build(environ={**BASE, "MINICTR_PUSH_CHUNK_SIZE": "big"})


# --- nobody else reads the environment ---------------------------------------------------

PACKAGE = Path(daemon_config.__file__).resolve().parents[1]
# Where the environment may be read: the CLI (a user's shell), the daemon's configuration, the
# pure default paths (spec/paths.py; paths.py until it moves there).
# main.py (the `minictr` command's door: `doctor` checks the user's own environment), and
# containers/monitor.py, which spawns each monitor with the daemon's environment (inheritance, no
# setting read).
ALLOWED = {"cli", "main.py", "daemon/config.py", "spec/paths.py", "paths.py", "containers/monitor.py"}


def _environment_reads(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "environb", "getenv", "getenvb") \
                and isinstance(node.value, ast.Name) and node.value.id == "os":
            yield node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module == "os" \
                and any(alias.name in ("environ", "getenv") for alias in node.names):
            yield node.lineno


def test_no_service_reads_the_environment():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in ALLOWED or relative.split("/")[0] in ALLOWED:
            continue
        found += [f"{relative}:{line}" for line in _environment_reads(ast.parse(path.read_text()))]
    assert found == []
