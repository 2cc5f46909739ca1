"""CPU cost per record of each stage of the server's path, measured one stage at a time in one process
pinned to the server's core, with the server's own functions on the same recorded batches:

    decode (transport: validate) -> frame + WAL append/fsync (ingest) -> unframe (flusher: validate again)
    -> sum per flow -> attribute each flow -> aggregate rows -> build columns (drain)
    -> insert (Native encoding + embedded chDB)

Flows are summed and inserted as the flusher does (`FlusherSettings()`: a table of `max_flows` flows,
inserts of `part_flows` flows); the batches are taken in the order given.

CPU time is `time.process_time()`: every thread of the process, the engine's included.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from kubenetmon.records import AttributedRow, Batch, FlowRecord
from kubenetmon.server.aggregate import Aggregator, FlushPolicy
from kubenetmon.server.attribution.attribute import Attribution, Attributor
from kubenetmon.server.attribution.lookups import ExternalSources, Lookups
from kubenetmon.server.attribution.settings import AttributionSettings
from kubenetmon.server.cloud.refresh import RangeRefresher, RefreshSettings
from kubenetmon.server.daemon import GC_THRESHOLDS
from kubenetmon.server.flows import FlowTable
from kubenetmon.server.flusher import FlusherSettings
from kubenetmon.server.ingest import frame, unframe
from kubenetmon.server.inventory.static import StaticInventory
from kubenetmon.store.columns import ColumnBatch
from kubenetmon.store.dsn import parse_dsn
from kubenetmon.store.sink import ClickHouseStore
from kubenetmon.transport import codec
from kubenetmon.transport.segment_log import FsyncPolicy, SegmentLog, SegmentLogSettings

STAGES = ("decode", "frame", "wal", "unframe", "flows", "attribute", "aggregate", "columns", "insert")
MAX_RECORDS = 65536


@dataclass(frozen=True, slots=True)
class StageCosts:
    """CPU seconds per record of each stage, and what the stages produced."""

    per_record: dict[str, float]
    records: int
    flows: int
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
        records = 0
        settings = FlusherSettings()
        table = FlowTable(attribution.bucket_seconds, settings.max_flows)
        parts: list[ColumnBatch] = []
        counts = [0, 0]  # flows, rows
        for record in framed:
            columns = _timed(
                costs, "unframe", lambda record=record: codec.columns_of(unframe(record, MAX_RECORDS))
            )
            if not table.room_for(columns):
                _attribute_parts(table, attribute, settings.part_flows, costs, parts, counts)
            _timed(costs, "flows", lambda columns=columns: table.add(columns))
            records += columns.count
        _attribute_parts(table, attribute, settings.part_flows, costs, parts, counts)
        with ClickHouseStore(parse_dsn(f"chdb://{scratch}/store")) as store:
            store.ensure_schema()
            for part in parts:
                _timed(costs, "insert", lambda part=part: store.insert(part, part.token()))
    flows, rows = counts
    return StageCosts(
        {name: costs[name] / records for name in STAGES},
        records,
        flows,
        rows,
        sum(part.rows for part in parts),
        len(parts),
    )


def _attribute_parts(
    table: FlowTable,
    attribute: Callable[[FlowRecord], Attribution],
    part_flows: int,
    costs: dict[str, float],
    parts: list[ColumnBatch],
    counts: list[int],
) -> None:
    """As the flusher's flush: every flow attributed once, rows summed per key, part by part."""
    pending = table.drain()
    while flows := [flow for flow, _ in islice(pending, part_flows)]:
        rows: list[AttributedRow] = _timed(
            costs, "attribute", lambda flows=flows: [row for flow in flows for row in attribute(flow).rows]
        )
        aggregator = Aggregator(FlushPolicy(max_keys=4 * len(flows)))
        _timed(costs, "aggregate", lambda rows=rows, aggregator=aggregator: aggregator.add(rows, "", 0.0))
        parts.append(_timed(costs, "columns", aggregator.drain))
        counts[0] += len(flows)
        counts[1] += len(rows)
