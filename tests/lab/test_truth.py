"""Ground-truth records from nft's JSON, and the lookups tests make with them."""

from __future__ import annotations

import json

import pytest

from kubenetmon.lab import GroundTruth, LabError
from kubenetmon.lab.truth import parse_truth


def _set(
    name: str, elements: list[tuple[list[object], int, int]], table: str = "knm_truth"
) -> dict[str, object]:
    return {
        "set": {
            "family": "inet",
            "name": name,
            "table": table,
            "elem": [
                {"elem": {"val": {"concat": key}, "counter": {"packets": packets, "bytes": size}}}
                for key, packets, size in elements
            ],
        }
    }


LISTING = json.dumps(
    {
        "nftables": [
            {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"table": {"family": "inet", "name": "knm_truth", "handle": 1}},
            _set(
                "forward_v4",
                [
                    (["198.18.1.10", "198.18.2.10", 6, 40000, 8080], 10, 10520),
                    (["198.18.2.10", "198.18.1.10", 6, 8080, 40000], 8, 416),
                    (["198.18.1.1", "224.0.0.22", 2, 0, 0], 1, 40),
                ],
            ),
            _set("output_v6", [(["fd00:0db8:0001::000a", "fd00:db8:2::a", 17, 5000, 53], 3, 3144)]),
            _set("input_v4", [(["198.18.1.10", "198.18.0.11", 6, 40001, 22], 2, 104)]),
            _set("forward_v4", [(["198.18.9.9", "198.18.9.8", 6, 1, 2], 1, 1)], table="other"),
        ]
    }
)


def test_every_element_of_every_truth_set_becomes_a_record() -> None:
    records = parse_truth("node-1", LISTING)
    assert len(records) == 5
    assert {r.hook for r in records} == {"forward", "input", "output"}
    assert {r.node for r in records} == {"node-1"}


def test_sets_of_other_tables_are_ignored() -> None:
    assert not [r for r in parse_truth("node-1", LISTING) if r.src == "198.18.9.9"]


def test_ipv6_addresses_are_normalised_to_their_compressed_form() -> None:
    (record,) = [r for r in parse_truth("node-1", LISTING) if r.family == 6]
    assert (record.src, record.dst, record.proto, record.sport, record.dport) == (
        "fd00:db8:1::a",
        "fd00:db8:2::a",
        17,
        5000,
        53,
    )


def test_a_flow_is_found_by_client_and_server_in_both_directions() -> None:
    truth = GroundTruth(parse_truth("node-1", LISTING))
    flow = truth.flow("node-1", 6, ("198.18.1.10", 40000), ("198.18.2.10", 8080))
    assert (flow.orig_packets, flow.orig_bytes, flow.reply_packets, flow.reply_bytes) == (10, 10520, 8, 416)


def test_a_flow_sums_the_hooks_of_one_node() -> None:
    truth = GroundTruth(parse_truth("node-1", LISTING))
    assert truth.counted("node-1", 6, ("198.18.1.10", 40001), ("198.18.0.11", 22)) == (2, 104)
    assert truth.counted("node-2", 6, ("198.18.1.10", 40001), ("198.18.0.11", 22)) == (0, 0)


def test_since_keeps_only_what_changed_and_by_how_much() -> None:
    earlier = GroundTruth(parse_truth("node-1", LISTING))
    later_listing = LISTING.replace('"packets": 10, "bytes": 10520', '"packets": 15, "bytes": 20000')
    delta = GroundTruth(parse_truth("node-1", later_listing)).since(earlier)
    (record,) = delta.records
    assert (record.sport, record.packets, record.bytes) == (40000, 5, 9480)


def test_a_full_truth_set_is_refused_because_later_flows_went_uncounted() -> None:
    elements = [([f"198.18.1.{i}", "198.18.2.10", 17, 1, 2], 1, 29) for i in range(4)]
    listing = json.dumps({"nftables": [_set("forward_v4", elements)]})
    assert len(parse_truth("node-1", listing, set_size=5)) == 4
    with pytest.raises(LabError, match="truth set forward_v4 is full"):
        parse_truth("node-1", listing, set_size=4)


def test_output_that_is_not_json_is_an_error_naming_the_node() -> None:
    with pytest.raises(LabError, match="node node-1: nft printed no JSON"):
        parse_truth("node-1", "Error: No such file or directory")
