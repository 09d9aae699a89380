"""Address management (networks/ipam.py): IPv4 and IPv6 subnets, gateways and leases."""

import ipaddress

import pytest

from minictr.errors import InvalidArgument
from minictr.networks import ipam


def test_an_ipv6_subnet_is_parsed_where_ipv6_is_asked_and_refused_where_ipv4_is():
    assert ipam.parse_subnet("fd00:1:2:3::/64", version=6) == ipaddress.ip_network("fd00:1:2:3::/64")
    with pytest.raises(InvalidArgument, match="an IPv4 subnet is expected"):
        ipam.parse_subnet("fd00:1:2:3::/64")
    with pytest.raises(InvalidArgument, match="an IPv6 subnet is expected"):
        ipam.parse_subnet("10.9.0.0/16", version=6)


def test_an_ipv6_subnet_with_host_bits_names_the_network_it_should_be():
    with pytest.raises(InvalidArgument, match=r"it should be fd00::/64"):
        ipam.parse_subnet("fd00::5/64", version=6)


def test_an_ipv6_subnet_too_small_for_a_gateway_and_a_container_is_refused():
    with pytest.raises(InvalidArgument, match="too small"):
        ipam.parse_subnet("fd00::/127", version=6)
    assert ipam.parse_subnet("fd00::/126", version=6).prefixlen == 126


def test_the_ipv6_gateway_defaults_to_the_first_address_and_a_foreign_one_is_refused():
    subnet = ipaddress.ip_network("fd00:aa::/64")
    assert ipam.check_config(subnet, None, None) == ipaddress.ip_address("fd00:aa::1")
    with pytest.raises(InvalidArgument, match="no matching subnet for gateway fd00:bb::1"):
        ipam.check_config(subnet, ipaddress.ip_address("fd00:bb::1"), None)


def test_ipv6_leases_skip_the_gateway_and_the_used_addresses():
    subnet = ipaddress.ip_network("fd00:aa::/64")
    gateway = ipaddress.ip_address("fd00:aa::1")
    assert ipam.lease_address(subnet, gateway, None, set()) == ipaddress.ip_address("fd00:aa::2")
    assert ipam.lease_address(subnet, gateway, None, {"fd00:aa::2"}) == ipaddress.ip_address("fd00:aa::3")


def test_a_wanted_ipv6_address_is_given_unless_taken_or_outside_the_subnet():
    subnet = ipaddress.ip_network("fd00:aa::/64")
    gateway = ipaddress.ip_address("fd00:aa::1")
    wanted = ipaddress.ip_address("fd00:aa::42")
    assert ipam.lease_address(subnet, gateway, None, set(), wanted) == wanted
    with pytest.raises(InvalidArgument, match="Address already in use: fd00:aa::42"):
        ipam.lease_address(subnet, gateway, None, {"fd00:aa::42"}, wanted)
    with pytest.raises(InvalidArgument, match="does not belong to the network's subnet"):
        ipam.lease_address(subnet, gateway, None, set(), ipaddress.ip_address("fd00:bb::42"))
    with pytest.raises(InvalidArgument, match="does not belong"):
        ipam.lease_address(subnet, gateway, None, set(), gateway)


def test_a_full_ipv6_subnet_says_so():
    subnet = ipaddress.ip_network("fd00:aa::/126")
    with pytest.raises(InvalidArgument, match="no available IPv6 addresses"):
        ipam.lease_address(subnet, ipaddress.ip_address("fd00:aa::1"), None, {"fd00:aa::2", "fd00:aa::3"})


def test_generated_subnets_are_unique_local_64s_that_differ_and_avoid_the_taken_ones():
    ula = ipaddress.ip_network("fd00::/8")
    generated = {ipam.generate_ula_subnet([]) for _ in range(20)}
    assert len(generated) == 20
    assert all(s.prefixlen == 64 and s.subnet_of(ula) for s in generated)
    taken = [ipaddress.ip_network("fd00::/8")]  # every ULA taken: none is left to give
    with pytest.raises(InvalidArgument, match="non-overlapping IPv6 address pool"):
        ipam.generate_ula_subnet(taken)
    assert ipam.generate_ula_subnet([ipaddress.ip_network("10.0.0.0/8")]).subnet_of(ula)  # IPv4 routes: no matter
