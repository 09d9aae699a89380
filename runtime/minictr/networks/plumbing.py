"""Links through netlink (pyroute2): bridges, veth pairs, addresses and routes. Runs in the
daemon's network namespace: the host's as root, the rootless namespace (held by minictr-pause)
otherwise; the same code for both. Blocking: call from a thread."""

import asyncio
import concurrent.futures
import errno
import functools
import ipaddress
import os
import threading
import time

_worker = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="netlink")


def _off_loop(function):
    """pyroute2's synchronous sockets run an asyncio loop of their own, which cannot run in a thread
    whose loop is running (the daemon's): called from there, the work goes to a worker thread."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return function(*args, **kwargs)
        return _worker.submit(function, *args, **kwargs).result()
    return wrapper


def in_background(function, *args, **kwargs):
    """function(*args, **kwargs) in a netlink worker thread; returns its future."""
    return _worker.submit(function, *args, **kwargs)


def _iproute():
    from pyroute2 import IPRoute  # imported lazily: never on the CLI's path

    return IPRoute()


def _in_container_ns(pid, work, netlink=True):
    """work(ipr) with a netlink socket in the network namespace of process `pid` (work() without
    one if not `netlink`)."""
    fd = open_netns(pid)
    try:
        if not netlink:
            return in_netns(fd, work)

        def with_netlink():
            with _iproute() as ipr:
                return work(ipr)
        return in_netns(fd, with_netlink)
    finally:
        os.close(fd)


def open_netns(pid):
    """An fd of process `pid`'s network namespace, for in_netns (OSError if the process is gone)."""
    return os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def in_netns(netns_fd, work):
    """work() in the network namespace `netns_fd` (an open /proc/PID/ns/net); blocking.

    pyroute2's NetNS forks a child to open a socket in another namespace and stops it with
    SIGTERM. The child inherits the asyncio loop's signal wakeup fd, so that SIGTERM reached the
    daemon's own handler and the daemon stopped itself. Here a thread of our own joins the
    namespace instead (setns moves only the calling thread) and ends with it, so no pooled thread
    is ever left in a container's namespace. Sockets work() makes stay in that namespace."""
    outcome = {}

    def joined():
        try:
            _setns(netns_fd, _CLONE_NEWNET)
            outcome["value"] = work()
        except BaseException as e:
            outcome["error"] = e

    thread = threading.Thread(target=joined, name="netns")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


_CLONE_NEWNET = 0x40000000


def _setns(fd, nstype):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, nstype) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


@_off_loop
def host_routes():
    """IPv4 destinations routed in the daemon's namespace (new subnets must avoid them)."""
    with _iproute() as ipr:
        routes = []
        for route in ipr.get_routes(family=2):
            dst = route.get_attr("RTA_DST")
            if dst and route["dst_len"]:
                routes.append(ipaddress.ip_network(f"{dst}/{route['dst_len']}", strict=False))
        return routes


@_off_loop
def bridge_subnet(name):
    """The IPv4 address/prefix a bridge already has, or None (no such bridge or no address)."""
    with _iproute() as ipr:
        index = ipr.link_lookup(ifname=name)
        if not index:
            return None
        for addr in ipr.get_addr(family=2, index=index[0]):
            return ipaddress.ip_interface(f"{addr.get_attr('IFA_ADDRESS')}/{addr['prefixlen']}")
        return None


@_off_loop
def ensure_bridge(name, gateway, prefixlen, gateway6=None, mtu=None):
    """A bridge `name` with the gateway's address (and `gateway6`: (IPv6 gateway, prefix length) of a
    dual-stack network), up (and `mtu`, when given). Made if missing; its addresses added if not there."""
    with _iproute() as ipr:
        _ensure_bridge(ipr, name, gateway, prefixlen, gateway6, mtu)


# Bridges this process has made sure of (name, gateway, prefixlen, gateway6): attach() only checks that they
# still exist (one lookup) instead of reading their addresses on every container start.
_bridges_ensured = set()


def _ensure_bridge(ipr, name, gateway, prefixlen, gateway6=None, mtu=None):
    """ensure_bridge with an open socket; returns the bridge's index."""
    index = ipr.link_lookup(ifname=name)
    if not index:
        # A MAC of its own (the gateway's, 02:42 + its address; no container gets that address):
        # without one the bridge takes its lowest port's, and changes MAC when that container goes,
        # leaving the others' ARP entries for the gateway (DNS) pointing nowhere for ~30 s.
        from minictr.networks.ipam import mac_for
        try:
            ipr.link("add", ifname=name, kind="bridge", address=mac_for(ipaddress.ip_address(str(gateway))))
        except Exception as e:
            if getattr(e, "code", None) != errno.EEXIST:
                raise
        index = ipr.link_lookup(ifname=name)
    index = index[0]
    present = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=2, index=index)}
    if str(gateway) not in present:
        ipr.addr("add", index=index, address=str(gateway), prefixlen=prefixlen)
    if gateway6 is not None:
        present6 = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=10, index=index)}
        if str(gateway6[0]) not in present6:
            # No duplicate address detection: the subnet is ours, and an address still tentative
            # (≈ 1 s) would leave the first container's default route without its gateway.
            ipr.addr("add", index=index, address=str(gateway6[0]), prefixlen=gateway6[1], flags=_IFA_F_NODAD)
    # An MTU set on the bridge stays (the kernel otherwise follows its smallest port's).
    ipr.link("set", index=index, state="up", **({"mtu": mtu} if mtu else {}))
    _bridges_ensured.add((name, str(gateway), prefixlen, _key6(gateway6)))
    return index


@_off_loop
def remove_link(name, grace=0.0):
    """Delete a link (a bridge, or a veth: its peer goes with it); absent is fine.

    With `grace` (seconds): a veth whose peer's namespace is going away (its container has just
    ended) is deleted by the kernel within a few ms; deleting it ourselves costs ≈ 20 ms (an RCU
    grace period under the rtnl lock). So wait up to `grace` for the kernel first."""
    _bridges_ensured.difference_update([key for key in list(_bridges_ensured) if key[0] == name])
    with _iproute() as ipr:
        index = ipr.link_lookup(ifname=name)
        deadline = time.monotonic() + grace
        while index and time.monotonic() < deadline:
            time.sleep(0.002)
            index = ipr.link_lookup(ifname=name)
        if index:
            try:
                ipr.link("del", index=index[0])
            except Exception as e:
                if getattr(e, "code", None) != errno.ENODEV:
                    raise


@_off_loop
def links_with_prefix(prefix):
    with _iproute() as ipr:
        return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()
                if (link.get_attr("IFLA_IFNAME") or "").startswith(prefix)]


@_off_loop
def attach(bridge, host_name, pid, ifname, address, prefixlen, mac, gateway, bridge_gateway=None, v6=None,
           bridge_gateway6=None, mtu=None, extra_addresses=(), isolated=False):
    """A veth pair: `host_name` on `bridge`, its peer made in the netns of process `pid` as
    `ifname` with `address`/`prefixlen` and `mac`, up, with a default route via `gateway` (None:
    no route, an --internal network). With `bridge_gateway`, the bridge is first made sure of
    (ensure_bridge(bridge, bridge_gateway, prefixlen, bridge_gateway6, mtu)) on the same socket. `v6`:
    (IPv6 address, prefix length, gateway or None) of a dual-stack endpoint. `mtu` (None: the
    kernel's) is both ends'. `extra_addresses` (--link-local-ip) go on `ifname` too, each alone (/32, /128).
    An `isolated` port (enable_icc=false) reaches the bridge (gateway, DNS) and what it routes to,
    never another isolated port: the kernel's bridge port isolation, no netfilter needed.
    On failure nothing is left (the host end is deleted; its peer goes with it).

    One netlink request makes the pair, puts the host end on the bridge and up, and creates the
    peer directly in the container's namespace with its name and MAC: moving a link between
    namespaces afterwards costs ≈ 18 ms here, more than everything else together."""
    with _iproute() as ipr:
        master = ipr.link_lookup(ifname=bridge)
        if bridge_gateway is not None and (not master or (bridge, str(bridge_gateway), prefixlen,
                                                          _key6(bridge_gateway6)) not in _bridges_ensured):
            master = [_ensure_bridge(ipr, bridge, bridge_gateway, prefixlen, bridge_gateway6, mtu)]
        ipr.link("add", ifname=host_name, kind="veth", master=master[0], state="up",
                 peer={"ifname": ifname, "address": mac, "net_ns_pid": pid}, **({"mtu": mtu} if mtu else {}))
        try:
            if isolated:
                ipr.brport("set", index=ipr.link_lookup(ifname=host_name)[0], isolated=1)
            _in_container_ns(pid, lambda: _configure(ifname, address, prefixlen, gateway, v6, mtu, extra_addresses),
                             netlink=False)
        except BaseException:
            remove_link(host_name)
            raise


# The container's side in three raw rtnetlink requests sent at once (pyroute2 costs ≈ 0.5 ms a
# request here, and a socket of its own to open): address, link up, default route.
_RTM_NEWLINK, _RTM_NEWADDR, _RTM_NEWROUTE = 16, 20, 24
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_IFF_UP = 0x1
_IFA_F_NODAD = 0x2
_IFLA_MTU = 4


def _key6(gateway6):
    return (str(gateway6[0]), gateway6[1]) if gateway6 else None


def _rtattr(kind, payload):
    import struct

    length = 4 + len(payload)
    return struct.pack("HH", length, kind) + payload + b"\0" * (-length % 4)


def _configure(ifname, address, prefixlen, gateway, v6=None, mtu=None, extra_addresses=()):
    """In the container's namespace (the calling thread's): `address`/`prefixlen` and `extra_addresses`
    on `ifname`, up (with `mtu` when given), and a default route via `gateway` unless there is one
    (None: none). `v6`: (address, prefix length, gateway or None), the same for IPv6, once the link is up."""
    import socket
    import struct

    index = socket.if_nametoindex(ifname)
    addr = ipaddress.ip_address(str(address)).packed
    bodies = [
        (_RTM_NEWADDR, _NLM_F_CREATE | _NLM_F_EXCL,  # ifaddrmsg: family, prefixlen, flags, scope, index
         struct.pack("BBBBI", socket.AF_INET, prefixlen, 0, 0, index) + _rtattr(2, addr) + _rtattr(1, addr)
         + _rtattr(4, ipaddress.ip_network(f"{address}/{prefixlen}", strict=False).broadcast_address.packed)),
        (_RTM_NEWLINK, 0,  # ifinfomsg: family, type, index, flags, change
         struct.pack("BxHiII", socket.AF_UNSPEC, 0, index, _IFF_UP, _IFF_UP)
         + (_rtattr(_IFLA_MTU, struct.pack("I", mtu)) if mtu else b"")),
    ]
    for extra in map(ipaddress.ip_address, extra_addresses):
        family = socket.AF_INET if extra.version == 4 else socket.AF_INET6
        bodies.append((_RTM_NEWADDR, _NLM_F_CREATE | _NLM_F_EXCL,
                       struct.pack("BBBBI", family, extra.max_prefixlen, 0, 0, index)
                       + _rtattr(2, extra.packed) + _rtattr(1, extra.packed)))
    if gateway is not None:  # rtmsg: family, dst_len, src_len, tos, table main, proto boot, scope universe, unicast
        bodies.append((_RTM_NEWROUTE, _NLM_F_CREATE | _NLM_F_EXCL,
                       struct.pack("BBBBBBBBI", socket.AF_INET, 0, 0, 0, 254, 3, 0, 1, 0)
                       + _rtattr(5, ipaddress.ip_address(str(gateway)).packed) + _rtattr(4, struct.pack("I", index))))
    if v6 is not None:
        bodies += _ipv6_requests(index, *v6)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE) as nl:
        nl.bind((0, 0))
        message = b""
        for seq, (kind, flags, body) in enumerate(bodies, 1):
            message += struct.pack("IHHII", 16 + len(body), kind, _NLM_F_REQUEST | _NLM_F_ACK | flags, seq, 0) + body
        nl.send(message)
        pending = set(range(1, len(bodies) + 1))
        while pending:
            data = nl.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _, seq, _ = struct.unpack_from("IHHII", data, offset)
                if kind == 2:  # NLMSG_ERROR: an ACK (0) or -errno
                    code = -struct.unpack_from("i", data, offset + 16)[0]
                    pending.discard(seq)
                    # A default route already there (a second network): leave it.
                    if code and not (code == errno.EEXIST and bodies[seq - 1][0] == _RTM_NEWROUTE):
                        raise OSError(code, f"configuring {ifname}: {os.strerror(code)}")
                offset += (length + 3) & ~3


def _ipv6_requests(index, address, prefixlen, gateway):
    """RTM_NEWADDR (without duplicate address detection: see _ensure_bridge) and a default route."""
    import socket
    import struct

    packed = ipaddress.ip_address(str(address)).packed
    bodies = [(_RTM_NEWADDR, _NLM_F_CREATE | _NLM_F_EXCL,
               struct.pack("BBBBI", socket.AF_INET6, prefixlen, _IFA_F_NODAD, 0, index) + _rtattr(1, packed))]
    if gateway is not None:
        bodies.append((_RTM_NEWROUTE, _NLM_F_CREATE | _NLM_F_EXCL,
                       struct.pack("BBBBBBBBI", socket.AF_INET6, 0, 0, 0, 254, 3, 0, 1, 0)
                       + _rtattr(5, ipaddress.ip_address(str(gateway)).packed) + _rtattr(4, struct.pack("I", index))))
    return bodies


@_off_loop
def container_interfaces(pid):
    """Names of the links in the netns of process `pid` (eth0, eth1, … for connect)."""
    return _in_container_ns(pid, lambda ns: [link.get_attr("IFLA_IFNAME") for link in ns.get_links()])
