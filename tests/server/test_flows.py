"""Summing records per flow: exact sums per (flow, bucket), nothing else merged, empty records counted."""

from __future__ import annotations

import pytest

from kubenetmon.records import Batch, FlowRecord
from kubenetmon.server.flows import FlowTable
from kubenetmon.transport import codec
from kubenetmon.transport.proto import flows_pb2

MINUTE = 1795687200.0  # a whole minute


def record(sport: int, start: float, orig_bytes: int, reply_bytes: int, node: str = "node-a") -> FlowRecord:
    return FlowRecord(
        node=node,
        proto=6,
        family=4,
        orig_src="198.18.1.10",
        orig_dst="198.18.2.10",
        orig_sport=sport,
        orig_dport=443,
        reply_src="198.18.2.10",
        reply_dst="198.18.1.10",
        reply_sport=443,
        reply_dport=sport,
        orig_bytes=orig_bytes,
        orig_packets=1 if orig_bytes else 0,
        reply_bytes=reply_bytes,
        reply_packets=2 if reply_bytes else 0,
        start=start,
        end=start + 5,
    )


def columns(*records: FlowRecord, node: str = "node-a") -> codec.FlowColumns:
    return codec.columns_of(Batch(node, "e", 0, list(records)))


def drained(table: FlowTable) -> list[tuple[FlowRecord, int]]:
    return list(table.drain())


def test_records_of_one_flow_in_one_bucket_become_one_record_with_summed_counters() -> None:
    table = FlowTable(60, 100)
    table.add(columns(record(40000, MINUTE + 5, 100, 1000)))
    table.add(columns(record(40000, MINUTE + 10, 7, 70)))
    [(flow, count)] = drained(table)
    assert count == 2
    assert flow == record(40000, MINUTE + 5, 107, 1070)._replace(
        orig_packets=2, reply_packets=4, end=MINUTE + 15
    )


def test_the_summed_flow_starts_at_its_earliest_record_and_ends_at_its_latest() -> None:
    table = FlowTable(60, 100)
    table.add(columns(record(40000, MINUTE + 30, 1, 1), record(40001, MINUTE, 1, 1)))
    table.add(columns(record(40000, MINUTE + 20, 1, 1)))
    flows = {flow.orig_sport: flow for flow, _ in drained(table)}
    assert (flows[40000].start, flows[40000].end) == (MINUTE + 20, MINUTE + 35)


def test_different_tuples_buckets_or_nodes_are_different_flows() -> None:
    table = FlowTable(60, 100)
    table.add(columns(record(40000, MINUTE, 1, 1), record(40001, MINUTE, 1, 1)))
    table.add(columns(record(40000, MINUTE + 60, 1, 1)))
    table.add(columns(record(40000, MINUTE, 1, 1, node="node-b"), node="node-b"))
    assert [(f.node, f.orig_sport, f.start, count) for f, count in drained(table)] == [
        ("node-a", 40000, MINUTE, 1),
        ("node-a", 40001, MINUTE, 1),
        ("node-a", 40000, MINUTE + 60, 1),
        ("node-b", 40000, MINUTE, 1),
    ]


def test_a_bucket_is_decided_as_attribution_decides_it_from_the_float_start() -> None:
    # 100 ns before the next minute on the wire: as float seconds, that rounds onto the minute itself.
    next_minute_ns = (int(MINUTE) + 60) * 10**9
    assert (next_minute_ns - 100) / 10**9 == MINUTE + 60
    message = flows_pb2.FlowBatch.FromString(
        codec.encode_batch(
            Batch("node-a", "e", 0, [record(40000, MINUTE, 1, 1), record(40000, MINUTE + 61, 1, 1)])
        )
    )
    message.flows.start_unix_nano[0] = next_minute_ns - 100
    message.flows.end_unix_nano[0] = next_minute_ns
    table = FlowTable(60, 100)
    table.add(codec.columns_of(codec.decode_batch(message.SerializeToString(), 10)))
    [(flow, count)] = drained(table)
    assert (flow.start, flow.end, count) == (MINUTE + 60, MINUTE + 66, 2)


def test_records_without_bytes_or_packets_are_counted_but_not_summed() -> None:
    table = FlowTable(60, 100)
    table.add(columns(record(40000, MINUTE, 0, 0), record(40001, MINUTE, 5, 0)))
    assert (table.records, table.empty, len(table)) == (2, 1, 1)
    [(flow, count)] = drained(table)
    assert (flow.orig_sport, count) == (40001, 1)
    assert (table.records, table.empty, len(table)) == (0, 0, 0)


def test_the_table_is_full_at_max_flows_and_has_room_only_for_batches_that_surely_fit() -> None:
    table = FlowTable(60, 3)
    two = columns(record(40000, MINUTE, 1, 1), record(40001, MINUTE, 1, 1))
    assert table.room_for(two)
    table.add(two)
    assert not table.full
    assert not table.room_for(two)  # each record could be a new flow
    table.add(columns(record(40002, MINUTE, 1, 1)))
    assert table.full


def test_an_empty_table_takes_any_batch_so_a_large_batch_still_goes_through() -> None:
    table = FlowTable(60, 1)
    assert table.room_for(columns(record(40000, MINUTE, 1, 1), record(40001, MINUTE, 1, 1)))


def test_drain_empties_the_table_at_once() -> None:
    table = FlowTable(60, 100)
    table.add(columns(record(40000, MINUTE, 1, 1)))
    pending = table.drain()
    table.add(columns(record(40001, MINUTE, 1, 1)))
    assert [flow.orig_sport for flow, _ in pending] == [40000]
    assert [flow.orig_sport for flow, _ in table.drain()] == [40001]


def test_a_table_needs_a_bucket_and_room() -> None:
    with pytest.raises(ValueError, match="max_flows >= 1"):
        FlowTable(60, 0)
