"""The comparison itself: it finds lost, doubled and misattributed bytes (so the e2e tests can fail)."""

from __future__ import annotations

import dataclasses

import pytest

from kubenetmon.demo.accuracy import LabDirectory, Verdict, compare
from kubenetmon.demo.observed import Facts, FlowKey, StoredBytes
from kubenetmon.lab import Topology

DEMO = Topology.demo()
DIRECTORY = LabDirectory(DEMO, "aws")
FRONTEND_A1 = DEMO.pod("shop/frontend-6c8d9f7b4-x2k4p")
CART_B1 = DEMO.pod("shop/cart-1")
LOADER_A1 = DEMO.pod("batch/loader")
UP = FlowKey(6, FRONTEND_A1.ipv4, 40000, CART_B1.ipv4, 5432)
DOWN = FlowKey(6, CART_B1.ipv4, 5432, FRONTEND_A1.ipv4, 40000)


def row(point: str, flow: FlowKey, size: int, count_once: bool, billing: str = "cross-zone") -> StoredBytes:
    return StoredBytes(
        point, flow, count_once, billing, DIRECTORY.facts(flow.src), DIRECTORY.facts(flow.dst), size, 1
    )


def cross_node_flow() -> tuple[dict[tuple[str, FlowKey], int], list[StoredBytes]]:
    """frontend (node-a1) <-> cart-1 (node-b1): both nodes see both directions; each counts its own sends."""
    truth = {("node-a1", UP): 1000, ("node-a1", DOWN): 300, ("node-b1", UP): 1000, ("node-b1", DOWN): 300}
    rows = [
        row("node-a1", UP, 1000, True),
        row("node-a1", DOWN, 300, False),
        row("node-b1", DOWN, 300, True),
        row("node-b1", UP, 1000, False),
    ]
    return truth, rows


def test_rows_that_match_the_truth_are_exact() -> None:
    truth, rows = cross_node_flow()
    verdict = compare(DIRECTORY, truth, rows)
    assert verdict.classes["cross-zone"].ratio == 1.0
    assert (verdict.misattributed, verdict.unexplained(), verdict.pairs_outside(0.0)) == ([], [], [])
    assert verdict.points_outside(0.0) == []


def test_a_missing_byte_is_lost_in_its_class_and_pair() -> None:
    truth, rows = cross_node_flow()
    rows[0] = dataclasses.replace(rows[0], bytes=998)
    verdict = compare(DIRECTORY, truth, rows)
    assert (verdict.classes["cross-zone"].lost, verdict.classes["cross-zone"].duplicated) == (2, 0)
    assert verdict.pairs_outside(0.001) == [UP.pair]
    assert verdict.points_outside(0.0) == ["node-a1"]


def test_a_row_stored_twice_is_duplicated_at_its_observation_point() -> None:
    truth, rows = cross_node_flow()
    verdict = compare(DIRECTORY, truth, [*rows, rows[3]])
    assert verdict.points["node-b1"].duplicated == 1000
    assert verdict.classes["cross-zone"].duplicated == 0


def test_a_count_once_row_at_the_receivers_node_is_misattributed_and_doubles_the_bill() -> None:
    truth, rows = cross_node_flow()
    rows[3] = dataclasses.replace(rows[3], count_once=True)
    verdict = compare(DIRECTORY, truth, rows)
    assert verdict.misattributed == [
        "node-b1: tcp 198.18.1.10:40000 -> 198.18.3.12:5432: a count-once row, but only node-a1 should count "
        "these bytes"
    ]
    assert verdict.classes["cross-zone"].duplicated == 1000


@pytest.mark.parametrize(
    "change",
    [
        {"zone": "eu-west-1a"},
        {"workload": "web"},
        {"pod": "cart-0"},
        {"namespace": "batch"},
        {"cloud_service": "s3"},
    ],
)
def test_a_wrong_endpoint_fact_is_misattributed(change: dict[str, str]) -> None:
    truth, rows = cross_node_flow()
    rows[0] = dataclasses.replace(rows[0], receiver=rows[0].receiver._replace(**change))
    assert len(compare(DIRECTORY, truth, rows).misattributed) == 1


def test_a_wrong_billing_class_is_misattributed() -> None:
    truth, rows = cross_node_flow()
    rows[0] = dataclasses.replace(rows[0], billing_class="same-zone")
    (problem,) = compare(DIRECTORY, truth, rows).misattributed
    assert problem.endswith("class same-zone should be cross-zone")


def test_classes_come_from_the_topology() -> None:
    def billing(sender: str, receiver: str) -> str:
        return DIRECTORY.expected_class(FlowKey(6, sender, 1, receiver, 2).pair)

    s3, internet = DEMO.external("s3"), DEMO.external("internet")
    assert billing(FRONTEND_A1.ipv4, LOADER_A1.ipv4) == "same-zone"
    assert billing(FRONTEND_A1.ipv6, DEMO.pod("shop/cart-0").ipv6) == "same-zone"
    assert billing(FRONTEND_A1.ipv4, CART_B1.ipv4) == "cross-zone"
    assert billing(LOADER_A1.ipv4, s3.ipv4) == billing(s3.ipv6, LOADER_A1.ipv6) == "cross-region"
    assert billing(internet.ipv4, LOADER_A1.ipv4) == "internet"
    assert DIRECTORY.facts(s3.ipv4) == Facts(region="us-east-1", cloud="aws", cloud_service="s3")
    assert DIRECTORY.facts(internet.ipv4) == Facts()


def test_bytes_from_outside_are_counted_at_the_receivers_node() -> None:
    s3 = DEMO.external("s3")
    inbound = FlowKey(17, s3.ipv4, 443, LOADER_A1.ipv4, 5000)
    assert DIRECTORY.counting_node(inbound) == "node-a1"
    verdict = compare(DIRECTORY, {("node-a1", inbound): 500}, [])
    assert verdict.classes["cross-region"].lost == 500


def test_a_predicted_loss_is_reported_apart_and_not_unexplained() -> None:
    truth, rows = cross_node_flow()
    verdict: Verdict = compare(DIRECTORY, truth, rows[1:], excused={("node-a1", UP): 1000})
    assert verdict.unexplained() == []
    assert (verdict.classes["cross-zone"].lost, verdict.classes["cross-zone"].excused) == (1000, 1000)
    assert verdict.pairs_outside(0.0) == []
