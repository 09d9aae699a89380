"""Legacy container links (`--link NAME[:ALIAS]`) in Docker's words: the parser of what users type,
used by the CLI and the daemon alike, and the environment variables a link gives the linking
container on the default bridge (moby's daemon/links: ALIAS_PORT, ALIAS_PORT_80_TCP_ADDR,
ALIAS_NAME, ALIAS_ENV_VAR …)."""

from minictr.errors import InvalidArgument


def parse_link(text):
    """`NAME[:ALIAS]` -> (NAME, ALIAS); also the `/NAME:/PARENT/ALIAS` form inspect shows, which a
    client may send back (as Docker's opts.ParseLink takes it)."""
    if not isinstance(text, str) or not text:
        raise InvalidArgument("empty string specified for links")
    parts = text.split(":")
    if len(parts) > 2:
        raise InvalidArgument(f"bad format for links: {text}")
    if len(parts) == 1:
        return text, text
    name, alias = parts
    if name.startswith("/"):
        return name[1:], alias.rpartition("/")[2]
    if not name or not alias:
        raise InvalidArgument(f"bad format for links: {text}")
    return name, alias


def check_links(links, field="HostConfig.Links"):
    """A create body's list of links: each parses, or InvalidArgument naming it."""
    if links is None:
        return []
    if not isinstance(links, list):
        raise InvalidArgument(f"invalid {field}: expected a list of \"name:alias\" strings")
    return [parse_link(link) for link in links]


def env_prefix(alias):
    """The variables' prefix for a link alias: upper case, '-' as '_' (what Docker does, nothing more)."""
    return alias.rpartition("/")[2].upper().replace("-", "_")


def _port_key(port):
    """TCP ports first, then by number, then by protocol (moby's withTCPPriority)."""
    number, proto = port
    return (proto != "tcp", proto if proto != "tcp" else "", number)


def _parse_exposed(exposed):
    ports = []
    for key in exposed or {}:
        number, _, proto = key.partition("/")
        if number.isdigit():
            ports.append((int(number), (proto or "tcp").lower()))
    return sorted(set(ports), key=_port_key)


def link_environment(link_name, target_ip, target_env, exposed_ports):
    """The variables a link named `link_name` (`/parent/alias`) to a container at `target_ip` gives:
    `target_env` is the target's Config.Env, `exposed_ports` its Config.ExposedPorts."""
    alias = env_prefix(link_name)
    ports = _parse_exposed(exposed_ports)
    env = []
    start = end = None
    for index, (number, proto) in enumerate(ports):
        if index == 0:
            start = end = (number, proto)
            env.append(f"{alias}_PORT={proto}://{target_ip}:{number}")
        prefix = f"{alias}_PORT_{number}_{proto.upper()}"
        env += [f"{prefix}={proto}://{target_ip}:{number}", f"{prefix}_ADDR={target_ip}",
                f"{prefix}_PORT={number}", f"{prefix}_PROTO={proto}"]
        # A run of consecutive ports of one protocol also gets _START and _END variables.
        if number == end[0] + 1 and proto == end[1]:
            end = (number, proto)
            if index < len(ports) - 1:
                continue
        if end != start:
            prefix = f"{alias}_PORT_{start[0]}_{start[1].upper()}"
            env += [f"{prefix}_START={start[1]}://{target_ip}:{start[0]}", f"{prefix}_PORT_START={start[0]}",
                    f"{prefix}_END={end[1]}://{target_ip}:{end[0]}", f"{prefix}_PORT_END={end[0]}"]
        start = end = (number, proto)
    env.append(f"{alias}_NAME={link_name}")
    for entry in target_env or []:
        name, sep, value = entry.partition("=")
        # HOME and PATH come from the image's build, and mean nothing to the linking container.
        if sep and name not in ("HOME", "PATH"):
            env.append(f"{alias}_ENV_{name}={value}")
    return env
