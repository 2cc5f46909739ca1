"""The flusher stores every buffered byte exactly once: across store outages and interrupted inserts."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubenetmon.errors import TransientStoreError
from kubenetmon.records import Batch, FlowRecord
from kubenetmon.server.aggregate import FlushPolicy
from kubenetmon.server.attribution.attribute import Attributor
from kubenetmon.server.attribution.lookups import Lookups, Nothing
from kubenetmon.server.attribution.settings import AttributionSettings
from kubenetmon.server.flusher import Flusher, FlusherSettings
from kubenetmon.server.ingest import IngestLog, IngestSettings
from kubenetmon.store.columns import ColumnBatch
from kubenetmon.store.dsn import parse_dsn
from kubenetmon.store.sink import ClickHouseStore

NOW = 1795687200.0


def records(node: str, count: int, base: int) -> list[FlowRecord]:
    """`count` distinct TCP flows whose bytes are base+i (orig) and 2*(base+i) (reply)."""
    return [
        FlowRecord(
            node=node,
            proto=6,
            family=4,
            orig_src=f"198.18.1.{10 + i % 200}",
            orig_dst="198.18.2.10",
            orig_sport=30000 + i,
            orig_dport=443,
            reply_src="198.18.2.10",
            reply_dst=f"198.18.1.{10 + i % 200}",
            reply_sport=443,
            reply_dport=30000 + i,
            orig_bytes=base + i,
            orig_packets=1,
            reply_bytes=2 * (base + i),
            reply_packets=2,
            start=NOW,
            end=NOW + 5,
        )
        for i in range(count)
    ]


BATCHES = [Batch("node-a", "e1", seq, records("node-a", 40, 1000 * seq)) for seq in range(6)]
EXPECTED_BYTES = sum(r.orig_bytes + r.reply_bytes for b in BATCHES for r in b.records)
EXPECTED_PACKETS = sum(r.orig_packets + r.reply_packets for b in BATCHES for r in b.records)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    with ClickHouseStore(parse_dsn(f"chdb://{tmp_path}/engine")) as opened:
        opened.ensure_schema()
        yield opened


def attributor() -> Attributor:
    nothing = Nothing()
    return Attributor(Lookups(nothing, nothing, nothing), AttributionSettings(cluster="c1", region="r1"))


def stored(store: ClickHouseStore) -> tuple[int, int]:
    result = store.query("SELECT sum(bytes), sum(packets) FROM network_flows_0")
    return int(result.rows[0][0]), int(result.rows[0][1])


async def fill(ingest: IngestLog) -> None:
    for batch in BATCHES:
        await ingest.accept(batch)


def flusher(ingest: IngestLog, store: object, max_keys: int = 200_000) -> Flusher:
    settings = FlusherSettings(
        policy=FlushPolicy(max_keys=max_keys, max_age_seconds=0.2),
        retry_first_delay=0.01,
        retry_max_delay=0.05,
    )
    attribute = attributor()
    return Flusher(
        ingest,
        attribute.attribute,
        store,  # type: ignore[arg-type]
        settings,
        bucket_seconds=attribute.settings.bucket_seconds,
    )


async def test_drain_stores_every_buffered_byte_once_and_empties_the_buffer(
    tmp_path: Path, store: ClickHouseStore
) -> None:
    ingest = IngestLog(IngestSettings(tmp_path / "ingest"))
    await fill(ingest)
    await flusher(ingest, store, max_keys=100).drain()
    assert stored(store) == (EXPECTED_BYTES, EXPECTED_PACKETS)
    assert list(ingest.pending(ingest.start)) == []


async def test_run_stores_batches_as_they_arrive(tmp_path: Path, store: ClickHouseStore) -> None:
    ingest = IngestLog(IngestSettings(tmp_path / "ingest"))
    stop, wake = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(flusher(ingest, store).run(stop, wake))
    for batch in BATCHES:
        await ingest.accept(batch)
        wake.set()
    for _ in range(200):
        if ingest.start == ingest.next_position:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert stored(store) == (EXPECTED_BYTES, EXPECTED_PACKETS)


class FailingFor:
    """A store that fails its first `failures` inserts with a transient error, then works."""

    def __init__(self, store: ClickHouseStore, failures: int) -> None:
        self.store, self.failures = store, failures

    def insert(self, batch: ColumnBatch, token: str) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientStoreError("connection refused (test)")
        self.store.insert(batch, token)


async def test_a_store_outage_delays_but_loses_nothing(tmp_path: Path, store: ClickHouseStore) -> None:
    ingest = IngestLog(IngestSettings(tmp_path / "ingest"))
    await fill(ingest)
    flaky = FailingFor(store, failures=4)
    await flusher(ingest, flaky).drain()
    assert flaky.failures == 0
    assert stored(store) == (EXPECTED_BYTES, EXPECTED_PACKETS)


class Crash(BaseException):
    """Stands for the process dying: not an error anyone handles."""


class CrashAfterInsert:
    """Inserts for real, then 'dies' before the flusher can commit the buffer."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store

    def insert(self, batch: ColumnBatch, token: str) -> None:
        self.store.insert(batch, token)
        raise Crash


async def test_an_insert_interrupted_after_it_landed_is_not_stored_twice(
    tmp_path: Path, store: ClickHouseStore
) -> None:
    settings = IngestSettings(tmp_path / "ingest")
    ingest = IngestLog(settings)
    await fill(ingest)
    with pytest.raises(Crash):
        await flusher(ingest, CrashAfterInsert(store)).drain()
    assert stored(store) == (EXPECTED_BYTES, EXPECTED_PACKETS)
    ingest.close()

    restarted = IngestLog(settings)
    assert len(list(restarted.pending(restarted.start))) == len(BATCHES)
    await flusher(restarted, store).drain()
    assert stored(store) == (EXPECTED_BYTES, EXPECTED_PACKETS)
    assert list(restarted.pending(restarted.start)) == []


async def test_batches_that_arrive_after_an_interrupted_insert_are_stored_too(
    tmp_path: Path, store: ClickHouseStore
) -> None:
    settings = IngestSettings(tmp_path / "ingest")
    ingest = IngestLog(settings)
    for batch in BATCHES[:3]:
        await ingest.accept(batch)
    with pytest.raises(Crash):
        await flusher(ingest, CrashAfterInsert(store)).drain()
    ingest.close()

    restarted = IngestLog(settings)
    for batch in BATCHES[3:]:
        await restarted.accept(batch)
    await flusher(restarted, store).drain()
    assert stored(store) == (EXPECTED_BYTES, EXPECTED_PACKETS)
