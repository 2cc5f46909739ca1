"""The agent's JSON-lines record format is a public contract: keys, names and time format."""

import json

import pytest

from kubenetmon.records import FlowRecord, proto_name, proto_number, rfc3339

RECORD = FlowRecord(
    node="node-a",
    proto=6,
    family=4,
    orig_src="198.18.1.10",
    orig_dst="198.19.0.10",
    orig_sport=40000,
    orig_dport=80,
    reply_src="198.18.2.10",
    reply_dst="198.18.1.10",
    reply_sport=8080,
    reply_dport=40000,
    orig_bytes=1500,
    orig_packets=3,
    reply_bytes=120,
    reply_packets=2,
    start=1795687200.0,
    end=1795687205.0,
)


def test_json_keys_are_exactly_the_documented_ones() -> None:
    assert list(RECORD.to_json_dict()) == [
        "node", "proto", "family", "orig_src", "orig_dst", "orig_sport", "orig_dport",
        "reply_src", "reply_dst", "reply_sport", "reply_dport",
        "orig_bytes", "orig_packets", "reply_bytes", "reply_packets", "start", "end",
    ]  # fmt: skip


def test_times_are_rfc3339_utc() -> None:
    data = RECORD.to_json_dict()
    assert data["start"] == "2026-11-26T10:00:00.000Z"
    assert data["end"] == "2026-11-26T10:00:05.000Z"


def test_json_round_trip_is_lossless() -> None:
    line = json.dumps(RECORD.to_json_dict())
    assert FlowRecord.from_json_dict(json.loads(line)) == RECORD


def test_protocols_without_a_name_keep_their_number() -> None:
    assert proto_name(6) == "tcp"
    assert proto_name(58) == "icmpv6"
    assert proto_name(253) == "253"
    assert proto_number("253") == 253
    assert proto_number("sctp") == 132


def test_a_bad_record_names_the_offending_key() -> None:
    data = RECORD.to_json_dict()
    del data["reply_dport"]
    with pytest.raises(ValueError, match="reply_dport"):
        FlowRecord.from_json_dict(data)


def test_rfc3339_keeps_milliseconds() -> None:
    assert rfc3339(0.25) == "1970-01-01T00:00:00.250Z"
