"""minictr's bridges through iptables' `filter` FORWARD chain, on a host that also runs Docker.

Docker sets the policy of iptables' filter FORWARD chain to DROP. With br_netfilter
(`net.bridge.bridge-nf-call-iptables=1`, and -ip6tables) even packets between two containers on one
of minictr's bridges go through that chain, so Docker's policy drops them, and every packet a container
sends out. An accept in minictr's own nftables table cannot help: each base chain gives its own
verdict. So, as Docker (its DOCKER-USER / DOCKER-FORWARD jumps) and Podman's netavark did (its
iptables driver's NETAVARK_FORWARD, until netavark kept to nftables), the daemon adds one rule to
FORWARD, a jump to a chain of its own, and keeps only its bridges' rules in that chain:

    -A FORWARD -m comment --comment minictr -j MINICTR-FORWARD
    -A MINICTR-FORWARD -o BRIDGE -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT   (replies back in)
    -A MINICTR-FORWARD -i BRIDGE -j ACCEPT                                              (out, and bridge to itself)
    -A MINICTR-FORWARD -i BRIDGE -o BRIDGE -j ACCEPT                                    (an --internal bridge)

The jump is appended, not inserted first: Docker's own chains (and DOCKER-USER, where users filter
forwarded traffic) still see every packet before minictr's accept, so Docker's isolation of its own
bridges is kept; minictr's chain only takes what would otherwise meet the policy. minictr's nftables
table (outbound.py) still drops what crosses from one of its networks to another, and what leaves an
--internal one.

Where: in every backend whose filter table exists in the daemon's network namespace, never creating
one. iptables-nft keeps it as nftables' `ip filter` / `ip6 filter` tables (seen in `nft list
chains`); iptables-legacy as x_tables (listed in /proc/net/ip_tables_names, ip6_tables_names). Both
can hold rules at once, and each drops on its own, so each one that exists gets the jump. The rules
are written with that backend's own iptables-restore: a rule written with `nft` (its `ct state`) is
one iptables-nft 1.8.9 cannot read back, after which it refuses the whole table ("table `filter' is
incompatible, use 'nft' tool") and Docker could no longer change its own rules.

Each daemon its own chain (`chain_name()`, after its default bridge, as its nftables table is): two
daemons in one namespace never touch each other's. Every change rewrites the chain in one
iptables-restore transaction, and adds the jump only when FORWARD has none, so a daemon killed with -9
and started again does not add a second one. With no bridge left (and when the daemon stops) the
jump and the chain go; nothing else of the table is touched.

Rootless daemons have a network namespace of their own, with no filter table unless something there
makes one: their traffic leaves through slirp4netns's sockets in the host's namespace, never through
its FORWARD chain, so nothing is added.
"""

import os
import re
import shutil
import subprocess
from typing import NamedTuple

CHAIN = "MINICTR-FORWARD"
COMMENT = "minictr"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")  # no '+' (an iptables wildcard), no '!', no space


class FilterForwardError(Exception):
    pass


class Backend(NamedTuple):
    """One iptables backend for one address family: where its filter table shows and its tools."""
    name: str  # "nft" or "legacy"
    family: str  # nftables' family of the table: "ip" or "ip6"
    save: str
    restore: str

    def __str__(self):
        return f"{'ip6tables' if self.family == 'ip6' else 'iptables'}-{self.name}"

    def present(self, nft_chains, proc="/proc"):
        """Whether this backend's filter FORWARD chain exists (read only: nothing is created to tell)."""
        if self.name == "nft":
            return any(c.get("family") == self.family and c.get("table") == "filter" and c.get("name") == "FORWARD"
                       for c in nft_chains)
        names = os.path.join(proc, "net", "ip6_tables_names" if self.family == "ip6" else "ip_tables_names")
        try:
            with open(names) as f:
                return "filter" in f.read().split()
        except OSError:
            return False  # no x_tables for this family (module absent, IPv6 off)


BACKENDS = tuple(Backend(name, family, f"{tool}-{name}-save", f"{tool}-{name}-restore")
                 for name in ("nft", "legacy") for family, tool in (("ip", "iptables"), ("ip6", "ip6tables")))


def chain_name(table):
    """The daemon's chain, named after its nftables table: MINICTR-FORWARD for `minictr`,
    MINICTR-FWD-<default bridge> for `minictr-<default bridge>` (at most 27 characters; iptables takes 28)."""
    if table == "minictr":
        return CHAIN
    return "MINICTR-FWD-" + _checked(table.removeprefix("minictr-"))


def _checked(name):
    if not _NAME.fullmatch(name):
        raise FilterForwardError(f"invalid interface name for an iptables rule: {name!r}")
    return name


def chain_rules(chain, bridges):
    """The rule lines of `chain`, as iptables-save prints them. bridges: {name: internal}."""
    rules = []
    for name in sorted(bridges):
        _checked(name)
        if bridges[name]:
            rules.append(f"-A {chain} -i {name} -o {name} -j ACCEPT")
        else:
            rules.append(f"-A {chain} -o {name} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
            rules.append(f"-A {chain} -i {name} -j ACCEPT")
    return rules


def read_state(saved, chain):
    """From `iptables-save -t filter`: (the FORWARD rules that jump to `chain`, as their specs after
    `-A FORWARD `; whether `chain` exists; its rule lines)."""
    jumps, exists, rules = [], False, []
    for line in saved.splitlines():
        if line.split(" ", 1)[0] == f":{chain}":
            exists = True
        elif line.startswith("-A FORWARD ") and line.split()[-2:] == ["-j", chain]:
            jumps.append(line[len("-A FORWARD "):])
        elif line.startswith(f"-A {chain} "):
            rules.append(line)
    return jumps, exists, rules


def restore_script(chain, bridges, saved):
    """The iptables-restore --noflush input that brings the filter table from `saved` to: `chain`
    holding the rules of `bridges` and one jump to it from FORWARD; with no bridges, neither. None when
    the table is so already."""
    jumps, exists, rules = read_state(saved, chain)
    wanted = chain_rules(chain, bridges)
    if bridges and len(jumps) == 1 and exists and rules == wanted:
        return None
    if not bridges and not jumps and not exists:
        return None
    lines = ["*filter"]
    if bridges:
        # Declaring a user chain in a --noflush restore makes it, or empties it if it is there.
        lines += [f":{chain} - [0:0]", *wanted]
        lines += [f"-D FORWARD {spec}" for spec in jumps[1:]]
        if not jumps:
            lines.append(f"-A FORWARD -m comment --comment {COMMENT} -j {chain}")
    else:
        lines += [f"-D FORWARD {spec}" for spec in jumps]
        if exists:
            lines += [f":{chain} - [0:0]", f"-X {chain}"]
    return "\n".join(lines + ["COMMIT", ""])


def _tool(name):
    # Rootless daemons get a PATH without /usr/sbin when the user's has none.
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)), None)
    if found is None:
        raise FilterForwardError(f"{name} is not installed (Debian package iptables): "
                                 "Docker's FORWARD policy may drop the containers' traffic")
    return found


def _run(argv, script=None):
    try:
        result = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FilterForwardError(f"{os.path.basename(argv[0])}: {e}") from None
    if result.returncode != 0:
        raise FilterForwardError(f"{os.path.basename(argv[0])} failed: {result.stderr.strip() or result.returncode}")
    return result.stdout


def sync_backend(backend, chain, bridges):
    """Bring one backend's filter table to `bridges` (see restore_script)."""
    script = restore_script(chain, bridges, _run([_tool(backend.save), "-t", "filter"]))
    if script is not None:
        # -w: wait for the x_tables lock that iptables-legacy takes (iptables-nft accepts and ignores it).
        _run([_tool(backend.restore), "-w", "10", "--noflush"], script)


def sync(chain, bridges, nft_chains, proc="/proc"):
    """Every backend whose filter table exists gets `chain` for `bridges` ({name: internal}), or loses
    it when `bridges` is empty. Returns (backends done, [error messages])."""
    done, errors = [], []
    for backend in BACKENDS:
        if not backend.present(nft_chains, proc):
            continue
        try:
            sync_backend(backend, chain, bridges)
            done.append(backend)
        except FilterForwardError as e:
            errors.append(f"{backend} filter FORWARD: {e}")
    return done, errors
