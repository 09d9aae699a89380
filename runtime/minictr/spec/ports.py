"""Docker's published-port syntax: `-p [IP:][HOST:]CONTAINER[/proto]` and `--expose` as users type
them, turned into a create body's `ExposedPorts` and `HostConfig.PortBindings`, and those fields
checked as the daemon reads them.

No heavy import here: the CLI's fast path parses `-p` with these functions.
"""

from minictr.errors import InvalidArgument

PROTOCOLS = ("tcp", "udp")


def _port_range(text: str, what: str, lowest: int = 1) -> range:
    first, sep, last = text.partition("-")
    try:
        start, end = int(first), int(last) if sep else int(first)
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {text}") from None
    if not (lowest <= start <= 65535 and lowest <= end <= 65535) or end < start:
        raise InvalidArgument(f"invalid {what}: {text}")
    return range(start, end + 1)


def _split_proto(text: str, spec: str) -> tuple[str, str]:
    port, _, proto = text.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidArgument(f"invalid proto: {proto}")
    if not port:
        raise InvalidArgument(f"no port specified: {spec}<empty>")
    return port, proto


def _split_host(spec: str) -> tuple[str, str, str]:
    """(host IP, host port(s), container part) of `[IP:][HOST:]CONTAINER[/proto]`; IPv6 in brackets."""
    if spec.startswith("["):
        ip, sep, rest = spec[1:].partition("]:")
        if not sep:
            raise InvalidArgument(f"invalid port specification: {spec}")
        host_port, _, container = rest.rpartition(":")
        return ip, host_port, container
    parts = spec.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise InvalidArgument(f"invalid port specification: {spec}")


def parse_publish(spec: str) -> list[tuple[str, dict]]:
    """`-p` spec -> [("80/tcp", {"HostIp": …, "HostPort": …}), …] (Docker's nat.ParsePortSpec)."""
    ip, host_part, container_part = _split_host(spec.strip())
    if ip:
        import socket  # for inet_pton; here, not above: its enum and selectors would cost every `run`

        try:
            socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
        except OSError:
            raise InvalidArgument(f"invalid IP address: {ip}") from None
    container_port, proto = _split_proto(container_part, spec)
    container_ports = _port_range(container_port, "containerPort")
    # Host port 0, as an empty one, is any free port (Docker's nat.ParsePortSpec lets it through).
    host_ports = _port_range(host_part, "hostPort", lowest=0) if host_part else None
    if host_ports is not None and len(host_ports) != len(container_ports) and len(host_ports) != 1:
        raise InvalidArgument(f"invalid ranges specified for container and host Ports: "
                              f"{container_port} and {host_part}")
    bindings = []
    for i, port in enumerate(container_ports):
        if host_ports is None:
            host_port = ""
        elif len(host_ports) == len(container_ports):
            host_port = str(host_ports[i])
        else:  # one host port for a range: Docker lets the allocator pick within it; we take it as given
            host_port = str(host_ports[0])
        bindings.append((f"{port}/{proto}", {"HostIp": ip, "HostPort": host_port}))
    return bindings


def parse_expose(spec: str) -> list[str]:
    """`--expose 80[-90][/udp]` -> ["80/tcp", …]."""
    port, proto = _split_proto(spec.strip(), spec)
    return [f"{p}/{proto}" for p in _port_range(port, "range format for --expose")]


def publish_options(publish: tuple, expose: tuple) -> tuple[dict, dict]:
    """(ExposedPorts, PortBindings) for the run/create body, as the Docker CLI builds them."""
    exposed, bindings = {}, {}
    for spec in expose:
        for key in parse_expose(spec):
            exposed[key] = {}
    for spec in publish:
        for key, binding in parse_publish(spec):
            exposed[key] = {}
            bindings.setdefault(key, []).append(binding)
    return exposed, bindings


def wanted_bindings(host_config: dict, exposed_ports: dict | None) -> list[tuple[int, str, str, int]]:
    """What a start must publish: [(container port, proto, host IP, host port or 0)], validated.

    `PortBindings` as given, plus with `PublishAllPorts` every exposed port not already bound,
    each on a free host port. Host IP "" (none given) is every address: 0.0.0.0 and, as in
    Docker 20.10+, [::] on the same port when the host has IPv6.
    """
    bindings = host_config.get("PortBindings") or {}
    keys = list(bindings)
    if host_config.get("PublishAllPorts"):
        keys += [k for k in (exposed_ports or {}) if k not in bindings]
    wanted = []
    for key in keys:
        port_text, _, proto = key.partition("/")
        proto = proto or "tcp"
        if proto not in PROTOCOLS:
            raise InvalidArgument(f"invalid proto: {proto}")
        container_port = _port_range(port_text, "containerPort")[0]
        for binding in bindings.get(key) or [{}]:
            host_ip = (binding or {}).get("HostIp") or ""
            host_port = (binding or {}).get("HostPort") or ""
            wanted.append((container_port, proto, host_ip,
                           _port_range(host_port, "hostPort", lowest=0)[0] if host_port else 0))
    return wanted
