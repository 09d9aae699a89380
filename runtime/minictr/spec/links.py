"""Legacy container links (`--link NAME[:ALIAS]`) in Docker's words: the parser of what users type,
used by the CLI and the daemon alike, and the environment variables a link gives the linking
container on the default bridge (ALIAS_PORT, ALIAS_PORT_80_TCP_ADDR, ALIAS_NAME, ALIAS_ENV_VAR …, as
Docker 20.10 sets them: seen side by side with it; later moby sorts TCP ports first)."""

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


def _sorted_ports(exposed):
    """(number, proto) of Config.ExposedPorts, by number, TCP first among ports of one number (as
    Docker 20.10 sorts them: its ALIAS_PORT is the lowest port, whatever its protocol)."""
    ports = set()
    for key in exposed or {}:
        number, _, proto = key.partition("/")
        if number.isdigit():
            ports.add((int(number), (proto or "tcp").lower()))
    return sorted(ports, key=lambda port: (port[0], port[1] != "tcp", port[1]))


def _run_end(ports, index):
    """The index of the last port of the run of consecutive numbers that starts at `index` (Docker
    20.10's nextContiguous, which does not look at protocols)."""
    value = ports[index][0]
    for i in range(index + 1, len(ports)):
        if ports[i][0] > value + 1:
            return i - 1
        value += 1
    return len(ports) - 1


def _range_variables(alias, ip, ports):
    """_START/_END variables for each run of three or more consecutive ports."""
    env, i = [], 0
    while i < len(ports):
        j = _run_end(ports, i)
        if j <= i + 1:
            i += 1
            continue
        (first, proto), (last, last_proto) = ports[i], ports[j]
        prefix = f"{alias}_PORT_{first}_{proto.upper()}"
        end_prefix = f"{alias}_PORT_{first}_{last_proto.upper()}"
        env += [f"{prefix}_START={proto}://{ip}:{first}", f"{prefix}_ADDR={ip}", f"{prefix}_PROTO={proto}",
                f"{prefix}_PORT_START={first}", f"{end_prefix}_END={last_proto}://{ip}:{last}",
                f"{end_prefix}_PORT_END={last}"]
        i = j + 1
    return env


def link_environment(link_name, target_ip, target_env, exposed_ports):
    """The variables a link named `link_name` (`/parent/alias`) to a container at `target_ip` gives,
    in Docker 20.10's order: `target_env` is the target's Config.Env, `exposed_ports` its
    Config.ExposedPorts."""
    alias = env_prefix(link_name)
    ports = _sorted_ports(exposed_ports)
    env = [f"{alias}_PORT={ports[0][1]}://{target_ip}:{ports[0][0]}"] if ports else []
    env += _range_variables(alias, target_ip, ports)
    for number, proto in ports:
        prefix = f"{alias}_PORT_{number}_{proto.upper()}"
        env += [f"{prefix}={proto}://{target_ip}:{number}", f"{prefix}_ADDR={target_ip}",
                f"{prefix}_PORT={number}", f"{prefix}_PROTO={proto}"]
    env.append(f"{alias}_NAME={link_name}")
    for entry in target_env or []:
        name, sep, value = entry.partition("=")
        # HOME and PATH come from the image's build, and mean nothing to the linking container.
        if sep and name not in ("HOME", "PATH"):
            env.append(f"{alias}_ENV_{name}={value}")
    return env
