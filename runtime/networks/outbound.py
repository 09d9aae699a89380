"""Outbound traffic of bridge networks: masquerading in nftables, in minictr's own table only.

As root the bridges live in the host's network namespace and the rules go there; rootless they
live in the daemon's namespace (held by minictr-pause), whose way out is slirp4netns's tap0 (see
minictr.daemon.rootless), and the same rules go there: the daemon is root of its user namespace.

Each daemon has a table of its own, named after its default bridge (`table_name()`): `inet minictr`
for the default bridge minictr0, `inet minictr-<default bridge>` otherwise, so two root daemons in one
namespace (the integration tests) never overwrite each other's rules. The whole table is rewritten in
one nft transaction from the bridges known to Outbound, so a half-applied set of rules cannot exist and
nothing of another bridge survives its removal. With no bridge left the table is deleted. Nothing
outside this daemon's own table is ever touched.

For each bridge, first: iifname BRIDGE oifname { every other bridge of this daemon } drop (networks
are isolated from each other, as Docker's DOCKER-ISOLATION chains do). Then
for each non-internal bridge (name, IPv4 subnet):
  postrouting (nat): ip saddr SUBNET oifname != BRIDGE masquerade
  forward (filter):  iifname BRIDGE accept; oifname BRIDGE ct state established,related accept
For each internal bridge: forward drops what comes in on it and goes out elsewhere, and what
goes out on it from elsewhere (Docker's --internal).

net.ipv4.ip_forward is set to 1 in the namespace when the first bridge needs it (Docker does the
same, and does not put it back either).

A base chain of another table (Docker's iptables `ip filter FORWARD` with policy drop) can still
drop forwarded packets that ours accept: nftables gives every base chain its verdict. minictr does
not edit that table; `forward_blocked_by()` reads it so the daemon can say what to do.
"""

import ipaddress
import json
import logging
import os
import shutil
import subprocess
import threading

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


def ruleset(bridges, table=TABLE):
    """The nft script that makes `inet TABLE` hold exactly the rules for `bridges`.

    bridges: {name: (subnet, internal)}. Without bridges the script deletes the table.
    """
    head = [f"table {FAMILY} {table} {{}}", f"delete table {FAMILY} {table}"]
    if not bridges:
        return "\n".join(head) + "\n"
    nat, isolation, forward = [], [], []
    names = sorted(bridges)
    for name in names:
        subnet, internal = bridges[name]
        net = ipaddress.ip_network(subnet, strict=False)
        if net.version != 4:
            continue
        q = _quote(name)
        others = [_quote(other) for other in names if other != name]
        if others:
            # Networks are isolated from each other (Docker's DOCKER-ISOLATION chains).
            isolation.append(f"iifname {q} oifname {{ {', '.join(others)} }} drop")
        if internal:
            forward.append(f"iifname {q} oifname != {q} drop")
            forward.append(f"oifname {q} iifname != {q} drop")
        else:
            nat.append(f"ip saddr {net} oifname != {q} masquerade")
            forward.append(f"iifname {q} accept")
            forward.append(f"oifname {q} ct state established,related accept")
    body = [f"table {FAMILY} {table} {{",
            "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;",
            *("    " + r for r in nat), "  }",
            "  chain forward {", "    type filter hook forward priority filter; policy accept;",
            *("    " + r for r in isolation + forward), "  }",
            "}"]
    return "\n".join(head + body) + "\n"


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


def table_exists(table=TABLE):
    nft = _nft_path()
    if nft is None:
        return False
    return subprocess.run([nft, "list", "table", FAMILY, table], capture_output=True).returncode == 0


def forward_drop_chains(nft, is_ours):
    """Base chains on the forward hook whose policy is drop ("family table chain"), read only, leaving
    out those of tables `is_ours(family, table)` claims; None if `nft` cannot be run or answers garbage.
    Shared by the daemon's warning at start and `minictr doctor`."""
    try:
        result = subprocess.run([nft, "-j", "list", "chains"], capture_output=True, text=True, timeout=10)
        items = json.loads(result.stdout).get("nftables", []) if result.returncode == 0 else []
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    return [f"{c['family']} {c['table']} {c['name']}" for c in (item.get("chain") for item in items)
            if c and c.get("hook") == "forward" and c.get("policy") == "drop"
            and not is_ours(c.get("family"), str(c.get("table", "")))]


def forward_blocked_by(table=TABLE):
    """forward_drop_chains of every table but this daemon's own; [] if nft cannot tell."""
    nft = _nft_path()
    if nft is None:
        return []
    return forward_drop_chains(nft, lambda family, name: family == FAMILY and name == table) or []


class Outbound:
    """The bridges that need rules in this network namespace, in table `inet TABLE` (this daemon's own).
    Thread-safe; every call rewrites the table."""

    def __init__(self, table=TABLE):
        self.table = table
        self._lock = threading.Lock()
        self._bridges = {}
        self._warned = False

    def bridges(self):
        with self._lock:
            return dict(self._bridges)

    def restore(self, bridges):
        """At the daemon's start: exactly these bridges ({name: (subnet, internal)}); a crash's table is replaced."""
        with self._lock:
            self._bridges = dict(bridges)
            self._apply()

    def add(self, bridge, subnet, internal=False):
        """A bridge came (or its network is used again): idempotent."""
        ipaddress.ip_network(subnet, strict=False)
        _quote(bridge)
        with self._lock:
            if self._bridges.get(bridge) == (subnet, internal):
                return
            previous = self._bridges.get(bridge)
            self._bridges[bridge] = (subnet, internal)
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

    def close(self):
        """The daemon stops: its own table goes, no other (start re-creates it with restore())."""
        with self._lock:
            self._bridges = {}
            try:
                self._apply()
            except OutboundError as e:
                log.warning("%s", e)

    def _apply(self):
        if any(not internal for _, internal in self._bridges.values()):
            _enable_forwarding()
        _run_nft(ruleset(self._bridges, self.table))
        if self._bridges and not self._warned:
            blocked = forward_blocked_by(self.table)
            if blocked:
                self._warned = True
                log.warning("forwarded packets may be dropped by %s (not minictr's table): containers on bridges "
                            "might not reach outside. Docker's documented way: iptables -I DOCKER-USER -i BRIDGE "
                            "-j ACCEPT and iptables -I DOCKER-USER -o BRIDGE -m conntrack --ctstate "
                            "RELATED,ESTABLISHED -j ACCEPT", ", ".join(blocked))


def _entry(network):
    if network.driver != "bridge" or not network.bridge or network.subnet is None:
        return None
    return network.bridge, (str(network.subnet), network.internal)


def install(networks):
    """Wire outbound into the NetworkService `networks` at the daemon's start: the rules of every bridge
    network now, then follow network create/rm through its hooks. Returns the Outbound (close() at stop).
    A failure (no nft) is logged: the daemon runs, its containers do not reach outside."""
    outbound = Outbound(table_name(networks.default_bridge))
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
    return outbound
