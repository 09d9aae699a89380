"""Outbound's nftables table is the daemon's own: named after its default bridge, and only it is rewritten
or deleted (two root daemons in one namespace keep each other's rules)."""

import re

import pytest

from minictr.networks import outbound


def test_table_is_named_after_the_default_bridge():
    assert outbound.table_name("minictr0") == "minictr"
    assert outbound.table_name(None) == "minictr"
    assert outbound.table_name("mct1a2b3c") == "minictr-mct1a2b3c"
    with pytest.raises(outbound.OutboundError):
        outbound.table_name('x"; flush ruleset')


def test_ruleset_names_only_its_own_table():
    script = outbound.ruleset({"mcbr-1": ("10.1.0.0/24", False, True)}, "minictr-mctab")
    tables = set(re.findall(r"table inet (\S+)", script))
    assert tables == {"minictr-mctab"}
    assert "flush" not in script
    # Without bridges: the table (made first, so the delete cannot fail) and nothing else goes.
    assert outbound.ruleset({}, "minictr-mctab") == "table inet minictr-mctab {}\ndelete table inet minictr-mctab\n"


def test_close_of_one_outbound_leaves_the_others_table(monkeypatch):
    scripts = []
    monkeypatch.setattr(outbound, "_run_nft", scripts.append)
    monkeypatch.setattr(outbound, "_enable_forwarding", lambda: None)
    monkeypatch.setattr(outbound, "list_chains", lambda nft: [])
    synced = []
    monkeypatch.setattr(outbound.filter_forward, "sync",
                        lambda chain, bridges, chains: synced.append((chain, bridges)) or ([], []))
    first, second = outbound.Outbound("minictr-mcta"), outbound.Outbound("minictr-mctb")
    first.restore({"mcta": ("172.17.0.0/16", False, True)})
    second.restore({"mctb": ("172.18.0.0/16", False, True)})
    assert synced == [("MINICTR-FWD-mcta", {"mcta": False}), ("MINICTR-FWD-mctb", {"mctb": False})]
    scripts.clear()
    synced.clear()
    second.close()
    assert scripts == ["table inet minictr-mctb {}\ndelete table inet minictr-mctb\n"]
    assert synced == [("MINICTR-FWD-mctb", {})]


def test_filter_forward_is_synced_when_bridges_change_not_for_each_published_port(monkeypatch):
    monkeypatch.setattr(outbound, "_run_nft", lambda script: None)
    monkeypatch.setattr(outbound, "_enable_forwarding", lambda: None)
    monkeypatch.setattr(outbound, "list_chains", lambda nft: [])
    synced = []
    monkeypatch.setattr(outbound.filter_forward, "sync",
                        lambda chain, bridges, chains: synced.append(dict(bridges)) or ([], []))
    out = outbound.Outbound()
    out.restore({"minictr0": ("172.17.0.0/16", False, True)})
    out.publish("c1", [("0.0.0.0", 8080, "172.17.0.2", 80)])
    out.add("mcbr-1", "10.9.0.0/24", internal=True)
    out.remove("mcbr-1")
    assert synced == [{"minictr0": False}, {"minictr0": False, "mcbr-1": True}, {"minictr0": False}]



def test_bridges_are_isolated_from_each_other_before_any_accept():
    script = outbound.ruleset({"mcbr-a": ("10.1.0.0/24", False, True), "mcbr-b": ("10.2.0.0/24", False, True),
                               "mcbr-c": ("10.3.0.0/24", True, True)}, "minictr-x")
    forward = script.split("chain forward {")[1].splitlines()
    drops = [line.strip() for line in forward if "} drop" in line]
    assert drops == ['iifname "mcbr-a" oifname { "mcbr-b", "mcbr-c" } drop',
                     'iifname "mcbr-b" oifname { "mcbr-a", "mcbr-c" } drop',
                     'iifname "mcbr-c" oifname { "mcbr-a", "mcbr-b" } drop']
    first_accept = next(i for i, line in enumerate(forward) if "accept" in line and "policy" not in line)
    assert max(forward.index("    " + d) for d in drops) < first_accept
    # One bridge alone: nothing to isolate it from.
    assert "} drop" not in outbound.ruleset({"mcbr-a": ("10.1.0.0/24", False, True)})


def test_published_ports_dnat_local_clients_one_address_before_any():
    script = outbound.ruleset({"mct1": ("10.0.0.0/24", False, True)}, "minictr-mct1",
                              [("0.0.0.0", 8080, "10.0.0.2", 80, True), ("127.0.0.1", 8081, "10.0.0.3", 80, True)])
    output = script[script.index("chain output"):script.index("chain postrouting")]
    assert output.index("ip daddr 127.0.0.1 tcp dport 8081 dnat ip to 10.0.0.3:80") < \
        output.index("fib daddr type local tcp dport 8080 dnat ip to 10.0.0.2:80")
    assert 'ip saddr 127.0.0.0/8 oifname "mct1" masquerade' in script
    assert 'iifname "mct1" ip daddr 127.0.0.0/8 drop' in script


def test_without_route_localnet_loopback_clients_are_left_to_the_listener():
    script = outbound.ruleset({"mct1": ("10.0.0.0/24", False, True)}, "minictr-mct1",
                              [("0.0.0.0", 8080, "10.0.0.2", 80, False)])
    assert "ip saddr != 127.0.0.0/8 fib daddr type local tcp dport 8080 dnat ip to 10.0.0.2:80" in script


def test_a_bridge_without_ip_masquerade_is_forwarded_but_not_masqueraded():
    # com.docker.network.bridge.enable_ip_masquerade=false: Docker routes the subnet out as it is.
    script = outbound.ruleset({"mcbr-a": ("10.1.0.0/24", False, False), "mcbr-b": ("10.2.0.0/24", False, True)})
    assert "ip saddr 10.1.0.0/24" not in script and 'ip saddr 10.2.0.0/24 oifname != "mcbr-b" masquerade' in script
    assert 'iifname "mcbr-a" accept' in script
