"""The flusher sums records per flow before attributing: the stored rows are exactly those of attributing
every record alone, each flow is attributed once per flush, and flushes larger than one insert go in
parts that a replay reproduces exactly."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from kubenetmon.records import FlowRecord
from kubenetmon.server.aggregate import FlushPolicy
from kubenetmon.server.attribution.attribute import Attribution
from kubenetmon.server.flusher import Flusher, FlusherSettings, flush_due
from kubenetmon.server.ingest import IngestLog, IngestSettings
from kubenetmon.store.columns import ColumnBatch
from kubenetmon.store.sink import ClickHouseStore
from tests.server.test_flusher import (
    BATCHES,
    EXPECTED_BYTES,
    EXPECTED_PACKETS,
    Crash,
    attributor,
    fill,
    store,
    stored,
)

__all__ = ["store"]  # the fixture

FLOWS = len({record[:11] for batch in BATCHES for record in batch.records})


class CountingAttribute:
    """The real attribution, counting the records it is asked about."""

    def __init__(self) -> None:
        self.attributor = attributor()
        self.calls = 0

    def __call__(self, record: FlowRecord) -> Attribution:
        self.calls += 1
        return self.attributor.attribute(record)


class Recording:
    """A store that remembers each insert's token; after `crash_after` inserts the process 'dies'."""

    def __init__(self, store: ClickHouseStore, crash_after: int | None = None) -> None:
        self.store, self.crash_after = store, crash_after
        self.tokens: list[str] = []

    def insert(self, batch: ColumnBatch, token: str) -> None:
        self.store.insert(batch, token)
        self.tokens.append(token)
        if self.crash_after is not None and len(self.tokens) == self.crash_after:
            raise Crash


def flusher(
    ingest: IngestLog, store: object, attribute: CountingAttribute, max_keys: int = 200_000
) -> Flusher:
    settings = FlusherSettings(policy=FlushPolicy(max_keys=max_keys, max_age_seconds=0.2))
    return Flusher(ingest, attribute, store, settings, bucket_seconds=60)  # type: ignore[arg-type]


async def crashed(tmp_path: Path, store: Recording, max_keys: int) -> IngestSettings:
    """A buffer holding every batch whose flush 'died' after `store.crash_after` inserts."""
    settings = IngestSettings(tmp_path / "ingest")
    ingest = IngestLog(settings)
    await fill(ingest)
    with pytest.raises(Crash):
        await flusher(ingest, store, CountingAttribute(), max_keys=max_keys).drain()
    ingest.close()
    return settings


def per_row_key(store: ClickHouseStore) -> Counter[tuple[object, ...]]:
    result = store.query(
        "SELECT direction, localIPv4, localPort, remoteIPv4, remotePort, toUnixTimestamp(intervalStartTime), "
        "sum(bytes), sum(packets) FROM network_flows_0 GROUP BY ALL"
    )
    totals: Counter[tuple[object, ...]] = Counter()
    for *key, size, packets in result.rows:
        totals[(*map(str, key), "bytes")] += int(size)
        totals[(*map(str, key), "packets")] += int(packets)
    return totals


def attributed_one_by_one() -> Counter[tuple[object, ...]]:
    """What the table must hold: every record attributed on its own, rows summed per key."""
    attribute = attributor().attribute
    totals: Counter[tuple[object, ...]] = Counter()
    for batch in BATCHES:
        for record in batch.records:
            for row in attribute(record).rows:
                key = (
                    row.direction,
                    row.local_ip,
                    row.local_port,
                    row.remote_ip,
                    row.remote_port,
                    row.bucket_start,
                )
                key = tuple(map(str, key))
                totals[(*key, "bytes")] += row.bytes
                totals[(*key, "packets")] += row.packets
    return totals


async def test_the_table_holds_exactly_what_attributing_every_record_alone_gives(
    tmp_path: Path, store: ClickHouseStore
) -> None:
    ingest = IngestLog(IngestSettings(tmp_path / "ingest"))
    await fill(ingest)
    await flusher(ingest, store, CountingAttribute()).drain()
    assert sum(len(batch.records) for batch in BATCHES) > FLOWS  # the batches do repeat flows
    expected = attributed_one_by_one()
    assert len(expected) == 2 * 2 * FLOWS  # both directions, bytes and packets
    assert per_row_key(store) == expected


async def test_each_flow_is_attributed_once_per_flush(tmp_path: Path, store: ClickHouseStore) -> None:
    ingest = IngestLog(IngestSettings(tmp_path / "ingest"))
    await fill(ingest)
    attribute = CountingAttribute()
    await flusher(ingest, store, attribute).drain()
    assert attribute.calls == FLOWS
    assert stored(store) == (EXPECTED_BYTES, EXPECTED_PACKETS)


async def test_records_are_counted_by_outcome_once_each_not_once_per_flow(
    tmp_path: Path, store: ClickHouseStore
) -> None:
    def counted() -> float:
        return sum(
            sample.value
            for metric in REGISTRY.collect()
            if metric.name == "kubenetmon_server_records_attributed"
            for sample in metric.samples
            if sample.name.endswith("_total")
        )

    before = counted()
    ingest = IngestLog(IngestSettings(tmp_path / "ingest"))
    await fill(ingest)
    await flusher(ingest, store, CountingAttribute()).drain()
    assert counted() - before == sum(len(batch.records) for batch in BATCHES)


async def test_a_flush_of_more_flows_than_one_part_is_inserted_in_parts_with_their_own_tokens(
    tmp_path: Path, store: ClickHouseStore
) -> None:
    ingest = IngestLog(IngestSettings(tmp_path / "ingest"))
    await fill(ingest)
    recording = Recording(store)
    await flusher(ingest, recording, CountingAttribute(), max_keys=20).drain()
    first = recording.tokens[0]
    assert recording.tokens == [first, f"{first}/1", f"{first}/2", f"{first}/3"]  # 40 flows, 10 a part
    assert stored(store) == (EXPECTED_BYTES, EXPECTED_PACKETS)


async def test_a_replay_after_a_crash_between_parts_stores_every_part_once(
    tmp_path: Path, store: ClickHouseStore
) -> None:
    settings = await crashed(tmp_path, Recording(store, crash_after=2), max_keys=20)
    restarted = IngestLog(settings)
    # A different part size now: the replay keeps the one its intent recorded.
    replay = Recording(store)
    await flusher(restarted, replay, CountingAttribute(), max_keys=200_000).drain()
    assert len(replay.tokens) == 4
    assert stored(store) == (EXPECTED_BYTES, EXPECTED_PACKETS)
    assert list(restarted.pending(restarted.start)) == []


async def test_an_intent_from_before_flows_were_summed_is_repeated_as_one_insert(
    tmp_path: Path, store: ClickHouseStore
) -> None:
    settings = await crashed(tmp_path, Recording(store, crash_after=1), max_keys=200_000)
    intent_path = settings.directory / "intent.json"
    intent = json.loads(intent_path.read_text())
    intent_path.write_text(json.dumps({key: intent[key] for key in ("first", "end", "token")}))

    restarted = IngestLog(settings)
    replay = Recording(store)
    await flusher(restarted, replay, CountingAttribute(), max_keys=20).drain()
    assert replay.tokens == [intent["token"]]
    assert stored(store) == (EXPECTED_BYTES, EXPECTED_PACKETS)


def test_a_full_flow_table_is_flushed_at_once() -> None:
    assert flush_due(full=True, age=None, caught_up=False, max_age=10, backlog_age=60)


def test_an_old_enough_table_is_flushed_once_the_buffer_is_caught_up() -> None:
    assert not flush_due(full=False, age=9.9, caught_up=True, max_age=10, backlog_age=60)
    assert flush_due(full=False, age=10, caught_up=True, max_age=10, backlog_age=60)


def test_a_backlog_keeps_summing_past_max_age_up_to_the_backlog_age() -> None:
    assert not flush_due(full=False, age=30, caught_up=False, max_age=10, backlog_age=60)
    assert flush_due(full=False, age=60, caught_up=False, max_age=10, backlog_age=60)


def test_an_empty_table_is_never_due() -> None:
    assert not flush_due(full=False, age=None, caught_up=True, max_age=10, backlog_age=60)
