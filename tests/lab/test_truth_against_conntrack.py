"""The ground truth counts exactly what conntrack counts, and what independent arithmetic predicts.

UDP sizes are computed from the datagram size alone (IPv4 header 20 + UDP 8; IPv6 40 + 8). TCP has no
closed form under GSO, so there the oracle is the kernel's own conntrack entry, read with the Debian
`conntrack` tool, on both nodes the flow crosses.
"""

from __future__ import annotations

import time

import pytest

from kubenetmon.lab import FlowTruth, Lab, traffic
from kubenetmon.lab.ranges import Family
from kubenetmon.lab.traffic import FlowResult
from tests.lab.conntrack_table import CtEntry, conntrack_entries, entry_for

pytestmark = pytest.mark.kernel

FAMILIES = [pytest.param(4, id="ipv4"), pytest.param(6, id="ipv6")]
UDP_HEADERS = {4: 28, 6: 48}


def _truth_and_entry(lab: Lab, node: str, result: FlowResult) -> tuple[FlowTruth, CtEntry]:
    """Truth and conntrack for one flow, read while neither changes (a late ACK would skew one read)."""
    for _ in range(20):
        before = lab.ground_truth([node], settle=0.05).flow(node, result.proto, result.client, result.server)
        entry = entry_for(lab, node, result.proto, result.client)
        after = lab.ground_truth([node]).flow(node, result.proto, result.client, result.server)
        if before == after:
            return after, entry
        time.sleep(0.1)
    raise AssertionError(f"counters of {result.client} on {node} never settled")


def _as_truth(entry: CtEntry) -> FlowTruth:
    return FlowTruth(entry.orig_packets, entry.orig_bytes, entry.reply_packets, entry.reply_bytes)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("count", "size"), [(100, 1000), (50, 3000), (7, 1)], ids=["1000B", "fragmented", "1B"]
)
def test_udp_truth_is_datagrams_times_size_plus_headers_on_both_nodes(
    two_nodes_lab: Lab, family: Family, count: int, size: int
) -> None:
    result = traffic.udp_exchange(
        two_nodes_lab, "default/p1a", "default/p2a", family=family, count=count, size=size
    )
    expected = count * (size + UDP_HEADERS[family])
    for node in ("node-1", "node-2"):
        truth, entry = _truth_and_entry(two_nodes_lab, node, result)
        assert truth == FlowTruth(count, expected, count, expected)
        assert _as_truth(entry) == truth


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("close", ["fin", "rst"])
@pytest.mark.parametrize("target", ["default/p2b", "service"], ids=["pod", "cluster-ip"])
def test_tcp_truth_equals_conntrack_to_the_byte_on_both_nodes(
    two_nodes_lab: Lab, family: Family, close: str, target: str
) -> None:
    destination = two_nodes_lab.topology.service("default/web") if target == "service" else target
    result = traffic.tcp_transfer(
        two_nodes_lab, "default/p1a", destination, family=family, up=3_000_000, down=200_000, close=close
    )
    for node in ("node-1", "node-2"):
        truth, entry = _truth_and_entry(two_nodes_lab, node, result)
        assert truth.orig_bytes > result.sent and truth.reply_bytes > result.received
        assert _as_truth(entry) == truth, entry.line


@pytest.mark.parametrize("family", FAMILIES)
def test_the_cluster_ip_entry_has_the_vip_in_orig_and_the_backend_in_reply(
    two_nodes_lab: Lab, family: Family
) -> None:
    service = two_nodes_lab.topology.service("default/web")
    backend = two_nodes_lab.topology.pod("default/p2a")
    result = traffic.tcp_transfer(two_nodes_lab, "default/p1b", service, family=family, up=1000, down=1000)
    client_side = entry_for(two_nodes_lab, "node-1", 6, result.client)
    assert (client_side.orig.dst, client_side.orig.dport) == (service.vip(family), 80)
    assert (client_side.reply.src, client_side.reply.sport) == (backend.ip(family), 8080)
    server_side = entry_for(two_nodes_lab, "node-2", 6, result.client)
    assert (server_side.orig.dst, server_side.orig.dport) == (backend.ip(family), 8080)


@pytest.mark.parametrize("family", FAMILIES)
def test_masqueraded_egress_truth_equals_conntrack(two_nodes_lab: Lab, family: Family) -> None:
    result = traffic.tcp_transfer(
        two_nodes_lab, "default/p2b", "internet", family=family, up=500_000, down=1000
    )
    truth, entry = _truth_and_entry(two_nodes_lab, "node-2", result)
    assert entry.reply.dst == two_nodes_lab.topology.node("node-2").ip(family)
    assert (entry.reply.dst, entry.reply.dport) == result.seen_by_server
    assert _as_truth(entry) == truth


@pytest.mark.parametrize("family", FAMILIES)
def test_bridged_same_node_traffic_is_tracked_and_counted(two_nodes_lab: Lab, family: Family) -> None:
    result = traffic.tcp_transfer(
        two_nodes_lab, "default/p1a", "default/p1b", family=family, up=400_000, down=5
    )
    truth, entry = _truth_and_entry(two_nodes_lab, "node-1", result)
    assert truth.orig_bytes > result.sent
    assert _as_truth(entry) == truth
    assert [r.hook for r in two_nodes_lab.ground_truth(["node-1"]).select(sport=result.client[1])] == [
        "forward"
    ]


@pytest.mark.parametrize("family", FAMILIES)
def test_routed_same_node_traffic_is_tracked_and_counted(two_nodes_lab: Lab, family: Family) -> None:
    result = traffic.udp_exchange(
        two_nodes_lab, "default/p2a", "default/p2b", family=family, count=10, size=500
    )
    truth, entry = _truth_and_entry(two_nodes_lab, "node-2", result)
    assert truth == FlowTruth(10, 10 * (500 + UDP_HEADERS[family]), 10, 10 * (500 + UDP_HEADERS[family]))
    assert _as_truth(entry) == truth


def test_every_short_connection_has_its_own_entry_matching_the_truth(two_nodes_lab: Lab) -> None:
    results = traffic.tcp_connections(
        two_nodes_lab, "default/p2a", "default/p1b", count=20, up=300, down=3000
    )
    assert len({r.client for r in results}) == 20
    truth = two_nodes_lab.ground_truth(["node-1"], settle=0.05)
    entries = {
        (e.orig.src, e.orig.sport): e for e in conntrack_entries(two_nodes_lab, "node-1") if e.proto == 6
    }
    for result in results:
        assert _as_truth(entries[result.client]) == truth.flow("node-1", 6, result.client, result.server)


def test_a_bursty_flow_is_counted_while_it_runs_and_matches_conntrack_at_the_end(two_nodes_lab: Lab) -> None:
    flow = traffic.start_tcp_bursts(
        two_nodes_lab, "default/p1b", "default/p2b", bursts=6, burst_bytes=200_000, interval=0.15, family=6
    )
    seen_while_running = []
    while flow.sent < 6 * 200_000:
        counted = two_nodes_lab.ground_truth(["node-2"]).select(sport=flow.client[1])
        seen_while_running.append(sum(r.bytes for r in counted))
        time.sleep(0.05)
    result = flow.wait()
    assert result.sent == 6 * 200_000
    truth, entry = _truth_and_entry(two_nodes_lab, "node-2", result)
    assert _as_truth(entry) == truth
    assert 0 < min(x for x in seen_while_running if x) < truth.orig_bytes


def test_conntrack_is_on_in_every_node_and_off_elsewhere(two_nodes_lab: Lab) -> None:
    traffic.udp_exchange(two_nodes_lab, "default/p1b", "default/p2b", count=1, size=10)
    assert conntrack_entries(two_nodes_lab, "node-1") and conntrack_entries(two_nodes_lab, "node-2")
    for place in ("router", "default/p1b", "default/p2b", "s3"):
        assert conntrack_entries(two_nodes_lab, place) == []


def test_resetting_the_truth_starts_every_counter_from_zero(two_nodes_lab: Lab) -> None:
    earlier = traffic.udp_exchange(two_nodes_lab, "default/p1a", "default/p2a", count=3, size=10)
    two_nodes_lab.reset_ground_truth()
    assert two_nodes_lab.ground_truth().select(sport=earlier.client[1]) == []
    result = traffic.udp_exchange(two_nodes_lab, "default/p1a", "default/p2a", count=3, size=10)
    truth = two_nodes_lab.ground_truth(["node-1"])
    assert truth.flow("node-1", 17, result.client, result.server) == FlowTruth(3, 3 * 38, 3, 3 * 38)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_backend_reaching_itself_through_its_vip_is_masqueraded_and_counted(
    two_nodes_lab: Lab, family: Family
) -> None:
    service = two_nodes_lab.topology.service("default/web")
    node = two_nodes_lab.topology.node("node-2")
    result = traffic.tcp_transfer(two_nodes_lab, "default/p2a", service, family=family, up=2000, down=3000)
    assert result.server[0] == result.client[0]
    assert result.seen_by_server[0] == node.gateway(family)
    truth, entry = _truth_and_entry(two_nodes_lab, "node-2", result)
    assert _as_truth(entry) == truth


@pytest.mark.parametrize("family", FAMILIES)
def test_traffic_to_and_from_the_node_itself_is_counted_at_input_and_output(
    two_nodes_lab: Lab, family: Family
) -> None:
    inbound = traffic.tcp_transfer(two_nodes_lab, "default/p1a", "node-1", family=family, up=50_000, down=500)
    outbound = traffic.tcp_transfer(
        two_nodes_lab, "node-1", "default/p1b", family=family, up=500, down=50_000
    )
    for result in (inbound, outbound):
        truth, entry = _truth_and_entry(two_nodes_lab, "node-1", result)
        assert _as_truth(entry) == truth
    hooks = two_nodes_lab.ground_truth(["node-1"])
    assert {r.hook for r in hooks.select(sport=inbound.client[1])} == {"input"}
    assert {r.hook for r in hooks.select(sport=outbound.client[1])} == {"output"}


def test_many_one_datagram_flows_each_get_an_entry_of_exactly_one_datagram(two_nodes_lab: Lab) -> None:
    results = traffic.udp_flows(two_nodes_lab, "default/p1b", "default/p2a", flows=2000, size=100, family=6)
    assert len({r.client for r in results}) == 2000
    entries = {
        (e.orig.src, e.orig.sport): e
        for e in conntrack_entries(two_nodes_lab, "node-2")
        if e.proto == 17 and e.orig.dport == results[0].dialed[1]
    }
    truth = two_nodes_lab.ground_truth(["node-2"])
    assert set(entries) == {r.client for r in results}
    for result in results:
        assert _as_truth(entries[result.client]) == FlowTruth(1, 148, 0, 0)
        assert truth.flow("node-2", 17, result.client, result.server) == FlowTruth(1, 148, 0, 0)
