"""A container's /etc/hosts in Docker's words: the lines every container has, and the `NAME:ADDRESS`
entries of `--add-host` (HostConfig.ExtraHosts), checked by the CLI and by the daemon alike: an
entry without both parts would write a line without a name or an address."""

from minictr.errors import InvalidArgument


def hosts_file(hostname):
    """The /etc/hosts of a container named HOSTNAME on no network."""
    return ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
            f"ff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n")


def split_extra_host(entry):
    """`NAME:ADDRESS` -> (NAME, ADDRESS) (the address may hold colons: IPv6); None if a part is missing."""
    if not isinstance(entry, str):
        return None
    name, sep, address = entry.partition(":")
    return (name, address) if name and sep and address else None


def check_extra_hosts(entries):
    """HostConfig.ExtraHosts of a create body: a list of `NAME:ADDRESS`, or nothing."""
    if entries is None:
        return
    if not isinstance(entries, list):
        raise InvalidArgument("invalid HostConfig.ExtraHosts: expected a list of \"host:ip\" strings")
    for entry in entries:
        if split_extra_host(entry) is None:
            raise InvalidArgument(f"invalid HostConfig.ExtraHosts entry {entry!r}: expected \"host:ip\"")


def extra_host_line(entry):
    """The /etc/hosts line of an ExtraHosts entry (checked when its container was created)."""
    name, _, address = entry.partition(":")
    return f"{address}\t{name}\n"
