"""The build plan, read as data: only lab and documentation addresses, no default route, no root links."""

from __future__ import annotations

import ipaddress

import pytest

from kubenetmon.lab import Topology
from kubenetmon.lab.plan import NamespaceNames, Plan, plan
from kubenetmon.lab.ranges import is_documentation, is_lab

PREFIX = "knm-test01-"


@pytest.fixture(params=[Topology.demo(), Topology.two_nodes()], ids=["demo", "two-nodes"])
def build(request: pytest.FixtureRequest) -> Plan:
    return plan(request.param, NamespaceNames(PREFIX))


def _addresses(line: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    found = []
    for word in line.replace(",", " ").split():
        try:
            found.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    return found


def test_every_address_in_the_plan_is_a_lab_or_documentation_address(build: Plan) -> None:
    lines = [line for lines in build.commands.values() for line in lines] + list(build.nft.values())
    addresses = [a for line in lines for a in _addresses(line)]
    assert addresses
    strangers = [a for a in addresses if not (is_lab(a) or is_documentation(a))]
    assert strangers == []


def test_no_namespace_gets_a_default_route(build: Plan) -> None:
    routes = [line for lines in build.commands.values() for line in lines if line.startswith("route")]
    assert routes
    assert not [r for r in routes if "default" in r.split() or "0.0.0.0/0" in r or "::/0" in r]
    assert not [r for r in routes if ipaddress.ip_network(r.split()[2]).prefixlen < 15]


def test_every_veth_end_is_created_inside_a_lab_namespace(build: Plan) -> None:
    for line in build.veths:
        words = line.split()
        targets = [words[i + 1] for i, word in enumerate(words) if word == "netns"]
        assert len(targets) == 2
        assert all(target in build.namespaces for target in targets), line


def test_every_namespace_carries_the_lab_prefix(build: Plan) -> None:
    assert all(name.startswith(PREFIX) for name in build.namespaces)
    assert len(set(build.namespaces)) == len(build.namespaces)


def test_nodes_get_accounting_and_events_unless_asked_to_keep_the_defaults() -> None:
    topology, names = Topology.two_nodes(), NamespaceNames(PREFIX)
    with_accounting = plan(topology, names).node_sysctls[names.node("node-1")]
    without = plan(topology, names, conntrack_accounting=False).node_sysctls[names.node("node-1")]
    assert with_accounting["net.netfilter.nf_conntrack_acct"] == 1
    assert with_accounting["net.netfilter.nf_conntrack_events"] == 1
    assert "net.netfilter.nf_conntrack_acct" not in without
    assert "net.netfilter.nf_conntrack_events" not in without


def test_only_bridge_nodes_switch_on_bridge_netfilter() -> None:
    topology, names = Topology.two_nodes(), NamespaceNames(PREFIX)
    sysctls = plan(topology, names).node_sysctls
    assert sysctls[names.node("node-1")]["net.bridge.bridge-nf-call-iptables"] == 1
    assert sysctls[names.node("node-1")]["net.bridge.bridge-nf-call-ip6tables"] == 1
    assert "net.bridge.bridge-nf-call-iptables" not in sysctls[names.node("node-2")]


def test_every_node_dnats_each_service_to_all_its_backends() -> None:
    topology, names = Topology.demo(), NamespaceNames(PREFIX)
    scripts = plan(topology, names).nft
    (service,) = topology.services
    backends = [topology.pod(key) for key in service.backend_keys]
    for node in topology.nodes:
        script = scripts[names.node(node.name)]
        for pod in backends:
            assert f"{pod.ipv4}" in script and f"{pod.ipv6}" in script
        assert f"ip daddr {service.vip_v4} tcp dport 80 dnat ip to numgen random mod 2" in script
        assert f"ip6 daddr {service.vip_v6} udp dport 80 dnat ip6 to numgen random mod 2" in script
