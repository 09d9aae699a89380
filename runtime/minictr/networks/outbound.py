"""Outbound traffic of bridge networks: masquerading in nftables, in minictr's own table only.

As root the bridges live in the host's network namespace and the rules go there; rootless they
live in the daemon's namespace (held by minictr-pause), whose way out is slirp4netns's tap0 (see
minictr.daemon.rootless), and the same rules go there: the daemon is root of its user namespace.

Each daemon has a table of its own, named after its default bridge (`table_name()`): `inet minictr`
for the default bridge minictr0, `inet minictr-<default bridge>` otherwise, so two root daemons in one
namespace (the integration tests) never overwrite each other's rules. The whole table is rewritten in
one nft transaction from the bridges known to Outbound, so a half-applied set of rules cannot exist and
nothing of another bridge survives its removal. With no bridge left the table is deleted. Nothing
outside this daemon's own table is touched, but for the jump from iptables' filter FORWARD below.

For each bridge, first: iifname BRIDGE oifname { every other bridge of this daemon } drop (networks
are isolated from each other, as Docker's DOCKER-ISOLATION chains do). Then
for each non-internal bridge (name, IPv4 subnet):
  postrouting (nat): ip saddr SUBNET oifname != BRIDGE masquerade (not with enable_ip_masquerade=false)
  forward (filter):  iifname BRIDGE accept; oifname BRIDGE ct state established,related accept
For each internal bridge: forward drops what comes in on it and goes out elsewhere, and what
goes out on it from elsewhere (Docker's --internal).

net.ipv4.ip_forward is set to 1 in the namespace when the first bridge needs it (Docker does the
same, and does not put it back either).

Published TCP ports, as root, for clients on this host: the kernel forwards them (`publish()`), as
Docker without its userland proxy and Podman do, one TCP connection end to end instead of two
through the daemon's forwarder:
  output (nat, dstnat):  fib daddr type local tcp dport HOST_PORT dnat ip to CTR_IP:CTR_PORT
                         (ip daddr HOST_IP … for a port published on one address)
  postrouting (nat):     ip saddr 127.0.0.0/8 oifname BRIDGE masquerade
                         (a client on 127.0.0.1: the container answers the bridge's address)
and route_localnet=1 on each bridge, which lets a packet from 127.0.0.1 leave through it. As that
would also let a container reach the host's loopback (CVE-2020-8558), a raw prerouting chain drops
what comes in on a bridge for 127.0.0.0/8, as Docker does. Clients on other hosts still go through
the daemon's listener (packets forwarded to a container would meet other firewalls' FORWARD
policies), which also keeps the port taken on the host.

A base chain of another table can still drop forwarded packets that ours accept: nftables gives
every base chain its verdict. iptables' filter FORWARD chain (Docker's, policy drop) gets a jump to a
chain of this daemon's own that accepts its bridges' traffic (filter_forward.py, synced here whenever
the set of bridges changes, removed with the last one); any other base chain on the forward hook with
policy drop is only reported (`drop_chains()`), in the daemon's log and by `minictr doctor`.
"""

import ipaddress
import json
import logging
import os
import shutil
import subprocess
import threading

from minictr.networks import filter_forward

log = logging.getLogger("minictr.outbound")

FAMILY = "inet"
TABLE = "minictr"
DEFAULT_BRIDGE = "minictr0"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


class OutboundError(Exception):
    pass


def _nft_path():
    # Rootless daemons get a PATH without /usr/sbin when the user's has none.
    return shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None)


def _quote(name):
    # Interface names come from minictr (prefix + hex), but never let one close a string.
    if not name or len(name) > 15 or any(c in name for c in '"\\ \n\t;{}#'):
        raise OutboundError(f"invalid interface name: {name!r}")
    return f'"{name}"'


def table_name(default_bridge=DEFAULT_BRIDGE):
    """The daemon's own table: `minictr` for the default bridge minictr0, else `minictr-<default bridge>`."""
    if not default_bridge or default_bridge == DEFAULT_BRIDGE:
        return TABLE
    _quote(default_bridge)
    if not all(c.isalnum() or c in "-_." for c in default_bridge):
        raise OutboundError(f"invalid bridge name for a table name: {default_bridge!r}")
    return f"{TABLE}-{default_bridge}"


def ruleset(bridges, table=TABLE, published=()):
    """The nft script that makes `inet TABLE` hold exactly the rules for `bridges` and `published`.

    bridges: {name: (subnet, internal, masquerade)}. Without bridges the script deletes the table.
    published: (host_ip, host_port, container_ip, container_port, from_loopback) of TCP ports for
    local clients; without from_loopback (no route_localnet on the bridge), 127.0.0.1's clients are
    left to the daemon's listener.
    """
    head = [f"table {FAMILY} {table} {{}}", f"delete table {FAMILY} {table}"]
    if not bridges:
        return "\n".join(head) + "\n"
    nat, isolation, forward, raw = [], [], [], []
    names = sorted(bridges)
    for name in names:
        subnet, internal, masquerade = bridges[name]
        net = ipaddress.ip_network(subnet, strict=False)
        if net.version != 4:
            continue
        q = _quote(name)
        raw.append(f"iifname {q} ip daddr 127.0.0.0/8 drop")
        nat.append(f"ip saddr 127.0.0.0/8 oifname {q} masquerade")
        others = [_quote(other) for other in names if other != name]
        if others:
            # Networks are isolated from each other (Docker's DOCKER-ISOLATION chains).
            isolation.append(f"iifname {q} oifname {{ {', '.join(others)} }} drop")
        if internal:
            forward.append(f"iifname {q} oifname != {q} drop")
            forward.append(f"oifname {q} iifname != {q} drop")
        else:
            if masquerade:  # com.docker.network.bridge.enable_ip_masquerade=false: routed as they are
                nat.append(f"ip saddr {net} oifname != {q} masquerade")
            forward.append(f"iifname {q} accept")
            forward.append(f"oifname {q} ct state established,related accept")
    body = [f"table {FAMILY} {table} {{",
            "  chain prerouting {", "    type filter hook prerouting priority raw; policy accept;",
            *("    " + r for r in raw), "  }",
            "  chain output {", "    type nat hook output priority -100; policy accept;",
            *("    " + r for r in _dnat_rules(published)), "  }",
            "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;",
            *("    " + r for r in nat), "  }",
            "  chain forward {", "    type filter hook forward priority filter; policy accept;",
            *("    " + r for r in isolation + forward), "  }",
            "}"]
    return "\n".join(head + body) + "\n"


def _dnat_rules(published):
    rules = []
    # Ports published on one address first: they win over another container's 0.0.0.0 (Docker's order).
    for host_ip, host_port, ip, port, from_loopback in sorted(published, key=lambda p: p[0] in ("", "0.0.0.0")):
        source = "" if from_loopback else "ip saddr != 127.0.0.0/8 "
        target = f"dnat ip to {ipaddress.IPv4Address(ip)}:{int(port)}"
        if host_ip in ("", "0.0.0.0"):
            rules.append(f"{source}fib daddr type local tcp dport {int(host_port)} {target}")
        else:
            rules.append(f"{source}ip daddr {ipaddress.IPv4Address(host_ip)} tcp dport {int(host_port)} {target}")
    return rules


def _run_nft(script):
    nft = _nft_path()
    if nft is None:
        raise OutboundError("nft is not installed (Debian package nftables): containers cannot reach outside")
    result = subprocess.run([nft, "-f", "-"], input=script, capture_output=True, text=True)
    if result.returncode != 0:
        raise OutboundError(f"nft failed: {result.stderr.strip() or result.returncode}")


def _enable_forwarding():
    try:
        with open(IP_FORWARD) as f:
            if f.read().strip() == "1":
                return
        with open(IP_FORWARD, "w") as f:
            f.write("1")
    except OSError as e:
        raise OutboundError(f"cannot enable IPv4 forwarding ({IP_FORWARD}): {e.strerror}") from None


def _route_localnet(bridge):
    """Let packets from 127.0.0.1 leave through BRIDGE (a local client of a published port, DNATed);
    the raw prerouting rules keep what comes in on it from reaching the host's loopback."""
    try:
        with open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "w") as f:
            f.write("1")
        return True
    except OSError:
        return False  # no such bridge (yet), or a read-only /proc/sys: the listener serves 127.0.0.1


def list_chains(nft):
    """Every chain of nftables (the dicts of `nft -j list chains`), read only; None if `nft` cannot be
    run or answers garbage."""
    try:
        result = subprocess.run([nft, "-j", "list", "chains"], capture_output=True, text=True, timeout=10)
        items = json.loads(result.stdout).get("nftables", []) if result.returncode == 0 else []
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    return [item["chain"] for item in items if item.get("chain")]


def drop_chains(chains, is_ours):
    """Base chains on the forward hook whose policy is drop ("family table chain"), leaving out those
    `is_ours(family, table)` claims."""
    return [f"{c['family']} {c['table']} {c['name']}" for c in chains
            if c.get("hook") == "forward" and c.get("policy") == "drop"
            and not is_ours(c.get("family"), str(c.get("table", "")))]


def forward_drop_chains(nft, is_ours):
    """drop_chains of what `nft` lists; None if it cannot tell. Shared with `minictr doctor`."""
    chains = list_chains(nft)
    return None if chains is None else drop_chains(chains, is_ours)


class Outbound:
    """The bridges that need rules in this network namespace, in table `inet TABLE` (this daemon's own).
    Thread-safe; every call rewrites the table."""

    def __init__(self, table=TABLE):
        self.table = table
        self.forward_chain = filter_forward.chain_name(table)
        self._lock = threading.Lock()
        self._bridges = {}
        self._published = {}  # container id: [(host_ip, host_port, container_ip, container_port)]
        self._forward_synced = None  # {bridge: internal} as last written to iptables' filter FORWARD
        self._warned = False

    def bridges(self):
        with self._lock:
            return dict(self._bridges)

    def restore(self, bridges):
        """At the daemon's start: exactly these bridges ({name: (subnet, internal, masquerade)}); a crash's table
        is replaced."""
        with self._lock:
            self._bridges = dict(bridges)
            self._apply()

    def add(self, bridge, subnet, internal=False, masquerade=True):
        """A bridge came (or its network is used again): idempotent."""
        ipaddress.ip_network(subnet, strict=False)
        _quote(bridge)
        with self._lock:
            if self._bridges.get(bridge) == (subnet, internal, masquerade):
                return
            previous = self._bridges.get(bridge)
            self._bridges[bridge] = (subnet, internal, masquerade)
            try:
                self._apply()
            except BaseException:
                if previous is None:
                    self._bridges.pop(bridge, None)
                else:
                    self._bridges[bridge] = previous
                raise

    def remove(self, bridge):
        """The bridge's network went: its rules go (the table with the last one)."""
        with self._lock:
            if self._bridges.pop(bridge, None) is None:
                return
            self._apply()

    def publish(self, container_id, ports):
        """The kernel forwards these TCP ports of the container for local clients (see the module's
        docstring); an empty list stops it."""
        with self._lock:
            if ports:
                self._published[container_id] = list(ports)
            elif self._published.pop(container_id, None) is None:
                return
            self._apply()

    def _bridge_of(self, ip):
        address = ipaddress.ip_address(ip)
        return next((bridge for bridge, (subnet, *_) in self._bridges.items()
                     if address in ipaddress.ip_network(subnet, strict=False)), None)

    def close(self):
        """The daemon stops: its own table goes, no other (start re-creates it with restore())."""
        with self._lock:
            self._bridges = {}
            self._published = {}
            try:
                self._apply()
            except OutboundError as e:
                log.warning("%s", e)

    def _apply(self):
        if any(not internal for _, internal, _ in self._bridges.values()):
            _enable_forwarding()
        localnet = {bridge: _route_localnet(bridge) for bridge in self._bridges}
        published = [(*port, localnet.get(self._bridge_of(port[2]), False))
                     for ports in self._published.values() for port in ports]
        _run_nft(ruleset(self._bridges, self.table, published))
        forward = {bridge: internal for bridge, (_, internal, _) in self._bridges.items()}
        if forward != self._forward_synced:
            self._sync_filter_forward(forward)

    def _sync_filter_forward(self, bridges):
        """iptables' filter FORWARD chains let `bridges` through (filter_forward.py); then, once, what
        else still drops forwarded packets is logged."""
        nft = _nft_path()
        chains = (list_chains(nft) if nft else None) or []
        done, errors = filter_forward.sync(self.forward_chain, bridges, chains)
        for error in errors:
            log.warning("%s", error)
        # Tried again at the next change of bridges, not at every published port.
        self._forward_synced = dict(bridges)
        if not bridges or self._warned:
            return
        opened = {(backend.family, "filter") for backend in done if backend.name == "nft"}
        blocked = drop_chains(chains, lambda family, table: (family == FAMILY and table == self.table)
                              or (family, table) in opened)
        if blocked:
            self._warned = True
            log.warning("forwarded packets may be dropped by %s (policy drop; neither minictr's table nor iptables' "
                        "filter FORWARD, which minictr opens for its bridges): containers on bridges might not "
                        "reach each other or outside. Accept minictr's bridges there (iifname BRIDGE accept; "
                        "oifname BRIDGE ct state established,related accept)", ", ".join(blocked))


def _entry(network):
    if network.driver != "bridge" or not network.bridge or network.subnet is None:
        return None
    return network.bridge, (str(network.subnet), network.internal, network.masquerade)


def install(outbound, networks):
    """Wire `outbound` into the NetworkService `networks` at the daemon's start: the rules of every
    bridge network now, then follow network create/rm through its hooks (close() it at stop).
    A failure (no nft) is logged: the daemon runs, its containers do not reach outside."""
    current = dict(e for e in map(_entry, networks.list()) if e)
    try:
        outbound.restore(current)
    except OutboundError as e:
        log.warning("%s", e)

    def created(network):
        entry = _entry(network)
        if entry:
            outbound.add(entry[0], *entry[1])

    def removed(network):
        if network.bridge:
            outbound.remove(network.bridge)

    networks.add_hook("on_network_created", created)
    networks.add_hook("on_network_removed", removed)
