"""Attribution of records seen at one or two nodes: endpoints, NAT, local side, rows, count-once sums."""

from __future__ import annotations

import pytest

from kubenetmon.records import AttributedRow, BillingClass, Direction, Endpoint, EndpointKind
from kubenetmon.server.attribution.attribute import Outcome
from kubenetmon.server.attribution.settings import AttributionSettings
from tests.server.attribution.world import SETTINGS, VIP, World, attributor, record

A1, A2, B1, C1 = "198.18.1.10", "198.18.1.11", "198.18.2.10", "198.18.3.10"
NODE_A, NODE_B = "198.18.0.1", "198.18.0.2"
INTERNET = "203.0.113.7"


def rows_of(*records_at_nodes):  # type: ignore[no-untyped-def]
    engine = attributor()
    return [row for r in records_at_nodes for row in engine.attribute(r).rows]


def once(rows: list[AttributedRow]) -> int:
    return sum(row.bytes for row in rows if row.count_once)


def out(rows: list[AttributedRow]) -> int:
    return sum(row.bytes for row in rows if row.direction is Direction.OUT)


def test_two_node_pod_to_pod_flow_counts_every_byte_once_across_both_nodes() -> None:
    tuple_ = ((A1, 40000, B1, 8080), (B1, 8080, A1, 40000))
    at_a, at_b = record("node-a", *tuple_), record("node-b", *tuple_)
    rows = rows_of(at_a, at_b)
    assert len(rows) == 4
    assert once(rows) == 1000 + 300
    assert out(rows) == 1000 + 300
    counted = {(row.observation_point, row.direction): row.count_once for row in rows}
    assert counted == {
        ("node-a", Direction.OUT): True,
        ("node-a", Direction.IN): False,
        ("node-b", Direction.OUT): True,
        ("node-b", Direction.IN): False,
    }


def test_the_server_side_sees_the_client_as_remote_and_its_reply_bytes_as_out() -> None:
    rows = rows_of(record("node-b", (A1, 40000, B1, 8080), (B1, 8080, A1, 40000)))
    by_direction = {row.direction: row for row in rows}
    assert by_direction[Direction.OUT].local.pod == "b1"
    assert by_direction[Direction.OUT].remote.pod == "a1"
    assert by_direction[Direction.OUT].bytes == 300
    assert by_direction[Direction.IN].bytes == 1000
    assert (by_direction[Direction.OUT].local_ip, by_direction[Direction.OUT].local_port) == (B1, 8080)


def test_cross_zone_pod_flow_is_billed_cross_zone() -> None:
    row = rows_of(record("node-a", (A1, 40000, B1, 8080), (B1, 8080, A1, 40000)))[0]
    assert (row.billing_class, row.billing_reason) == (BillingClass.CROSS_ZONE, "zones-differ")


def test_same_zone_pods_on_different_nodes_are_billed_same_zone() -> None:
    row = rows_of(record("node-a", (A1, 40000, C1, 8080), (C1, 8080, A1, 40000)))[0]
    assert (row.billing_class, row.billing_reason) == (BillingClass.SAME_ZONE, "zones-equal")


def test_same_node_flow_is_one_entry_with_the_client_local_and_both_directions_counted() -> None:
    rows = rows_of(record("node-a", (A1, 40000, A2, 8080), (A2, 8080, A1, 40000)))
    assert [row.local.pod for row in rows] == ["a1", "a1"]
    assert all(row.count_once for row in rows)
    assert once(rows) == 1300
    assert {row.billing_reason for row in rows} == {"same-node"}


def test_pod_to_cluster_ip_across_nodes_names_the_service_on_both_sides_and_counts_once() -> None:
    at_a = record("node-a", (A1, 40000, VIP, 80), (B1, 8080, A1, 40000))
    at_b = record("node-b", (A1, 40000, B1, 8080), (B1, 8080, A1, 40000))
    rows = rows_of(at_a, at_b)
    a_rows = [row for row in rows if row.observation_point == "node-a"]
    b_rows = [row for row in rows if row.observation_point == "node-b"]
    assert {(row.remote_service, row.remote_ip, row.remote.pod) for row in a_rows} == {("shop/web", B1, "b1")}
    assert {row.flags for row in a_rows} == {("dnat",)}
    assert {(row.local_service, row.flags) for row in b_rows} == {("shop/web", ())}
    assert once(rows) == 1300
    assert out(rows) == 1300


def test_pod_to_external_counts_both_directions_at_the_pods_node() -> None:
    rows = rows_of(record("node-a", (A1, 40000, INTERNET, 443), (INTERNET, 443, NODE_A, 61000)))
    assert once(rows) == 1300
    assert {row.flags for row in rows} == {("snat",)}
    assert {(row.billing_class, row.remote.kind) for row in rows} == {
        (BillingClass.INTERNET, EndpointKind.INTERNET)
    }


def test_pod_to_a_cloud_service_in_the_local_region_is_billed_as_cloud_service() -> None:
    row = rows_of(record("node-a", (A1, 40000, "198.51.100.9", 443), ("198.51.100.9", 443, NODE_A, 61000)))[0]
    assert (row.billing_class, row.billing_reason, row.remote.cloud_service) == (
        BillingClass.CLOUD_SERVICE, "cloud-range-same-region", "s3",
    )  # fmt: skip


def test_nodeport_ingress_snatted_by_the_entry_node_counts_each_leg_once() -> None:
    # Internet client -> node-a:30080 -> b1:8080 on node-b; node-a masquerades to its own address.
    at_a = record("node-a", (INTERNET, 50000, NODE_A, 30080), (B1, 8080, NODE_A, 62000))
    at_b = record("node-b", (NODE_A, 62000, B1, 8080), (B1, 8080, NODE_A, 62000))
    engine = attributor()
    result_a = engine.attribute(at_a)
    rows = result_a.rows + engine.attribute(at_b).rows
    assert result_a.outcome is Outcome.PROXIED
    assert len(result_a.rows) == 4
    # Two legs (internet <-> node-a, node-a <-> node-b), each byte counted once per leg.
    assert once(rows) == 2 * 1300
    # OUT rows exist only for metered senders: node-a sends 300 + 1000, b1 sends 300; the client none.
    assert out(rows) == 300 + 1000 + 300
    client_leg = [row for row in result_a.rows if row.remote_ip == INTERNET]
    assert {(row.local.kind, row.local_service, row.local_port) for row in client_leg} == {
        (EndpointKind.NODE, "shop/web", 30080)
    }


def test_forwarded_flow_without_snat_is_reported_with_the_pod_local_and_counted_at_the_pods_node() -> None:
    at_a = record("node-a", (INTERNET, 50000, NODE_A, 30080), (B1, 8080, INTERNET, 50000))
    at_b = record("node-b", (INTERNET, 50000, B1, 8080), (B1, 8080, INTERNET, 50000))
    engine = attributor()
    forwarded = engine.attribute(at_a)
    assert forwarded.outcome is Outcome.FORWARDED
    assert {(row.local.pod, "forwarded" in row.flags, row.count_once) for row in forwarded.rows} == {
        ("b1", True, False)
    }
    assert once(forwarded.rows + engine.attribute(at_b).rows) == 1300


def test_only_non_empty_directions_become_rows() -> None:
    rows = rows_of(record("node-a", (A1, 40000, B1, 8080), (B1, 8080, A1, 40000), reply_bytes=0))
    assert [(row.direction, row.bytes) for row in rows] == [(Direction.OUT, 1000)]


def test_a_record_without_bytes_or_packets_is_empty() -> None:
    result = attributor().attribute(record("node-a", (A1, 1, B1, 2), (B1, 2, A1, 1), 0, 0))
    assert result == ([], Outcome.EMPTY)


@pytest.mark.parametrize(
    ("bucket", "start", "expected"),
    [(60, 1795687259.9, 1795687200), (60, 1795687260.0, 1795687260), (300, 1795687499.0, 1795687200)],
)
def test_bucket_start_is_the_bucket_holding_the_interval_start(
    bucket: int, start: float, expected: int
) -> None:
    settings = AttributionSettings(cluster="demo", cloud="aws", region="us-east-1", bucket_seconds=bucket)
    row = (
        attributor(settings=settings)
        .attribute(record("node-a", (A1, 1, B1, 2), (B1, 2, A1, 1), start=start))
        .rows[0]
    )
    assert (row.bucket_start, row.bucket_seconds) == (expected, bucket)


def test_cluster_endpoints_take_the_servers_placement_and_remote_cluster_is_set_only_in_cluster() -> None:
    in_cluster = rows_of(record("node-a", (A1, 1, B1, 2), (B1, 2, A1, 1)))[0]
    outside = rows_of(record("node-a", (A1, 1, INTERNET, 2), (INTERNET, 2, A1, 1)))[0]
    assert (in_cluster.local.cloud, in_cluster.local.region, in_cluster.local.cluster) == (
        "aws",
        "us-east-1",
        "demo",
    )
    assert in_cluster.remote.cluster == "demo"
    assert outside.remote.cluster == ""


def test_an_unknown_observing_node_still_yields_rows_and_says_so() -> None:
    result = attributor().attribute(record("node-z", (A1, 1, INTERNET, 2), (INTERNET, 2, A1, 1)))
    assert result.outcome is Outcome.UNKNOWN_NODE
    assert len(result.rows) == 2


def test_addresses_no_inventory_knows_are_attributed_with_what_is_known() -> None:
    result = attributor().attribute(
        record("node-a", ("10.9.9.9", 1, INTERNET, 2), (INTERNET, 2, "10.9.9.9", 1))
    )
    assert result.outcome is Outcome.NO_CLUSTER_ENDPOINT
    assert {(row.local.kind, row.remote.kind) for row in result.rows} == {
        (EndpointKind.PRIVATE, EndpointKind.INTERNET)
    }
    assert all(row.count_once for row in result.rows)


def test_a_service_address_whose_backend_was_not_seen_is_the_service() -> None:
    row = rows_of(record("node-a", (A1, 1, VIP, 80), (VIP, 80, A1, 1)))[0]
    assert (row.remote.kind, row.remote_service, row.billing_reason) == (
        EndpointKind.SERVICE, "shop/web", "service-backend-unknown",
    )  # fmt: skip


def test_inventory_endpoint_flags_are_copied_onto_rows() -> None:
    nat = Endpoint(EndpointKind.EXTERNAL, zone="zone-a", app="egress-nat", flags=("nat-gateway",))
    world = World(externals={"10.1.0.0/16": nat})
    row = (
        attributor(world).attribute(record("node-a", (A1, 1, "10.1.2.3", 2), ("10.1.2.3", 2, A1, 1))).rows[0]
    )
    assert row.flags == ("nat-gateway",)
    assert (row.remote.app, row.billing_reason) == ("egress-nat", "zones-equal")


def test_endpoints_are_the_inventorys_shared_objects() -> None:
    engine = attributor()
    first = engine.attribute(record("node-a", (A1, 1, B1, 2), (B1, 2, A1, 1))).rows[0]
    second = engine.attribute(record("node-a", (A1, 3, B1, 4), (B1, 4, A1, 3))).rows[0]
    assert first.local is second.local
    assert first.remote is second.remote


def test_ipv6_flows_are_attributed_against_ipv6_cloud_ranges() -> None:
    row = rows_of(
        record(
            "node-a", ("fd00:db8:1::10", 1, "2001:db8:1::5", 443), ("2001:db8:1::5", 443, "fd00:db8:1::10", 1)
        )
    )[0]
    assert (row.remote.cloud, row.billing_reason) == ("azure", "cloud-range-other-cloud")


def test_row_prefix_is_an_aggregation_key_and_the_last_two_fields_are_the_counters() -> None:
    row = rows_of(record("node-a", (A1, 1, B1, 2), (B1, 2, A1, 1)))[0]
    assert row[-2:] == (1000, 10)
    assert row._fields[-2:] == ("bytes", "packets")
    assert SETTINGS.environment == row.environment


def test_same_node_hairpin_through_a_service_is_one_same_node_flow_with_both_nat_flags() -> None:
    # a1 -> VIP -> a2 on the same node, masqueraded to the node's bridge address (kernel facts section 5).
    rows = rows_of(record("node-a", (A1, 54594, VIP, 80), (A2, 8080, NODE_A, 54594)))
    assert {(row.local.pod, row.remote.pod, row.flags, row.billing_reason) for row in rows} == {
        ("a1", "a2", ("dnat", "snat"), "same-node")
    }
    assert once(rows) == 1300


def test_addresses_that_are_not_addresses_are_unknown_rather_than_an_error() -> None:
    result = attributor().attribute(record("node-a", (A1, 1, "not-an-ip", 2), ("not-an-ip", 2, A1, 1)))
    assert {(row.remote.kind, row.billing_reason) for row in result.rows} == {
        (EndpointKind.UNKNOWN, "remote-unknown")
    }
