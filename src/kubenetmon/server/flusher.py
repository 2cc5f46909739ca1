"""From the ingest buffer to ClickHouse: attribute, aggregate, insert, then let the buffer forget.

Each insert covers a contiguous range of buffer positions [first, end) and carries the token
`kubenetmon:<server id>:<first>-<end>`. Before inserting, the range is written down as an intent; after
the store confirms, the buffer is committed up to `end` and the intent removed. A server killed anywhere
in between finds the intent on start and repeats exactly that insert with the same token, which
ClickHouse drops if the first attempt had landed (the table keeps a deduplication window). So a batch is
stored once whether the crash came before, during or after its insert.

Ranges end on whole batches: when a batch's rows would not fit the aggregator, the pending rows are
inserted first, so a replay never has to reproduce a split inside a batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubenetmon.errors import PermanentStoreError, StoreError
from kubenetmon.records import AttributedRow, Batch, FlowRecord
from kubenetmon.server import metrics
from kubenetmon.server.aggregate import Aggregator, FlushPolicy
from kubenetmon.server.attribution.attribute import Attribution
from kubenetmon.server.ingest import IngestLog, unframe, write_atomically
from kubenetmon.store.columns import ColumnBatch
from kubenetmon.store.sink import Store

log = logging.getLogger(__name__)

Attribute = Callable[[FlowRecord], Attribution]


@dataclass(frozen=True, slots=True)
class FlusherSettings:
    """How the buffer turns into inserts."""

    policy: FlushPolicy = field(default_factory=FlushPolicy)
    max_records_per_batch: int = 65536
    """Upper bound used when decoding buffered batches (the transport enforced it on arrival)."""
    chunk_batches: int = 64
    """Buffered batches attributed per step in a worker thread; keeps the event loop responsive."""
    retry_first_delay: float = 1.0
    retry_max_delay: float = 60.0
    """A store that keeps failing is retried forever at most this far apart; data waits in the buffer."""


@dataclass(frozen=True, slots=True)
class Intent:
    """An insert that was about to happen: positions [first, end) with this token."""

    first: int
    end: int
    token: str


class Flusher:
    """Owns the path buffer -> store. `run()` until `stop` is set, then `drain()` what is left."""

    def __init__(
        self,
        ingest: IngestLog,
        attribute: Attribute,
        store: Store,
        settings: FlusherSettings,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._ingest = ingest
        self._attribute = attribute
        self._store = store
        self._settings = settings
        self._aggregator = Aggregator(settings.policy)
        self._cursor = ingest.start
        self._first = ingest.start
        self._intent_path = ingest.settings.directory / "intent.json"
        self._rng = rng or random.Random()
        self._arrivals: list[float] = []
        self.store_ok: bool | None = None
        """None until the first insert or ping; then whether the store answered last time."""

    async def run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """Insert what arrives until `stop` is set; `wake` is set by the ingest side on new batches."""
        await self._replay_intent()
        while not stop.is_set():
            await self._step()
            if self._aggregator.due(time.monotonic()):
                await self._flush()
            elif self._cursor >= self._ingest.durable_end:
                wake.clear()
                with_timeout = self._settings.policy.max_age_seconds if len(self._aggregator) else None
                waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
                _, pending = await asyncio.wait(
                    waiters, timeout=with_timeout, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in pending:
                    waiter.cancel()

    async def drain(self) -> None:
        """Insert everything buffered so far (graceful shutdown); store errors are retried meanwhile."""
        await self._replay_intent()
        while self._cursor < self._ingest.durable_end:
            await self._step()
        if len(self._aggregator):
            await self._flush()

    async def _step(self) -> None:
        end = self._ingest.durable_end
        chunk = [
            item
            for _, item in zip(
                range(self._settings.chunk_batches), self._ingest.pending(self._cursor), strict=False
            )
            if item[0] < end
        ]
        if not chunk:
            # Nothing readable below `end`: positions lost to a torn tail leave such gaps.
            self._cursor = max(self._cursor, end)
            return
        flush_before = await asyncio.to_thread(self._aggregate, chunk)
        if flush_before is not None:
            # The batch at `flush_before` did not fit: insert what is pending, then take it again.
            self._cursor = flush_before
            await self._flush()

    def _aggregate(self, chunk: Sequence[tuple[int, bytes]]) -> int | None:
        """Attribute and sum a run of buffered batches; the position that did not fit, if one did not."""
        for position, record in chunk:
            batch = unframe(record, self._settings.max_records_per_batch)
            rows = self._rows(batch)
            if len(self._aggregator) and len(self._aggregator) + len(rows) > self._settings.policy.max_keys:
                return position
            self._aggregator.add(rows, f"{batch.node}/{batch.epoch}/{batch.seq}", time.monotonic())
            self._arrivals.append(time.time())
            self._cursor = position + 1
        return None

    def _rows(self, batch: Batch) -> list[AttributedRow]:
        rows: list[AttributedRow] = []
        outcomes: dict[str, int] = {}
        attribute = self._attribute
        for record in batch.records:
            attribution = attribute(record)
            rows.extend(attribution.rows)
            outcomes[attribution.outcome] = outcomes.get(attribution.outcome, 0) + 1
        for outcome, count in outcomes.items():
            metrics.RECORDS_ATTRIBUTED.labels(outcome=outcome).inc(count)
        for loss in batch.losses:
            metrics.AGENT_LOSSES.labels(reason=loss.reason).inc(loss.count)
            metrics.AGENT_LOST_BYTES.labels(reason=loss.reason).inc(loss.bytes)
        return rows

    async def _flush(self) -> None:
        if self._cursor == self._first:
            return
        intent = Intent(
            self._first, self._cursor, f"kubenetmon:{self._ingest.server_id}:{self._first}-{self._cursor}"
        )
        _write_intent(self._intent_path, intent)
        await self._insert(await asyncio.to_thread(self._aggregator.drain), intent)

    async def _replay_intent(self) -> None:
        intent = _read_intent(self._intent_path)
        if intent is None or intent.end <= self._ingest.start:
            self._intent_path.unlink(missing_ok=True)
            return
        log.info(
            "repeating the insert of buffer positions %d-%d interrupted by a restart",
            intent.first,
            intent.end,
        )
        self._cursor = self._first = max(intent.first, self._ingest.start)
        while self._cursor < intent.end:
            chunk = [item for item in self._ingest.pending(self._cursor) if item[0] < intent.end]
            if not chunk:
                break
            await asyncio.to_thread(self._force_aggregate, chunk)
        await self._insert(await asyncio.to_thread(self._aggregator.drain), intent)

    def _force_aggregate(self, chunk: Sequence[tuple[int, bytes]]) -> None:
        for position, record in chunk:
            batch = unframe(record, self._settings.max_records_per_batch)
            self._aggregator.add(
                self._rows(batch), f"{batch.node}/{batch.epoch}/{batch.seq}", time.monotonic()
            )
            self._cursor = position + 1

    async def _insert(self, batch: ColumnBatch, intent: Intent) -> None:
        failures = 0
        started = time.monotonic()
        while True:
            try:
                if batch.rows:
                    await asyncio.to_thread(self._store.insert, batch, intent.token)
                break
            except StoreError as exc:
                failures += 1
                self.store_ok = False
                kind = "permanent" if isinstance(exc, PermanentStoreError) else "transient"
                metrics.INSERT_FAILURES.labels(kind=kind).inc()
                delay = min(
                    self._settings.retry_max_delay, self._settings.retry_first_delay * 2 ** (failures - 1)
                )
                delay *= 0.5 + self._rng.random()
                log.error(
                    "insert of buffer positions %d-%d failed (%s, attempt %d): %s; the data stays buffered, "
                    "retrying in %.1f s",
                    intent.first,
                    intent.end,
                    kind,
                    failures,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
        self.store_ok = True
        await asyncio.to_thread(self._ingest.commit, intent.end)
        self._intent_path.unlink(missing_ok=True)
        self._first = self._cursor = max(self._cursor, intent.end)
        now = time.time()
        for arrived in self._arrivals:
            metrics.STORE_DELAY.observe(now - arrived)
        self._arrivals.clear()
        metrics.ROWS_STORED.inc(batch.rows)
        metrics.INSERT_SECONDS.observe(time.monotonic() - started)


def _write_intent(path: Path, intent: Intent) -> None:
    write_atomically(path, json.dumps({"first": intent.first, "end": intent.end, "token": intent.token}))


def _read_intent(path: Path) -> Intent | None:
    try:
        data = json.loads(path.read_text())
        return Intent(int(data["first"]), int(data["end"]), str(data["token"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        log.error("ignoring an unreadable insert intent %s (%s); its range is inserted again", path, exc)
        return None
