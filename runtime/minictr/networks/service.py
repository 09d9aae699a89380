"""Networks: the model (networks and their leases in SQLite), the predefined `bridge`, `host` and
`none`, and each container's endpoints — a veth pair from its network namespace to the network's
bridge, made between the monitor's `created` and `start`, released when the container stops.

Others plug in through `hooks` (DNS, published ports, outbound): see docs/internals.md."""

import asyncio
import hashlib
import ipaddress
import json
import logging
import os
import re
import secrets
import threading
import time

from minictr.errors import Conflict, Forbidden, InvalidArgument, MinictrError, NotFound
from minictr.networks import ipam
from minictr.networks.links import SCHEMA as LINKS_SCHEMA, Links
from minictr.networks.outbound import DEFAULT_BRIDGE
from minictr.spec.links import check_links

log = logging.getLogger("minictr.networks")

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    driver TEXT NOT NULL,
    subnet TEXT NOT NULL DEFAULT '',
    gateway TEXT NOT NULL DEFAULT '',
    ip_range TEXT NOT NULL DEFAULT '',
    internal INTEGER NOT NULL DEFAULT 0,
    labels TEXT NOT NULL DEFAULT '{}',
    bridge TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    attachable INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL DEFAULT '{}',
    aux_addresses TEXT NOT NULL DEFAULT '{}',
    subnet6 TEXT NOT NULL DEFAULT '',
    gateway6 TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS leases (
    network_id TEXT NOT NULL REFERENCES networks(id),
    container_id TEXT NOT NULL,
    ip TEXT NOT NULL DEFAULT '',
    mac TEXT NOT NULL DEFAULT '',
    aliases TEXT NOT NULL DEFAULT '[]',
    requested_ip TEXT NOT NULL DEFAULT '',
    links TEXT NOT NULL DEFAULT '[]',
    requested_mac TEXT NOT NULL DEFAULT '',
    link_local_ips TEXT NOT NULL DEFAULT '[]',
    ip6 TEXT NOT NULL DEFAULT '',
    requested_ip6 TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (network_id, container_id)
);
""" + LINKS_SCHEMA

PREDEFINED = ("bridge", "host", "none")
_SLIRP_DNS = "10.0.2.3"
# Columns added after the first release: a data root made before gets them at the daemon's start.
_ADDED_COLUMNS = (("leases", "links", "TEXT NOT NULL DEFAULT '[]'"),
                  ("networks", "attachable", "INTEGER NOT NULL DEFAULT 0"),
                  ("networks", "options", "TEXT NOT NULL DEFAULT '{}'"),
                  ("networks", "aux_addresses", "TEXT NOT NULL DEFAULT '{}'"),
                  ("leases", "requested_mac", "TEXT NOT NULL DEFAULT ''"),
                  ("leases", "link_local_ips", "TEXT NOT NULL DEFAULT '[]'"),
                  ("networks", "subnet6", "TEXT NOT NULL DEFAULT ''"),
                  ("networks", "gateway6", "TEXT NOT NULL DEFAULT ''"),
                  ("leases", "ip6", "TEXT NOT NULL DEFAULT ''"),
                  ("leases", "requested_ip6", "TEXT NOT NULL DEFAULT ''"))
# The bridge driver's options (Options of NetworkCreate) that minictr does; the rest of Docker's
# bridge options are refused naming them, and keys the bridge driver does not know Docker ignores
# (and reports), as we do.
MTU_OPTION = "com.docker.network.driver.mtu"
MASQUERADE_OPTION = "com.docker.network.bridge.enable_ip_masquerade"
ICC_OPTION = "com.docker.network.bridge.enable_icc"
HOST_BINDING_OPTION = "com.docker.network.bridge.host_binding_ipv4"
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
_BRIDGE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")  # an interface name safe in nft and iptables rules
_REFUSED_OPTIONS = ("com.docker.network.bridge.default_bridge",
                    "com.docker.network.bridge.inhibit_ipv4", "com.docker.network.bridge.gateway_mode_ipv4",
                    "com.docker.network.container_iface_prefix", "com.docker.network.enable_ipv6")
_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}  # Go's ParseBool
_HOOK_NAMES = ("on_network_created", "on_network_removed", "on_container_connected", "on_container_disconnected")


class Network:
    def __init__(self, row):
        self.id, self.name, self.driver = row["id"], row["name"], row["driver"]
        self.subnet = ipaddress.ip_network(row["subnet"]) if row["subnet"] else None
        self.gateway = ipaddress.ip_address(row["gateway"]) if row["gateway"] else None
        self.ip_range = ipaddress.ip_network(row["ip_range"]) if row["ip_range"] else None
        # EnableIPv6: a network with an IPv6 subnet (its gateway on the bridge) is dual-stack.
        self.subnet6 = ipaddress.ip_network(row["subnet6"]) if row["subnet6"] else None
        self.gateway6 = ipaddress.ip_address(row["gateway6"]) if row["gateway6"] else None
        self.internal = bool(row["internal"])
        self.attachable = bool(row["attachable"])
        self.labels = json.loads(row["labels"])
        self.options = json.loads(row["options"])
        self.aux_addresses = json.loads(row["aux_addresses"])  # IPAM AuxiliaryAddresses: {name: address}
        self.bridge = row["bridge"]
        self.created = row["created"]

    @property
    def user_defined(self):
        return self.name not in PREDEFINED

    @property
    def mtu(self):
        """The MTU of the bridge and its veths (None: the kernel's)."""
        return int(self.options[MTU_OPTION]) if self.options.get(MTU_OPTION, "0") != "0" else None

    @property
    def masquerade(self):
        return _BOOLS[self.options.get(MASQUERADE_OPTION, "true").lower()]

    @property
    def icc(self):
        """Whether containers on the network reach each other (enable_icc; false: isolated bridge ports)."""
        return _BOOLS[self.options.get(ICC_OPTION, "true").lower()]


def check_options(options):
    """The bridge driver's Options as Docker checks them; a refused or malformed one is a 400 naming it."""
    for key, value in options.items():
        if key in _REFUSED_OPTIONS:
            raise InvalidArgument(f"network driver option {key!r} is not supported")
        if key in (MASQUERADE_OPTION, ICC_OPTION) and value.lower() not in _BOOLS:
            raise InvalidArgument(f"invalid value {value!r} for {key}: not a boolean")
        if key == BRIDGE_NAME_OPTION and not _BRIDGE_NAME.fullmatch(value):
            raise InvalidArgument(f"invalid value {value!r} for {key}: an interface name of 1 to 15 letters, "
                                  "digits, '_', '.' or '-'")
        if key == HOST_BINDING_OPTION:
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise InvalidArgument(f"invalid value {value!r} for {key}: not an IPv4 address") from None
        if key == MTU_OPTION:
            try:
                mtu = int(value)
            except ValueError:
                raise InvalidArgument(f"invalid value {value!r} for {key}: not an integer") from None
            if mtu and not 68 <= mtu <= 65535:
                raise InvalidArgument(f"invalid MTU {value} ({key}): must be between 68 and 65535")


class NetworkService:
    def __init__(self, db, data_root, rootless, events, containers, default_bridge=DEFAULT_BRIDGE):
        self.db = db
        self.rootless = rootless
        self.events = events
        self.containers = containers  # the ContainerStore (containers/store.py): names, ids, records, dirs
        self.links = Links(db, containers)  # legacy links of the default bridge
        # Our veths' names start with `mc` + a tag of this data root, so that two daemons (tests as
        # root) never take each other's links for strays.
        self.veth_prefix = "mc" + hashlib.sha256(os.path.abspath(data_root).encode()).hexdigest()[:3]
        self.default_bridge = default_bridge  # tests give each daemon its own (MINICTR_DEFAULT_BRIDGE)
        self.hooks = {name: [] for name in _HOOK_NAMES}
        self._lock = threading.Lock()  # leases and subnets: one allocation at a time
        self._unlinking = {}  # veth name -> future of its removal after its container ended
        # Running containers on `host` or `none` (no lease row): Docker connects them to that
        # network too, and says so in its events at the start and the end.
        self._on_predefined = {}  # container id -> Network
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def _emit(self, *args):
        """Events are recorded in the event loop's thread; the API calls us from worker threads.
        From the loop's own thread at once, so that they keep their place among the container's own
        events (an exit's `disconnect` between its `die` and the `stop` that waited for it)."""
        try:
            in_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            in_loop = False
        if self._loop is None or in_loop:
            self.events.emit(*args)
        else:
            self._loop.call_soon_threadsafe(self.events.emit, *args)

    def _emit_endpoint(self, action, network, container_id):
        """`network connect`/`disconnect` as Docker's (Actor: the network; the container an attribute)."""
        self._emit("network", action, network.id, {"container": container_id, "name": network.name,
                                                   "type": network.driver})

    # ---- hooks (for DNS, ports, outbound) -------------------------------------------------

    def add_hook(self, name, callback):
        """Register `callback` for one of on_network_created(network), on_network_removed(network),
        on_container_connected(network, container_id, ip, aliases),
        on_container_disconnected(network, container_id, ip). Called in the daemon's thread that made
        the change; a hook that raises is logged, never undoes the change."""
        self.hooks[name].append(callback)

    def _run_hooks(self, name, *args):
        for callback in self.hooks[name]:
            try:
                callback(*args)
            except Exception:
                log.exception("network hook %s failed", name)

    # ---- model ---------------------------------------------------------------------------

    def load(self):
        """Predefined networks, and the reconciliation is `reconcile` (after the containers)."""
        self._add_missing_columns()
        for name in PREDEFINED:
            if self.db.query_one("SELECT id FROM networks WHERE name = ?", (name,)) is None:
                driver = {"bridge": "bridge", "host": "host", "none": "null"}[name]
                self._insert(name, driver)
        bridge = self.get("bridge")
        if bridge.subnet is None:
            self._assign_default_subnet(bridge)
        # Every bridge exists from the daemon's start (rootless, its namespace is new after a restart):
        # containers starting at once never race to make one, and its subnet is routed, so another
        # daemon in this namespace does not take it.
        for network in self._all():
            if network.bridge and network.subnet:
                try:
                    self._make_bridge(network)
                except MinictrError as e:
                    log.warning("%s", e)

    def _add_missing_columns(self):
        present = {table: {row["name"] for row in self.db.query(f"PRAGMA table_info({table})")}
                   for table in ("networks", "leases")}
        with self.db.transaction() as cur:
            for table, name, declaration in _ADDED_COLUMNS:
                if name not in present[table]:
                    cur.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")

    @staticmethod
    def _make_bridge(network):
        from minictr.networks import plumbing

        try:
            plumbing.ensure_bridge(network.bridge, network.gateway, network.subnet.prefixlen, _gateway6(network),
                                   mtu=network.mtu)
        except Exception as e:
            raise MinictrError(f"making the bridge {network.bridge} of network {network.name}: {e}") from None

    def _assign_default_subnet(self, bridge):
        from minictr.networks import plumbing

        present = plumbing.bridge_subnet(self.default_bridge)  # another daemon's (root tests), or ours
        subnet = present.network if present else ipam.allocate_subnet(self._taken_subnets())
        gateway = present.ip if present else next(subnet.hosts())
        with self.db.transaction() as cur:
            cur.execute("UPDATE networks SET subnet = ?, gateway = ?, bridge = ? WHERE id = ?",
                        (str(subnet), str(gateway), self.default_bridge, bridge.id))

    def _insert(self, name, driver, subnet=None, gateway=None, ip_range=None, internal=False, labels=None,
                attachable=False, options=None, aux_addresses=None, subnet6=None, gateway6=None):
        network_id = secrets.token_hex(32)
        bridge = "" if driver != "bridge" or name == "bridge" else \
            (options or {}).get(BRIDGE_NAME_OPTION) or "mcbr-" + network_id[:10]
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO networks (id, name, driver, subnet, gateway, ip_range, internal, labels, bridge,"
                        " created, attachable, options, aux_addresses, subnet6, gateway6)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (network_id, name, driver, str(subnet or ""), str(gateway or ""), str(ip_range or ""),
                         int(internal), json.dumps(labels or {}), bridge, _now(), int(attachable),
                         json.dumps(options or {}), json.dumps(aux_addresses or {}), str(subnet6 or ""),
                         str(gateway6 or "")))
        return network_id

    def _taken_subnets(self):
        from minictr.networks import plumbing

        taken = [n.subnet for n in self._all() if n.subnet] + [n.subnet6 for n in self._all() if n.subnet6]
        taken += plumbing.host_routes()
        if self.rootless:
            taken.append(ipam.SLIRP_SUBNET)
        return taken

    def _all(self):
        return [Network(row) for row in self.db.query("SELECT * FROM networks ORDER BY created")]

    def get(self, ref):
        """A network by full id, name, or unique id prefix (Docker's order)."""
        row = self.db.query_one("SELECT * FROM networks WHERE id = ?", (ref,)) or \
            self.db.query_one("SELECT * FROM networks WHERE name = ?", (ref,))
        if row is None and ref:
            rows = self.db.query("SELECT * FROM networks WHERE id LIKE ?", (ref.replace("%", "") + "%",))
            if len(rows) > 1:
                raise InvalidArgument(f"network {ref} is ambiguous ({len(rows)} matches found based on ID prefix)")
            row = rows[0] if rows else None
        if row is None:
            raise NotFound(f"network {ref} not found")
        return Network(row)

    def create(self, name, driver="bridge", subnet=None, gateway=None, ip_range=None, internal=False, labels=None,
               attachable=False, options=None, aux_addresses=None, ipv6=False, subnet6=None, gateway6=None):
        """`network create`: a bridge network (subnet chosen clear of the others and of the host's
        routes unless given), and its bridge. `attachable` is only recorded: it lets swarm services'
        standalone containers join, and every container may join a local network anyway. With
        `ipv6`, dual-stack: an IPv6 subnet as given (`subnet6`, `gateway6`) or a generated ULA /64."""
        from minictr.spec.names import check_name

        if not name:
            raise InvalidArgument("network name is required")
        check_name(name)
        driver = driver or "bridge"
        if driver != "bridge":
            raise InvalidArgument(f"plugin \"{driver}\" not found: only the bridge driver can create networks")
        if name in PREDEFINED:
            raise Forbidden(f"operation is not permitted on predefined {name} network ")
        if self.db.query_one("SELECT id FROM networks WHERE name = ?", (name,)):
            raise Conflict(f"network with name {name} already exists")
        check_options(options or {})
        subnet = ipam.parse_subnet(subnet) if subnet else None
        gateway = ipam.parse_address(gateway, "gateway") if gateway else None
        ip_range = ipam.parse_subnet(ip_range) if ip_range else None
        if subnet is None and (gateway or ip_range or aux_addresses):
            raise InvalidArgument("--gateway, --ip-range and --aux-address need --subnet")
        subnet6 = ipam.parse_subnet(subnet6, version=6) if subnet6 else None
        gateway6 = ipam.parse_address(gateway6, "gateway", version=6) if gateway6 else None
        if subnet6 and not ipv6:
            raise InvalidArgument(f"IPv6 subnet {subnet6} given for a network without IPv6: add --ipv6 (EnableIPv6)")
        if subnet6 is None and gateway6:
            raise InvalidArgument("an IPv6 --gateway needs an IPv6 --subnet")
        if ipv6:
            _check_host_ipv6()
        with self._lock:
            self._check_bridge_name(name, (options or {}).get(BRIDGE_NAME_OPTION))
            if subnet is None:
                subnet = ipam.allocate_subnet(self._taken_subnets())
            else:
                self._check_overlap(subnet)
            gateway = ipam.check_config(subnet, gateway, ip_range)
            aux_addresses = ipam.check_aux_addresses(subnet, gateway, aux_addresses or {}, name)
            if ipv6:
                if subnet6 is None:
                    subnet6 = ipam.generate_ula_subnet(self._taken_subnets())
                else:
                    self._check_overlap(subnet6)
                gateway6 = ipam.check_config(subnet6, gateway6, None)
            network_id = self._insert(name, driver, subnet, gateway, ip_range, internal, labels, attachable, options,
                                      aux_addresses, subnet6, gateway6)
            network = self.get(network_id)
            try:  # made now, as Docker does: its route keeps other daemons off the subnet
                self._make_bridge(network)
            except MinictrError:
                from minictr.networks import plumbing

                plumbing.remove_link(network.bridge)
                with self.db.transaction() as cur:
                    cur.execute("DELETE FROM networks WHERE id = ?", (network_id,))
                raise
        self._emit("network", "create", network.id, {"name": name, "type": driver})
        self._run_hooks("on_network_created", network)
        return network

    def _check_overlap(self, subnet):
        for other in self._all():
            for theirs in (other.subnet, other.subnet6):
                if theirs and theirs.overlaps(subnet):
                    raise Conflict(f"Pool overlaps with other one on this address space: {subnet} "
                                   f"(network {other.name} has {theirs})")

    def _check_bridge_name(self, name, bridge):
        """A bridge name given (com.docker.network.bridge.name) is no other network's and no interface's
        yet: minictr makes the bridge and deletes it with the network, so it never takes one over."""
        from minictr.networks import plumbing

        if not bridge:
            return
        for other in self._all():
            if other.bridge == bridge:
                raise Conflict(f"cannot create network {name}: conflicts with network {other.name}: networks "
                               "have same bridge name")
        if bridge in plumbing.links_with_prefix(bridge):
            raise Conflict(f"cannot create network {name}: an interface named {bridge} exists; minictr makes the "
                           "network's bridge itself (and removes it with the network), so it takes no existing one")

    def list(self, filters=None):
        """`network ls`: filters driver, id, label, name, type (builtin|custom), dangling."""
        from minictr.spec.filters import labels_match, regex_match

        filters = filters or {}
        unknown = set(filters) - {"driver", "id", "label", "name", "type", "dangling", "scope"}
        if unknown:
            raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        chosen = []
        for network in self._all():
            kind = "custom" if network.user_defined else "builtin"
            if filters.get("driver") and network.driver not in filters["driver"]:
                continue
            if filters.get("type") and kind not in filters["type"]:
                continue
            if filters.get("scope") and "local" not in filters["scope"]:
                continue
            if filters.get("id") and not any(network.id.startswith(v) for v in filters["id"]):
                continue
            if filters.get("name") and not regex_match(filters["name"], network.name):
                continue
            if not labels_match(filters.get("label"), network.labels):
                continue
            if filters.get("dangling"):
                dangling = filters["dangling"][0] in ("1", "true")
                if dangling != (network.user_defined and not self._attached(network.id)):
                    continue
            chosen.append(network)
        return chosen

    def _attached(self, network_id):
        return [r["container_id"] for r in self.db.query("SELECT container_id FROM leases WHERE network_id = ?",
                                                         (network_id,))]

    def remove(self, ref):
        """`network rm`: refused for predefined networks and networks with containers."""
        network = self.get(ref)
        if not network.user_defined:
            raise Forbidden(f"{network.name} is a pre-defined network and cannot be removed")
        attached = self._attached(network.id)
        if attached:
            raise Forbidden(f"error while removing network: network {network.name} id {network.id} has active "
                           "endpoints")
        from minictr.networks import plumbing

        plumbing.remove_link(network.bridge)
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM networks WHERE id = ?", (network.id,))
        self._emit("network", "destroy", network.id, {"name": network.name, "type": network.driver})
        self._run_hooks("on_network_removed", network)

    def prune(self, filters=None):
        """`network prune`: user-defined networks no container is attached to; their names."""
        from minictr.spec.filters import labels_match

        filters = filters or {}
        removed = []
        for network in self._all():
            if network.user_defined and not self._attached(network.id) and labels_match(filters.get("label"),
                                                                                       network.labels):
                try:
                    self.remove(network.id)
                    removed.append(network.name)
                except MinictrError:
                    continue
        return removed

    def to_api(self, network):
        """GET /networks/{id}'s shape."""
        containers = {}
        for row in self.db.query("SELECT * FROM leases WHERE network_id = ?", (network.id,)):
            if not row["ip"]:
                continue
            name = self.containers.name_of(row["container_id"])
            containers[row["container_id"]] = {
                "Name": name, "EndpointID": _endpoint_id(network.id, row["container_id"]),
                "MacAddress": row["mac"], "IPv4Address": f"{row['ip']}/{network.subnet.prefixlen}",
                "IPv6Address": f"{row['ip6']}/{network.subnet6.prefixlen}" if row["ip6"] else ""}
        config = []
        if network.subnet:
            entry = {"Subnet": str(network.subnet), "Gateway": str(network.gateway)}
            if network.ip_range:
                entry["IPRange"] = str(network.ip_range)
            if network.aux_addresses:
                entry["AuxiliaryAddresses"] = network.aux_addresses
            config.append(entry)
        if network.subnet6:
            config.append({"Subnet": str(network.subnet6), "Gateway": str(network.gateway6)})
        options = network.options
        if network.driver == "bridge" and not network.user_defined:
            # A user-defined network's Options are what its creator gave (only those), as Docker's:
            # Compose 1.29 recreates a network whose Options differ from its file's.
            options = {"com.docker.network.bridge.name": network.bridge,
                       "com.docker.network.bridge.default_bridge": "true",
                       "com.docker.network.bridge.enable_icc": "true",
                       "com.docker.network.bridge.enable_ip_masquerade": "true"}
        return {"Name": network.name, "Id": network.id, "Created": network.created, "Scope": "local",
                "Driver": network.driver, "EnableIPv6": network.subnet6 is not None,
                "IPAM": {"Driver": "default", "Options": None, "Config": config},
                "Internal": network.internal, "Attachable": network.attachable, "Ingress": False,
                "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
                "Options": options, "Labels": network.labels}

    # ---- containers: which networks ------------------------------------------------------

    @staticmethod
    def mode_of(host_config):
        mode = host_config.get("NetworkMode") or "default"
        return "bridge" if mode == "default" else mode

    def plan(self, container_id, host_config, networking_config, mac_address=None):
        """At create: check --network and the endpoints asked for, and record them (no address yet).
        `mac_address` (Config.MacAddress, --mac-address) is the network's endpoint's unless it has its own."""
        mode = self.mode_of(host_config)
        endpoints = (networking_config or {}).get("EndpointsConfig") or {}
        if (mac_address or any((e or {}).get("MacAddress") for e in endpoints.values())) and \
                (mode in ("host", "none") or mode.startswith("container:")):
            raise InvalidArgument("conflicting options: mac-address and the network mode")
        if mode.startswith("container:"):
            self.containers.get(mode.partition(":")[2])  # NotFound if missing
            return []
        if mode in ("host", "none"):
            if endpoints and set(endpoints) != {mode}:
                raise InvalidArgument(f"container cannot be disconnected from host network or connected to "
                                      f"host network" if mode == "host" else
                                      "container cannot be connected to multiple networks with one of the "
                                      "networks in private (none) mode")
            return []
        network = self.get(mode)
        if network.driver != "bridge":
            raise InvalidArgument(f"invalid network mode {mode}")
        wanted = endpoints.get(mode) or endpoints.get(network.name) or endpoints.get(network.id) or {}
        if mac_address and not wanted.get("MacAddress"):
            wanted = dict(wanted, MacAddress=mac_address)
        return [self._plan_endpoint(network, container_id, wanted)]

    def _plan_endpoint(self, network, container_id, wanted):
        ip = ((wanted.get("IPAMConfig") or {}).get("IPv4Address") or "")
        ip6 = ((wanted.get("IPAMConfig") or {}).get("IPv6Address") or "")
        aliases = list(wanted.get("Aliases") or [])
        if (ip or ip6 or aliases) and not network.user_defined:
            raise InvalidArgument("user specified IP address is supported on user defined networks only"
                                  if ip or ip6 else "network-scoped alias is supported only for containers in user "
                                  "defined networks")
        if ip:
            ip = str(ipam.parse_address(ip))
            ipam.lease_address(network.subnet, network.gateway, network.ip_range, set(network.aux_addresses.values()),
                               ipaddress.ip_address(ip))
        if ip6:
            if network.subnet6 is None:
                raise InvalidArgument(f"invalid address {ip6}: network {network.name} has no IPv6 (--ipv6)")
            ip6 = str(ipam.parse_address(ip6, version=6))
            ipam.lease_address(network.subnet6, network.gateway6, None, set(), ipaddress.ip_address(ip6))
        # Links of an endpoint are names its container's DNS queries resolve (`ALIAS` as `NAME`).
        links = [f"{name}:{alias}" for name, alias in
                 check_links(wanted.get("Links"), f"EndpointsConfig.{network.name}.Links")]
        mac = ipam.parse_mac(wanted["MacAddress"]) if wanted.get("MacAddress") else ""
        link_local = ipam.parse_link_local((wanted.get("IPAMConfig") or {}).get("LinkLocalIPs") or [])
        return (network.id, container_id, json.dumps(aliases), ip, json.dumps(links), mac, json.dumps(link_local),
                ip6)

    def record(self, rows):
        with self.db.transaction() as cur:
            for row in rows:
                cur.execute("INSERT INTO leases (network_id, container_id, aliases, requested_ip, links, requested_mac,"
                            " link_local_ips, requested_ip6) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

    def monitor_entries(self, container, netns_pid_of):
        """The monitor's `netns` key: `host`, or the netns of another container (`container:X`)."""
        mode = self.mode_of(container.host_config)
        if mode == "host":
            return [("netns", "host")]
        if mode.startswith("container:"):
            other = self.containers.get(mode.partition(":")[2])
            pid = netns_pid_of(other)
            if not pid:
                raise Conflict(f"cannot join network of a non running container: {other.name}")
            return [("netns", f"/proc/{pid}/ns/net")]
        return []

    # ---- containers: endpoints live ------------------------------------------------------

    def _rows_of(self, container_id):
        return self.db.query("SELECT * FROM leases WHERE container_id = ? ORDER BY rowid", (container_id,))

    def container_started(self, container, pid):
        """Between `created` and `start`: lease, veth, address and route for each network of the
        container (eth0, eth1, …), then its /etc/hosts and /etc/resolv.conf. Blocking. On failure
        what was made is released and the error raised."""
        try:
            for number, row in enumerate(self._rows_of(container.id)):
                network = self.get(row["network_id"])
                self._connect_endpoint(network, container, pid, f"eth{number}", row)
                self._emit_endpoint("connect", network, container.id)
        except BaseException:
            self.container_stopped(container.id)
            raise
        mode = self.mode_of(container.host_config)
        if mode in PREDEFINED and mode != "bridge":
            self._on_predefined[container.id] = self.get(mode)
            self._emit_endpoint("connect", self._on_predefined[container.id], container.id)
        self.write_files(container)
        # Containers linking to this one see its new address (Docker updates their hosts files too).
        for parent_id in self.links.linking_to(container.id):
            try:
                parent = self.containers.get(parent_id)
            except MinictrError:
                continue
            if parent.state.alive:
                self.write_files(parent)

    def _connect_endpoint(self, network, container, pid, ifname, row):
        from minictr.networks import plumbing

        with self._lock:
            used = {r["ip"] for r in self.db.query("SELECT ip FROM leases WHERE network_id = ? AND ip != ''",
                                                   (network.id,))}
            used |= set(network.aux_addresses.values())  # reserved by the network's creator
            wanted = ipaddress.ip_address(row["requested_ip"]) if row["requested_ip"] else None
            ip = ipam.lease_address(network.subnet, network.gateway, network.ip_range, used, wanted)
            ip6 = self._lease_ip6(network, row)
            mac = row["requested_mac"] or ipam.mac_for(ip)
            with self.db.transaction() as cur:
                cur.execute("UPDATE leases SET ip = ?, mac = ?, ip6 = ? WHERE network_id = ? AND container_id = ?",
                            (str(ip), mac, str(ip6 or ""), network.id, container.id))
        self._unlinked(self._veth_name(container.id, network.id))  # a restart: the last run's veth gone first
        v6 = (ip6, network.subnet6.prefixlen, None if network.internal else network.gateway6) if ip6 else None
        plumbing.attach(network.bridge, self._veth_name(container.id, network.id), pid, ifname, ip,
                        network.subnet.prefixlen, mac, None if network.internal else network.gateway,
                        bridge_gateway=network.gateway, v6=v6, bridge_gateway6=_gateway6(network), mtu=network.mtu,
                        extra_addresses=json.loads(row["link_local_ips"]), isolated=not network.icc)
        self._run_hooks("on_container_connected", network, container.id, str(ip), self._names(container, row))

    def _lease_ip6(self, network, row):
        """The endpoint's IPv6 address on a dual-stack network (--ip6 if given), else None."""
        if network.subnet6 is None:
            return None
        used = {r["ip6"] for r in self.db.query("SELECT ip6 FROM leases WHERE network_id = ? AND ip6 != ''",
                                                (network.id,))}
        wanted = ipaddress.ip_address(row["requested_ip6"]) if row["requested_ip6"] else None
        return ipam.lease_address(network.subnet6, network.gateway6, None, used, wanted)

    def _veth_name(self, container_id, network_id):
        return self.veth_prefix + hashlib.sha256((container_id + network_id).encode()).hexdigest()[:10]

    def container_stopped(self, container_id, wait=False):
        """The container has ended (or its start failed): its veths (normally gone with its namespace)
        and leases are released; its attachments stay for its next start. Blocking.

        The veths go in the background unless `wait`: a veth whose peer's namespace is dying takes
        the kernel (or us) ≈ 20 ms under the rtnl lock, which `wait` and `run --rm` need not wait
        for. A new start of the container (`_connect_endpoint`) and its removal wait for it."""
        from minictr.networks import plumbing

        for row in self._rows_of(container_id):
            name = self._veth_name(container_id, row["network_id"])
            if wait:
                self._unlinked(name)
                plumbing.remove_link(name, grace=0.05)
            else:
                with self._lock:
                    future = None
                    if name not in self._unlinking:
                        future = plumbing.in_background(plumbing.remove_link, name, grace=0.05)
                        self._unlinking[name] = future
                # Outside the lock: a future already done runs its callback at once, in this
                # thread, and the callback takes the lock (held here, it hung the daemon).
                if future is not None:
                    future.add_done_callback(lambda f, name=name: self._unlink_done(name, f))
            if row["ip"]:
                with self.db.transaction() as cur:
                    cur.execute("UPDATE leases SET ip = '', mac = '', ip6 = '' WHERE network_id = ? "
                                "AND container_id = ?",
                                (row["network_id"], container_id))
                network = self.get(row["network_id"])
                self._run_hooks("on_container_disconnected", network, container_id, row["ip"])
                self._emit_endpoint("disconnect", network, container_id)
        predefined = self._on_predefined.pop(container_id, None)
        if predefined is not None:
            self._emit_endpoint("disconnect", predefined, container_id)

    def _unlink_done(self, name, future):
        with self._lock:
            if self._unlinking.get(name) is future:
                del self._unlinking[name]
        if future.exception() is not None:
            log.warning("removing veth %s: %s", name, future.exception())

    def _unlinked(self, name):
        """Wait for a background removal of veth `name`, if one is under way."""
        with self._lock:
            future = self._unlinking.get(name)
        if future is not None:
            try:
                future.result()
            except Exception:
                pass  # logged by _unlink_done; the caller removes it again or fails on it

    def container_removed(self, container_id, wait=True):
        """Its leases go. Its veths too: `rm` waits until they are gone; an auto-removal (`--rm`)
        leaves the last few ms of a veth's deletion to the background removal started when the
        container ended (the kernel deletes it with the container's namespace anyway)."""
        self.container_stopped(container_id, wait=wait)
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM leases WHERE container_id = ?", (container_id,))
        self.links.forget(container_id)

    def reconcile(self, running):
        """At the daemon's start: leases of containers that are not running are freed, their
        attachments of containers that no longer exist dropped, and our veths no running container
        owns removed."""
        from minictr.networks import plumbing

        known = set(self.containers.ids())
        self.links.forget_all_but(known)
        for container_id in running:
            mode = self.mode_of(self.containers.get(container_id).host_config)
            if mode in PREDEFINED and mode != "bridge":
                self._on_predefined[container_id] = self.get(mode)
        for row in self.db.query("SELECT DISTINCT container_id FROM leases"):
            if row["container_id"] not in known:
                self.container_removed(row["container_id"])
            elif row["container_id"] not in running:
                self.container_stopped(row["container_id"])
        wanted = {self._veth_name(r["container_id"], r["network_id"])
                  for r in self.db.query("SELECT * FROM leases WHERE ip != ''")}
        for name in plumbing.links_with_prefix(self.veth_prefix):
            if name not in wanted:
                plumbing.remove_link(name)

    # ---- connect / disconnect -------------------------------------------------------------

    def connect(self, ref, container, ip=None, aliases=(), pid=0, links=(), mac=None, link_local=(), ip6=None):
        """`network connect`: attach; live (a new ethN) when the container runs (`pid`)."""
        network = self.get(ref)
        if network.driver != "bridge":
            raise InvalidArgument(f"container cannot be connected to network {network.name}: "
                                  f"{network.driver} mode")
        mode = self.mode_of(container.host_config)
        if mode in ("host", "none") or mode.startswith("container:"):
            raise InvalidArgument(f"container sharing network namespace with another container or host cannot be "
                                  f"connected to any other network" if mode != "none" else
                                  "container cannot be connected to multiple networks with one of the networks in "
                                  "private (none) mode")
        if self.db.query_one("SELECT 1 FROM leases WHERE network_id = ? AND container_id = ?",
                             (network.id, container.id)):
            raise Forbidden(f"endpoint with name {container.name} already exists in network {network.name}")
        addresses = {key: value for key, value in (("IPv4Address", ip), ("IPv6Address", ip6)) if value}
        wanted = {"Aliases": list(aliases), "IPAMConfig": dict(addresses, LinkLocalIPs=list(link_local)),
                  "Links": list(links), "MacAddress": mac}
        row = self._plan_endpoint(network, container.id, wanted)
        self.record([row])
        if pid:
            number = len(self._rows_of(container.id)) - 1
            try:
                lease = self.db.query_one("SELECT * FROM leases WHERE network_id = ? AND container_id = ?",
                                          (network.id, container.id))
                self._connect_endpoint(network, container, pid, self._free_ifname(pid, number), lease)
            except BaseException:
                self._drop(network.id, container.id)
                raise
            self.write_files(container)
            # Docker's event comes with the endpoint: a stopped container's is at its next start.
            self._emit_endpoint("connect", network, container.id)

    @staticmethod
    def _free_ifname(pid, number):
        from minictr.networks import plumbing

        present = set(plumbing.container_interfaces(pid))
        while f"eth{number}" in present:
            number += 1
        return f"eth{number}"

    def _drop(self, network_id, container_id):
        from minictr.networks import plumbing

        row = self.db.query_one("SELECT * FROM leases WHERE network_id = ? AND container_id = ?",
                                (network_id, container_id))
        plumbing.remove_link(self._veth_name(container_id, network_id))
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM leases WHERE network_id = ? AND container_id = ?", (network_id, container_id))
        if row and row["ip"]:
            self._run_hooks("on_container_disconnected", self.get(network_id), container_id, row["ip"])

    def disconnect(self, ref, container, force=False):
        """`network disconnect`: the interface goes at once when the container runs."""
        network = self.get(ref)
        if not self.db.query_one("SELECT 1 FROM leases WHERE network_id = ? AND container_id = ?",
                                 (network.id, container.id)):
            if force:
                return
            raise InvalidArgument(f"container {container.id} is not connected to network {network.name}")
        live = bool(self.db.query_one("SELECT ip FROM leases WHERE network_id = ? AND container_id = ? AND ip != ''",
                                      (network.id, container.id)))
        self._drop(network.id, container.id)
        self.write_files(container)
        # Docker logs it for a stopped container too, and twice for a running one (moby's
        # disconnectFromNetwork and DisconnectFromNetwork both do: seen with Docker 20.10).
        for _ in range(2 if live else 1):
            self._emit_endpoint("disconnect", network, container.id)

    # ---- what the others read ----------------------------------------------------------------

    def endpoints(self, container):
        """[(network, ip, aliases)] of a running container (ip '' when not running)."""
        container_id = getattr(container, "id", container)
        return [(self.get(r["network_id"]), r["ip"], json.loads(r["aliases"])) for r in self._rows_of(container_id)]

    def _names(self, container, row):
        return [container.name, container.id[:12], *json.loads(row["aliases"])]

    def resolve(self, network_id, name, client=None):
        """Addresses on `network_id` of running containers called `name` (name, alias, short id). For
        the container at address `client`, the links of its endpoint come first: `NAME:ALIAS` makes
        ALIAS stand for NAME, for that container only (as Docker's per-endpoint aliases)."""
        rows = self.db.query("SELECT * FROM leases WHERE network_id = ? AND ip != ''", (network_id,))
        if client:
            name = _linked_name(rows, client, name)
        found = []
        for row in rows:
            try:
                container = self.containers.get(row["container_id"])
            except MinictrError:
                continue
            if name in self._names(container, row) or (len(name) >= 12 and container.id.startswith(name)):
                found += [row["ip"]] + ([row["ip6"]] if row["ip6"] else [])
        return found

    def default_binding_ip(self, network_id):
        """The host address of the network's published ports that name none (host_binding_ipv4; '': every one)."""
        try:
            return self.get(network_id).options.get(HOST_BINDING_OPTION, "")
        except NotFound:
            return ""

    def bridge_ip(self, container_id):
        """The container's address on the default bridge ('' when it has none, or does not run)."""
        row = self.db.query_one("SELECT l.ip FROM leases l JOIN networks n ON n.id = l.network_id "
                                "WHERE n.name = 'bridge' AND l.container_id = ?", (container_id,))
        return row["ip"] if row else ""

    def remove_link(self, link_name):
        """`rm --link /PARENT/ALIAS`: the legacy link goes, and its line from the parent's hosts file."""
        self.write_files(self.links.remove(link_name))

    def link_environment(self, container):
        """Before the container starts: the legacy variables of its links (none but on the default
        bridge). A target that does not run fails the start, in Docker's words."""
        if self.mode_of(container.host_config) != "bridge":
            return []
        self.links.check_startable(container)
        return self.links.environment(container, self.bridge_ip)

    def gateway_addresses(self):
        """{network id: gateway} of every user-defined network (where their DNS server listens)."""
        return {n.id: str(n.gateway) for n in self._all() if n.user_defined and n.gateway}

    def settings(self, container):
        """Container inspect's NetworkSettings fields (Docker's shape)."""
        networks = {}
        for network, ip, aliases in self.endpoints(container):
            row = self.db.query_one("SELECT mac, requested_ip, requested_ip6, links, ip6, link_local_ips FROM leases "
                                    "WHERE network_id = ? AND container_id = ?", (network.id, container.id))
            # Docker's DNSNames: what the network's DNS answers for (user-defined networks only).
            dns_names = list(dict.fromkeys([container.name, *aliases, container.id[:12]])) \
                if network.user_defined else None
            links = (json.loads(row["links"]) if row else None) or None
            networks[network.name] = {
                "IPAMConfig": _ipam_config(row), "Links": links, "Aliases": aliases or None,
                "MacAddress": row["mac"] if row else "",
                "DriverOpts": None, "GwPriority": 0, "NetworkID": network.id,
                "EndpointID": _endpoint_id(network.id, container.id) if ip else "",
                # An --internal network gives its endpoints no gateway (Docker's bridge driver sets none).
                "Gateway": str(network.gateway) if ip and not network.internal else "", "IPAddress": ip,
                "IPPrefixLen": network.subnet.prefixlen if ip else 0, **_ipv6_fields(network, row),
                "DNSNames": dns_names}
        mode = self.mode_of(container.host_config)
        if mode in ("host", "none"):
            networks[mode] = {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "DriverOpts": None,
                              "GwPriority": 0, "NetworkID": self.get(mode).id, "EndpointID": "", "Gateway": "", "IPAddress": "",
                              "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                              "GlobalIPv6PrefixLen": 0, "DNSNames": None}
        settings = {"Networks": networks}
        default = networks.get("bridge")
        if default:
            # The default bridge's only: Docker's top-level fields never show a user network's.
            settings.update(IPAddress=default["IPAddress"], Gateway=default["Gateway"],
                            IPPrefixLen=default["IPPrefixLen"], MacAddress=default["MacAddress"],
                            EndpointID=default["EndpointID"], Bridge=self.default_bridge)
        return settings

    def list_settings(self, containers):
        """{container id: NetworkSettings.Networks} for GET /containers/json, in the list's shape
        (Docker's container view: no aliases, links or DNS names). Two queries for the whole list:
        `ps` is measured."""
        networks = {n.id: n for n in self._all()}
        by_name = {n.name: n for n in networks.values()}
        leases = {}
        for row in self.db.query("SELECT * FROM leases ORDER BY rowid"):
            leases.setdefault(row["container_id"], []).append(row)
        answer = {}
        for container in containers:
            entries = {}
            for row in leases.get(container.id, ()):
                network = networks.get(row["network_id"])
                if network is not None:
                    entries[network.name] = _list_endpoint(network, container.id, row)
            mode = self.mode_of(container.host_config)
            if mode in ("host", "none") and mode in by_name:
                entries[mode] = _list_endpoint(by_name[mode], container.id, None)
            answer[container.id] = entries
        return answer

    # ---- /etc/hosts, /etc/resolv.conf --------------------------------------------------------

    def write_files(self, container):
        """Rewrite the container's hosts and resolv.conf in place (they are bind-mounted: a rename
        would leave the container the old file)."""
        top = os.path.join(self.containers.data_dir, container.id)
        _write_in_place(os.path.join(top, "hosts"), self.hosts_file(container))
        _write_in_place(os.path.join(top, "resolv.conf"), self.resolv_conf(container))

    def hosts_file(self, container):
        from minictr.spec.hosts import extra_host_line, hosts_file

        hostname = container.config["Hostname"]
        lines = [hosts_file(hostname).replace(f"127.0.1.1\t{hostname}\n", "")]
        lines += [extra_host_line(entry) for entry in container.host_config.get("ExtraHosts") or []]
        if self.bridge_ip(container.id):  # legacy links: on the default bridge only, after --add-host's lines
            lines += self.links.hosts_lines(container, self.bridge_ip)
        endpoints = [(n, ip, a) for n, ip, a in self.endpoints(container) if ip]
        for network, ip, aliases in endpoints:
            names = [hostname] + ([container.name] if network.user_defined and container.name != hostname else [])
            names = " ".join(names + [a for a in aliases if a not in names])
            # A dual-stack endpoint's IPv6 address too, with the same names (as Docker's hosts file).
            for address in (ip, self._ip6_of(network.id, container.id)):
                if address:
                    lines.append(f"{address}\t{names}\n")
        if not endpoints:
            lines.append(f"127.0.1.1\t{hostname}\n")
        return "".join(lines)

    def _ip6_of(self, network_id, container_id):
        row = self.db.query_one("SELECT ip6 FROM leases WHERE network_id = ? AND container_id = ?",
                                (network_id, container_id))
        return row["ip6"] if row else ""

    def resolv_conf(self, container):
        host_config = container.host_config
        servers = list(host_config.get("Dns") or [])
        if not servers:
            endpoints = [(n, ip) for n, ip, _ in self.endpoints(container)]
            user_defined = [n for n, _ in endpoints if n.user_defined]
            if user_defined:
                servers = [str(user_defined[0].gateway)]
            elif self.rootless and self.mode_of(host_config) != "host":
                servers = [_SLIRP_DNS]
            else:
                servers = _host_resolvers()
        lines = [f"nameserver {s}\n" for s in servers]
        if host_config.get("DnsSearch"):
            lines.append("search " + " ".join(host_config["DnsSearch"]) + "\n")
        if host_config.get("DnsOptions"):
            lines.append("options " + " ".join(host_config["DnsOptions"]) + "\n")
        return "".join(lines)


def _linked_name(rows, client, name):
    """The name that `name` stands for in the links of the endpoint at address `client`, or `name`."""
    for row in rows:
        if row["ip"] == client:
            for link in json.loads(row["links"] or "[]"):
                target, _, alias = link.partition(":")
                if alias == name:
                    return target
    return name


def _host_resolvers():
    """The host's nameservers, loopback ones left out (they mean nothing in a container's namespace)."""
    servers = []
    try:
        with open("/etc/resolv.conf") as f:
            for line in f:
                words = line.split()
                if len(words) >= 2 and words[0] == "nameserver" and not words[1].startswith("127."):
                    servers.append(words[1])
    except OSError:
        pass
    return servers


def _write_in_place(path, text):
    with open(path, "w") as f:
        f.write(text)


def _ipam_config(lease):
    """An endpoint's IPAMConfig as asked at create or connect (--ip, --ip6, --link-local-ip; Docker's:
    only what was given; else null)."""
    config = {key: lease[column] for key, column in (("IPv4Address", "requested_ip"), ("IPv6Address", "requested_ip6"))
              if lease and lease[column]}
    if lease and json.loads(lease["link_local_ips"]):
        config["LinkLocalIPs"] = json.loads(lease["link_local_ips"])
    return config or None


def _list_endpoint(network, container_id, lease):
    """One network of a container in GET /containers/json; `lease` None for host and none."""
    ip = lease["ip"] if lease else ""
    return {"IPAMConfig": _ipam_config(lease), "Links": None, "Aliases": None,
            "NetworkID": network.id, "EndpointID": _endpoint_id(network.id, container_id) if ip else "",
            "Gateway": str(network.gateway) if ip and not network.internal else "", "IPAddress": ip,
            "IPPrefixLen": network.subnet.prefixlen if ip else 0, **_ipv6_fields(network, lease),
            "MacAddress": lease["mac"] if lease else "", "DriverOpts": None}


def _ipv6_fields(network, lease):
    """An endpoint's IPv6 address, its prefix length and the network's IPv6 gateway ('' and 0 without one;
    no gateway on an --internal network, as for IPv4)."""
    ip6 = lease["ip6"] if lease else ""
    return {"IPv6Gateway": str(network.gateway6) if ip6 and not network.internal else "", "GlobalIPv6Address": ip6,
            "GlobalIPv6PrefixLen": network.subnet6.prefixlen if ip6 else 0}


def _gateway6(network):
    """(gateway, prefix length) the bridge of a dual-stack network has; None for an IPv4-only one."""
    return (network.gateway6, network.subnet6.prefixlen) if network.subnet6 else None


def _check_host_ipv6():
    """An IPv6 network needs IPv6 in the daemon's network namespace (the host's as root, the
    rootless one otherwise); CI containers often run with it disabled."""
    try:
        with open("/proc/sys/net/ipv6/conf/all/disable_ipv6") as f:
            disabled = f.read().strip() != "0"
    except OSError:
        disabled = True  # no /proc/sys/net/ipv6: the kernel has no IPv6 at all
    if disabled:
        raise InvalidArgument("cannot create an IPv6 network: IPv6 is disabled on this host "
                              "(net.ipv6.conf.all.disable_ipv6=1)")


def _endpoint_id(network_id, container_id):
    return hashlib.sha256((network_id + "/" + container_id).encode()).hexdigest()


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
