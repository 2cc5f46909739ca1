"""Pre-aggregation: exact sums per row key, bounded size, age and size flushes, columns ready for the sink."""

from __future__ import annotations

from collections import Counter

import pytest

from kubenetmon.server.aggregate import Aggregator, FlushPolicy
from kubenetmon.store.schema import COLUMN_NAMES
from tests.store.rowgen import generate

ROWS = generate(seed=21, count=5000, start=1_800_000_000 // 60 * 60, polls=4)


def _drained_sums(aggregator: Aggregator) -> Counter[tuple[object, ...]]:
    batch = aggregator.drain()
    columns = dict(zip(COLUMN_NAMES, batch.columns, strict=True))
    keys = zip(
        columns["intervalStartTime"],
        columns["direction"],
        columns["localPod"],
        columns["remotePod"],
        columns["localPort"],
        columns["remotePort"],
        columns["observationPoint"],
        strict=True,
    )
    totals: Counter[tuple[object, ...]] = Counter()
    for key, size, packets in zip(keys, columns["bytes"], columns["packets"], strict=True):
        totals[(*key, "bytes")] += size
        totals[(*key, "packets")] += packets
    return totals


def _reference() -> Counter[tuple[object, ...]]:
    totals: Counter[tuple[object, ...]] = Counter()
    for r in ROWS:
        key = (
            r.bucket_start,
            r.direction,
            r.local.pod,
            r.remote.pod,
            r.local_port,
            r.remote_port,
            r.observation_point,
        )
        totals[(*key, "bytes")] += r.bytes
        totals[(*key, "packets")] += r.packets
    return totals


def test_sums_every_key_exactly() -> None:
    aggregator = Aggregator(FlushPolicy())
    assert aggregator.add(ROWS, "a", now=0.0) == len(ROWS)
    assert len(aggregator) == len({row[:-2] for row in ROWS}) < len(ROWS)
    assert _drained_sums(aggregator) == _reference()


def test_stops_at_max_keys_and_takes_the_rest_after_a_drain() -> None:
    aggregator = Aggregator(FlushPolicy(max_keys=500))
    totals: Counter[tuple[object, ...]] = Counter()
    pending = ROWS
    drains = 0
    while pending:
        taken = aggregator.add(pending, "a", now=0.0)
        assert len(aggregator) <= 500
        pending = pending[taken:]
        if pending:
            assert aggregator.full and aggregator.due(now=0.0)
        totals += _drained_sums(aggregator)
        drains += 1
    assert drains > 2
    assert totals == _reference()


def test_is_due_when_the_oldest_key_reaches_max_age() -> None:
    aggregator = Aggregator(FlushPolicy(max_age_seconds=10))
    assert not aggregator.due(now=100.0)
    aggregator.add(ROWS[:10], "a", now=100.0)
    aggregator.add(ROWS[10:20], "b", now=105.0)
    assert not aggregator.due(now=109.9)
    assert aggregator.due(now=110.0)
    aggregator.drain()
    assert not aggregator.due(now=500.0)


def test_drain_lists_sources_and_leaves_it_empty() -> None:
    aggregator = Aggregator(FlushPolicy())
    aggregator.add(ROWS[:100], "node-b/1/2", now=0.0)
    aggregator.add(ROWS[100:200], "node-a/1/7", now=0.0)
    assert aggregator.rows_in == 200
    batch = aggregator.drain()
    assert batch.sources == ("node-a/1/7", "node-b/1/2")
    assert batch.rows == len({row[:-2] for row in ROWS[:200]})
    assert len(aggregator) == 0 and aggregator.rows_in == 0
    assert aggregator.drain().rows == 0


def test_a_policy_that_could_never_flush_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_keys >= 1"):
        FlushPolicy(max_keys=0)


def test_distinct_rows_taken_at_once_drain_as_rows_taken_one_by_one() -> None:
    distinct = list({row[:-2]: row for row in ROWS}.values())
    at_once, one_by_one = Aggregator(FlushPolicy()), Aggregator(FlushPolicy())
    assert at_once.add(distinct, "a", now=0.0) == len(distinct)
    for row in distinct:
        one_by_one.add([row], "a", now=0.0)
    assert at_once.drain() == one_by_one.drain()


def test_rows_added_onto_distinct_rows_are_summed_into_them() -> None:
    distinct = list({row[:-2]: row for row in ROWS}.values())
    aggregator = Aggregator(FlushPolicy())
    aggregator.add(distinct, "a", now=0.0)
    aggregator.add(distinct[:10], "b", now=0.0)
    batch = aggregator.drain()
    columns = dict(zip(COLUMN_NAMES, batch.columns, strict=True))
    assert batch.rows == len(distinct)
    assert list(columns["bytes"][:10]) == [2 * row.bytes for row in distinct[:10]]
    assert list(columns["bytes"][10:]) == [row.bytes for row in distinct[10:]]
