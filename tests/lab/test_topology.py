"""Topologies are validated before anything is built: addresses, names, references."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from kubenetmon.lab import ClusterIPService, External, Node, Pod, Topology
from kubenetmon.lab.catalog import numbered_node, pod_on


def node(**changes: object) -> Node:
    return dataclasses.replace(numbered_node(1, "node-1", "zone-a", "bridge"), **changes)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ipv4", "10.0.0.11"),
        ("ipv4", "8.8.8.8"),
        ("ipv6", "2001:4860::8888"),
        ("ipv6", "fd00:db9::11"),
        ("pod_cidr_v4", "192.168.1.0/24"),
        ("pod_cidr_v6", "fd01::/64"),
    ],
)
def test_a_node_address_outside_the_lab_ranges_is_refused(field: str, value: str) -> None:
    with pytest.raises(ValueError, match="outside the lab ranges"):
        node(**{field: value})


def test_a_pod_address_outside_the_lab_ranges_is_refused() -> None:
    with pytest.raises(ValueError, match=r"pod default/web address: 172\.16\.0\.5 is outside the lab ranges"):
        Pod("default", "web", "node-1", ipv4="172.16.0.5", ipv6="fd00:db8:1::5")


def test_an_address_of_the_wrong_family_is_refused() -> None:
    with pytest.raises(ValueError, match="is IPv6, expected IPv4"):
        Pod("default", "web", "node-1", ipv4="fd00:db8:1::5", ipv6="fd00:db8:1::6")


def test_a_lab_address_is_refused_for_an_external_endpoint() -> None:
    with pytest.raises(ValueError, match="not a documentation address"):
        External("s3", "cloud-service", ipv4="198.18.5.5", ipv6="2001:db8::5")


@pytest.mark.parametrize("ipv4", ["8.8.8.8", "192.0.3.1", "203.0.114.1"])
def test_a_public_address_is_refused_for_an_external_endpoint(ipv4: str) -> None:
    with pytest.raises(ValueError, match="not a documentation address"):
        External("internet", "internet", ipv4=ipv4, ipv6="2001:db8::5")


def test_documentation_addresses_are_accepted_for_external_endpoints() -> None:
    for ipv4 in ("192.0.2.7", "198.51.100.7", "203.0.113.7"):
        assert External("x", "internet", ipv4=ipv4, ipv6="2001:db8:7::7").ipv4 == ipv4


def test_a_vip_outside_the_service_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"outside 198\.19\.0\.0/16"):
        ClusterIPService("default", "web", "198.18.7.10", "fd00:db8:ffff::10", 80, 8080, ("p",))


def test_a_node_underlay_address_must_be_on_the_underlay() -> None:
    with pytest.raises(ValueError, match=r"outside 198\.18\.0\.0/24"):
        node(ipv4="198.18.7.11")


def test_the_router_address_cannot_be_a_node_address() -> None:
    with pytest.raises(ValueError, match="belong to the router"):
        node(ipv4="198.18.0.1")


def test_a_pod_outside_its_node_cidr_is_refused() -> None:
    one = numbered_node(1, "node-1", "zone-a", "bridge")
    stray = Pod("default", "p", "node-1", ipv4="198.18.2.10", ipv6="fd00:db8:1::10")
    with pytest.raises(
        ValueError, match=r"pod default/p address: 198\.18\.2\.10 is outside 198\.18\.1\.0/24"
    ):
        Topology("t", nodes=(one,), pods=(stray,))


def test_a_pod_on_an_unknown_node_is_refused() -> None:
    one = numbered_node(1, "node-1", "zone-a", "bridge")
    with pytest.raises(ValueError, match="node 'node-9' is not in the topology"):
        Topology(
            "t", nodes=(one,), pods=(dataclasses.replace(pod_on(one, 10, "default", "p"), node="node-9"),)
        )


def test_a_service_backend_must_be_a_pod_of_its_namespace() -> None:
    one = numbered_node(1, "node-1", "zone-a", "bridge")
    service = ClusterIPService("other", "web", "198.19.0.10", "fd00:db8:ffff::10", 80, 8080, ("p",))
    with pytest.raises(ValueError, match="backend pod other/p is not in the topology"):
        Topology("t", nodes=(one,), pods=(pod_on(one, 10, "default", "p"),), services=(service,))


def test_duplicate_addresses_are_refused() -> None:
    one = numbered_node(1, "node-1", "zone-a", "bridge")
    first, second = pod_on(one, 10, "default", "a"), pod_on(one, 10, "default", "b")
    with pytest.raises(ValueError, match=r"duplicate address '198\.18\.1\.10'"):
        Topology("t", nodes=(one,), pods=(first, second))


def test_overlapping_pod_cidrs_are_refused() -> None:
    one = numbered_node(1, "node-1", "zone-a", "bridge")
    two = dataclasses.replace(numbered_node(2, "node-2", "zone-a", "routed"), pod_cidr_v4="198.18.1.128/25")
    with pytest.raises(ValueError, match="overlap"):
        Topology("t", nodes=(one, two), pods=())


def test_names_must_be_dns_labels() -> None:
    with pytest.raises(ValueError, match="not a DNS label"):
        node(name="Node_1")


def test_the_demo_has_two_zones_three_mixed_nodes_and_eight_pods_in_two_namespaces() -> None:
    demo = Topology.demo()
    assert len(demo.zones) >= 2
    assert len(demo.nodes) == 3
    assert {n.cni for n in demo.nodes} == {"bridge", "routed"}
    assert len(demo.pods) >= 8
    assert len({p.namespace for p in demo.pods}) >= 2
    assert len({p.workload for p in demo.pods if p.workload}) >= 3
    assert {p.workload_kind for p in demo.pods} >= {"Deployment", "StatefulSet", "DaemonSet", "bare"}


def test_the_demo_service_has_backends_on_two_nodes() -> None:
    demo = Topology.demo()
    (service,) = demo.services
    assert len({demo.pod(key).node for key in service.backend_keys}) == 2


def test_the_demo_has_a_cloud_service_in_another_region_and_a_masqueraded_internet_host() -> None:
    demo = Topology.demo()
    cloud = [e for e in demo.externals if e.kind == "cloud-service"]
    internet = [e for e in demo.externals if e.kind == "internet"]
    assert cloud and cloud[0].region not in demo.regions
    assert internet and internet[0].masquerade


def test_every_demo_host_is_dual_stack() -> None:
    demo = Topology.demo()
    hosts = [*demo.nodes, *demo.pods, *demo.externals]
    assert all(ipaddress.ip_address(h.ipv4).version == 4 for h in hosts)
    assert all(ipaddress.ip_address(h.ipv6).version == 6 for h in hosts)
    assert all(s.vip_v4 and s.vip_v6 for s in demo.services)


@pytest.mark.parametrize("topology", [Topology.demo(), Topology.two_nodes()], ids=["demo", "two-nodes"])
def test_a_topology_survives_a_round_trip_through_plain_data(topology: Topology) -> None:
    assert Topology.from_dict(topology.to_dict()) == topology


def test_lookups_name_the_known_items_when_they_miss() -> None:
    with pytest.raises(KeyError, match="known: default/p1a"):
        Topology.two_nodes().pod("default/nope")


def test_a_node_and_an_external_cannot_share_a_name() -> None:
    two = Topology.two_nodes()
    clash = dataclasses.replace(two.externals[0], name="node-1")
    with pytest.raises(ValueError, match="duplicate host name 'node-1'"):
        dataclasses.replace(two, externals=(clash,))
