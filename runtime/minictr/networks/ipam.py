"""Address management: subnets for networks (clear of each other and of the host's routes) and
addresses for endpoints (leases; the table lives in networks/service.py)."""

import ipaddress
import secrets

from minictr.errors import Forbidden, InvalidArgument

# Docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/20 steps.
_POOLS = ([ipaddress.ip_network(f"172.{n}.0.0/16") for n in range(17, 32)]
          + [ipaddress.ip_network(f"192.168.{n}.0/20") for n in range(0, 256, 16)])
# slirp4netns's own network in the rootless namespace (its gateway, DNS and host addresses).
SLIRP_SUBNET = ipaddress.ip_network("10.0.2.0/24")


def parse_subnet(text, version=4):
    try:
        subnet = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid subnet {text}") from None
    if subnet.version != version:
        raise InvalidArgument(f"invalid subnet {text}: an IPv{version} subnet is expected here")
    if str(subnet) != text.strip():
        raise InvalidArgument(f"invalid subnet {text}: it should be {subnet}")
    if subnet.max_prefixlen - subnet.prefixlen < 2:
        raise InvalidArgument(f"invalid subnet {text}: too small for a gateway and a container")
    return subnet


def parse_address(text, what="IP address", version=4):
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text}") from None
    if address.version != version:
        raise InvalidArgument(f"invalid {what} {text}: an IPv{version} address is expected here")
    return address


def generate_ula_subnet(taken):
    """A /64 of a random Unique Local Address prefix (RFC 4193: fd00::/8, 40 random bits), as Docker
    27 gives an IPv6 network created without a subnet; Docker 20.10 refuses instead (its default
    pools are IPv4 only). Random bits make two daemons' (or hosts') networks differ."""
    for _ in range(16):
        subnet = ipaddress.ip_network((b"\xfd" + secrets.token_bytes(5) + bytes(10), 64))
        if not any(subnet.overlaps(t) for t in taken if t.version == 6):
            return subnet
    raise InvalidArgument("could not find an available, non-overlapping IPv6 address pool")


def allocate_subnet(taken):
    """The first default pool that overlaps none of `taken` (networks in use, host routes)."""
    for pool in _POOLS:
        if not any(pool.overlaps(t) for t in taken):
            return pool
    raise InvalidArgument("could not find an available, non-overlapping IPv4 address pool among the defaults "
                          "to assign to the network")


def check_config(subnet, gateway, ip_range):
    """Gateway and ip-range must lie in the subnet; the gateway defaults to its first address."""
    if gateway is None:
        gateway = next(subnet.hosts())
    elif gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"no matching subnet for gateway {gateway}")
    if ip_range is not None and not ip_range.subnet_of(subnet):
        raise InvalidArgument(f"no matching subnet for range {ip_range}")
    return gateway


def check_aux_addresses(subnet, gateway, aux, network_name):
    """IPAM AuxiliaryAddresses ({name: address}) as libnetwork checks them: each in the subnet, none
    taken twice or by the gateway. They are reserved: never handed to a container."""
    reserved, taken = {}, {subnet.network_address, subnet.broadcast_address, gateway}
    for name, text in aux.items():
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise InvalidArgument(f"non parsable secondary ip address ({name}:{text}) passed for network "
                                  f"{network_name}") from None
        if address not in subnet:
            raise Forbidden(f"auxiliary address: ({name}:{text}) must belong to the master pool: {subnet}")
        if address in taken:
            raise InvalidArgument(f"failed to allocate secondary ip address ({name}:{text}): Address already in use")
        taken.add(address)
        reserved[name] = str(address)
    return reserved


def lease_address(subnet, gateway, ip_range, used, wanted=None):
    """A free address: `wanted` (--ip) if it is free, else the lowest free one of the range."""
    if wanted is not None:
        if wanted not in subnet or wanted in (subnet.network_address, subnet.broadcast_address, gateway):
            raise InvalidArgument(f"invalid address {wanted}: it does not belong to the network's subnet {subnet}")
        if str(wanted) in used:
            raise InvalidArgument(f"Address already in use: {wanted}")
        return wanted
    for address in (ip_range or subnet).hosts():
        if address != gateway and str(address) not in used and address != subnet.broadcast_address:
            return address
    raise InvalidArgument(f"no available IPv{subnet.version} addresses on the network's subnet {subnet}")


def parse_mac(text):
    """A MAC address as given (`--mac-address`, EndpointsConfig.MacAddress), in the kernel's form; one that no
    interface can have (not 6 bytes, multicast) is refused."""
    import re

    parts = re.split(r"[:-]", text.strip())
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-fA-F]{2}", p) for p in parts):
        raise InvalidArgument(f"{text} is not a valid mac address")
    if int(parts[0], 16) & 1:
        raise InvalidArgument(f"{text} is not a valid mac address: a multicast address cannot be an interface's")
    return ":".join(parts).lower()


def parse_link_local(texts):
    """--link-local-ip (EndpointIPAMConfig.LinkLocalIPs): addresses added to the container's interface."""
    addresses = []
    for text in texts:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            address = None
        if address is None or address.is_unspecified:
            raise InvalidArgument(f"invalid link-local IP address: {text}")
        addresses.append(str(address))
    return addresses


def mac_for(address):
    """Docker's MAC for an address: 02:42 then the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)
