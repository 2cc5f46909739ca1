"""CPU cost per record of each stage of the server's path, measured one stage at a time in one process
pinned to the server's core, with the server's own functions on the same recorded batches:

    decode (transport) -> frame + WAL append/fsync (ingest) -> unframe (flusher) -> attribute
    -> aggregate -> build columns (drain) -> insert (Native encoding + embedded chDB)

CPU time is `time.process_time()`: every thread of the process, the engine's included.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubenetmon.records import AttributedRow, Batch
from kubenetmon.server.aggregate import Aggregator, FlushPolicy
from kubenetmon.server.attribution.attribute import Attributor
from kubenetmon.server.attribution.lookups import ExternalSources, Lookups
from kubenetmon.server.attribution.settings import AttributionSettings
from kubenetmon.server.cloud.refresh import RangeRefresher, RefreshSettings
from kubenetmon.server.daemon import GC_THRESHOLDS
from kubenetmon.server.ingest import frame, unframe
from kubenetmon.server.inventory.static import StaticInventory
from kubenetmon.store.columns import ColumnBatch
from kubenetmon.store.dsn import parse_dsn
from kubenetmon.store.sink import ClickHouseStore
from kubenetmon.transport import codec
from kubenetmon.transport.segment_log import FsyncPolicy, SegmentLog, SegmentLogSettings

STAGES = ("decode", "frame", "wal", "unframe", "attribute", "aggregate", "columns", "insert")
MAX_RECORDS = 65536


@dataclass(frozen=True, slots=True)
class StageCosts:
    """CPU seconds per record of each stage, and what the stages produced."""

    per_record: dict[str, float]
    records: int
    rows: int
    keys: int
    inserts: int


def _timed(costs: dict[str, float], name: str, action: Callable[[], Any]) -> Any:
    started = time.process_time()
    result = action()
    costs[name] = costs.get(name, 0.0) + time.process_time() - started
    return result


def _receive(batches: list[bytes], costs: dict[str, float]) -> list[bytes]:
    decoded: list[Batch] = _timed(
        costs, "decode", lambda: [codec.decode_batch(b, MAX_RECORDS) for b in batches]
    )
    framed: list[bytes] = _timed(costs, "frame", lambda: [frame(batch) for batch in decoded])
    return framed


def measure(inventory: Path, batches: list[bytes], cpu: int, attribution: AttributionSettings) -> StageCosts:
    """Run every stage over `batches` (in sending order) on core `cpu`."""
    os.sched_setaffinity(0, {cpu})
    static = StaticInventory(inventory)
    ranges = RangeRefresher(RefreshSettings(urls={})).ranges
    attribute = Attributor(Lookups(static, static, ExternalSources(static, ranges)), attribution).attribute
    # The server process's garbage collector policy (kubenetmon.cli.server, ServerDaemon(freeze_heap=True)).
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    costs: dict[str, float] = {}
    framed = _receive(batches, costs)
    with tempfile.TemporaryDirectory() as scratch:
        log = SegmentLog(Path(scratch) / "wal", SegmentLogSettings(max_bytes=2**34, fsync=FsyncPolicy.NEVER))

        def append_and_sync() -> None:
            # One fsync per batch: the server's group commit never does more (usually far fewer).
            for record in framed:
                log.append(record)
                log.sync()

        _timed(costs, "wal", append_and_sync)
        log.close()
        records = rows_total = keys_total = 0
        policy = FlushPolicy()
        aggregator = Aggregator(policy)
        drained: list[ColumnBatch] = []
        for record in framed:
            batch = _timed(costs, "unframe", lambda record=record: unframe(record, MAX_RECORDS))
            rows: list[AttributedRow] = _timed(
                costs,
                "attribute",
                lambda batch=batch: [row for r in batch.records for row in attribute(r).rows],
            )
            if len(aggregator) and len(aggregator) + len(rows) > policy.max_keys:
                keys_total += len(aggregator)
                drained.append(_timed(costs, "columns", aggregator.drain))
            _timed(
                costs, "aggregate", lambda rows=rows, batch=batch: aggregator.add(rows, str(batch.seq), 0.0)
            )
            records += len(batch.records)
            rows_total += len(rows)
        keys_total += len(aggregator)
        drained.append(_timed(costs, "columns", aggregator.drain))
        with ClickHouseStore(parse_dsn(f"chdb://{scratch}/store")) as store:
            store.ensure_schema()
            for column_batch in drained:
                _timed(costs, "insert", lambda b=column_batch: store.insert(b, b.token()))
    return StageCosts(
        {name: costs[name] / records for name in STAGES}, records, rows_total, keys_total, len(drained)
    )
