"""From the ingest buffer to ClickHouse: sum per flow, attribute, aggregate, insert, then commit the buffer.

Each flush covers a contiguous range of buffer positions [first, end) and is written down as an intent
before anything is inserted; after the store confirms every insert of the flush, the buffer is committed
up to `end` and the intent removed. A server killed anywhere in between finds the intent on start and
repeats exactly those inserts with the same deduplication tokens, which ClickHouse drops if the first
attempt had landed (the table keeps a deduplication window). So a batch is stored once whether the crash
came before, during or after its inserts.

Between the buffer and the inserts, records are summed per flow (`server.flows`): a flow that agents
report every interval is attributed, aggregated, encoded and stored once per flush instead of once per
report. A flush inserts its flows in parts of a fixed number of flows, in the order the flows were first
seen, each part with its own token (`<token>`, `<token>/1`, ...). What a part holds is therefore decided by
the buffered records alone (the intent records the part size and the bucket), so a replay reproduces
every part's sums exactly even if attribution has changed meanwhile. Ranges end on whole batches: when a
batch might not fit the flow table, the pending flows are inserted first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import count, islice, takewhile
from pathlib import Path

from kubenetmon.errors import PermanentStoreError, StoreError
from kubenetmon.records import AttributedRow, Batch, FlowRecord
from kubenetmon.server import metrics
from kubenetmon.server.aggregate import Aggregator, FlushPolicy
from kubenetmon.server.attribution.attribute import Attribution, Outcome
from kubenetmon.server.flows import FlowTable
from kubenetmon.server.ingest import IngestLog, unframe, write_atomically
from kubenetmon.store.columns import ColumnBatch
from kubenetmon.store.sink import Store
from kubenetmon.transport import codec
from kubenetmon.transport.backoff import BackoffPolicy, backoff_delay

log = logging.getLogger(__name__)

Attribute = Callable[[FlowRecord], Attribution]
_UNBOUNDED = 2**62
"""More flows than any table holds."""


@dataclass(frozen=True, slots=True)
class FlusherSettings:
    """How the buffer turns into inserts."""

    policy: FlushPolicy = field(default_factory=FlushPolicy)
    """`max_keys` bounds the rows of one insert: a flush inserts its flows in parts of `max_keys // 2`
    flows, since a flow makes a row per direction (four rows when its node proxied it, so a part holds at
    worst twice `max_keys` rows). `max_age_seconds`: see `backlog_age_seconds`."""
    max_flows: int = 500_000
    """Flows summed at most before a flush: about 600 bytes each (benchmarks/server_e2e.py), 300 MB."""
    backlog_age_seconds: float = 60.0
    """A flush is due once the oldest pending batch is `policy.max_age_seconds` old and the flusher has
    caught up with the buffer. While batches are still waiting, it keeps summing up to this age instead
    (or until the flow table is full): bigger sums make fewer rows, the quickest way through a backlog."""
    max_records_per_batch: int = 65536
    """Upper bound used when decoding buffered batches (the transport enforced it on arrival)."""
    chunk_batches: int = 64
    """Buffered batches summed per step in a worker thread; keeps the event loop responsive."""
    retry_first_delay: float = 1.0
    retry_max_delay: float = 60.0
    """A store that keeps failing is retried forever at most this far apart; data waits in the buffer."""

    @property
    def part_flows(self) -> int:
        """Flows per insert."""
        return max(1, self.policy.max_keys // 2)


def flush_due(*, full: bool, age: float | None, caught_up: bool, max_age: float, backlog_age: float) -> bool:
    """Whether to insert now: the flow table is full, or its oldest batch (`age` seconds, None when
    empty) is `max_age` old and nothing waits in the buffer, or `backlog_age` old anyway."""
    if full:
        return True
    if age is None:
        return False
    return age >= backlog_age or (caught_up and age >= max_age)


@dataclass(frozen=True, slots=True)
class Intent:
    """A flush that was about to happen: positions [first, end), summed in buckets of `bucket_seconds`
    and inserted in parts of `part_flows` flows, the first with `token`. An intent from before flows
    were summed has neither and is repeated as one insert."""

    first: int
    end: int
    token: str
    part_flows: int | None = None
    bucket_seconds: int | None = None

    def part_token(self, part: int) -> str:
        """The deduplication token of part `part` (the first keeps the flush's own token)."""
        return self.token if part == 0 else f"{self.token}/{part}"


class Flusher:
    """Owns the path buffer -> store. `run()` until `stop` is set, then `drain()` what is left."""

    def __init__(
        self,
        ingest: IngestLog,
        attribute: Attribute,
        store: Store,
        settings: FlusherSettings,
        *,
        bucket_seconds: int,
        rng: random.Random | None = None,
    ) -> None:
        """`bucket_seconds`: the attribution's bucket (flows are summed within one)."""
        self._ingest = ingest
        self._attribute = attribute
        self._store = store
        self._settings = settings
        self._flows = FlowTable(bucket_seconds, settings.max_flows)
        self._opened_at: float | None = None
        self._cursor = ingest.start
        self._first = ingest.start
        self._intent_path = ingest.settings.directory / "intent.json"
        self._rng = rng or random.Random()
        # Doubling from the first delay to the cap, each spread over [0.5, 1.5) of itself.
        self._retry_policy = BackoffPolicy(
            initial=settings.retry_first_delay, maximum=settings.retry_max_delay, jitter=0.5
        )
        self._arrivals: list[float] = []
        self.store_ok: bool | None = None
        """None until the first insert or ping; then whether the store answered last time."""

    async def run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """Insert what arrives until `stop` is set; `wake` is set by the ingest side on new batches."""
        await self._replay_intent()
        while not stop.is_set():
            await self._step()
            caught_up = self._cursor >= self._ingest.durable_end
            if self._due(time.monotonic(), caught_up):
                await self._flush()
            elif caught_up:
                wake.clear()
                with_timeout = self._settings.policy.max_age_seconds if self._opened_at is not None else None
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
        await self._flush()

    def _due(self, now: float, caught_up: bool) -> bool:
        return flush_due(
            full=self._flows.full,
            age=None if self._opened_at is None else now - self._opened_at,
            caught_up=caught_up,
            max_age=self._settings.policy.max_age_seconds,
            backlog_age=self._settings.backlog_age_seconds,
        )

    def _next_chunk(self, end: int) -> list[tuple[int, bytes]]:
        """The next buffered batches from the cursor, below position `end`, at most `chunk_batches`."""
        chunk = self._ingest.pending(self._cursor, self._settings.chunk_batches)
        return list(takewhile(lambda item: item[0] < end, chunk))

    async def _step(self) -> None:
        end = self._ingest.durable_end
        chunk = self._next_chunk(end)
        if not chunk:
            # Nothing readable below `end`: positions lost to a torn tail leave such gaps.
            self._cursor = max(self._cursor, end)
            return
        flush_before = await asyncio.to_thread(self._sum, chunk)
        if flush_before is not None:
            # The batch at `flush_before` might not fit: insert what is pending, then take it again.
            self._cursor = flush_before
            await self._flush()

    def _sum(self, chunk: Sequence[tuple[int, bytes]]) -> int | None:
        """Sum a run of buffered batches into the flow table; the position that might not fit, if any."""
        for position, record in chunk:
            batch = unframe(record, self._settings.max_records_per_batch)
            columns = codec.columns_of(batch)
            if not self._flows.room_for(columns):
                return position
            _add(self._flows, batch, columns)
            if self._opened_at is None:
                self._opened_at = time.monotonic()
            self._arrivals.append(time.time())
            self._cursor = position + 1
        return None

    async def _flush(self) -> None:
        if self._cursor == self._first:
            return
        intent = Intent(
            self._first,
            self._cursor,
            f"kubenetmon:{self._ingest.server_id}:{self._first}-{self._cursor}",
            self._settings.part_flows,
            self._flows.bucket_seconds,
        )
        _write_intent(self._intent_path, intent)
        self._opened_at = None
        await self._insert(self._flows, intent)

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
        # The range as it was summed before: same bucket, no bound (it fitted then).
        table = FlowTable(intent.bucket_seconds or self._flows.bucket_seconds, _UNBOUNDED)
        while self._cursor < intent.end:
            chunk = self._next_chunk(intent.end)
            if not chunk:
                break
            await asyncio.to_thread(self._sum_all, chunk, table)
        await self._insert(table, intent)

    def _sum_all(self, chunk: Sequence[tuple[int, bytes]], table: FlowTable) -> None:
        for position, record in chunk:
            batch = unframe(record, self._settings.max_records_per_batch)
            _add(table, batch, codec.columns_of(batch))
            self._cursor = position + 1

    async def _insert(self, table: FlowTable, intent: Intent) -> None:
        """Attribute and insert every flow of `table` in the intent's parts, then commit the range."""
        started = time.monotonic()
        outcomes: dict[str, int] = {Outcome.EMPTY: table.empty} if table.empty else {}
        flows = table.drain()
        part_flows = intent.part_flows or _UNBOUNDED
        rows = 0
        for part in count():
            batch, taken = await asyncio.to_thread(self._attributed, flows, part_flows, outcomes)
            if batch.rows:
                await self._store_part(batch, intent, part)
            rows += batch.rows
            if taken < part_flows:
                break
        for outcome, records in outcomes.items():
            metrics.RECORDS_ATTRIBUTED.labels(outcome=outcome).inc(records)
        self.store_ok = True
        await asyncio.to_thread(self._ingest.commit, intent.end)
        self._intent_path.unlink(missing_ok=True)
        self._first = self._cursor = max(self._cursor, intent.end)
        now = time.time()
        for arrived in self._arrivals:
            metrics.STORE_DELAY.observe(now - arrived)
        self._arrivals.clear()
        metrics.ROWS_STORED.inc(rows)
        metrics.INSERT_SECONDS.observe(time.monotonic() - started)

    def _attributed(
        self, flows: Iterator[tuple[FlowRecord, int]], limit: int, outcomes: dict[str, int]
    ) -> tuple[ColumnBatch, int]:
        """Attribute the next `limit` flows once each and sum their rows per key: one insert, as
        columns, and how many flows it took. Counts records per outcome into `outcomes`."""
        attribute = self._attribute
        rows: list[AttributedRow] = []
        taken = 0
        for flow, records in islice(flows, limit):
            attribution = attribute(flow)
            rows.extend(attribution.rows)
            outcomes[attribution.outcome] = outcomes.get(attribution.outcome, 0) + records
            taken += 1
        # At most four rows per flow, so this aggregator never fills.
        aggregator = Aggregator(FlushPolicy(max_keys=max(1, 4 * taken)))
        aggregator.add(rows, "flows", time.monotonic())
        return aggregator.drain(), taken

    async def _store_part(self, batch: ColumnBatch, intent: Intent, part: int) -> None:
        """Insert one part, retrying store errors forever (the data stays in the buffer meanwhile)."""
        failures = 0
        while True:
            try:
                await asyncio.to_thread(self._store.insert, batch, intent.part_token(part))
            except StoreError as exc:
                failures += 1
                self.store_ok = False
                kind = "permanent" if isinstance(exc, PermanentStoreError) else "transient"
                metrics.INSERT_FAILURES.labels(kind=kind).inc()
                delay = backoff_delay(self._retry_policy, failures, self._rng.random())
                log.error(
                    "insert of buffer positions %d-%d (part %d) failed (%s, attempt %d): %s; the data stays "
                    "buffered, retrying in %.1f s",
                    intent.first,
                    intent.end,
                    part,
                    kind,
                    failures,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
            else:
                return


def _add(table: FlowTable, batch: Batch, columns: codec.FlowColumns) -> None:
    table.add(columns)
    for loss in batch.losses:
        metrics.AGENT_LOSSES.labels(reason=loss.reason).inc(loss.count)
        metrics.AGENT_LOST_BYTES.labels(reason=loss.reason).inc(loss.bytes)


def _write_intent(path: Path, intent: Intent) -> None:
    write_atomically(path, json.dumps(asdict(intent)))


def _read_intent(path: Path) -> Intent | None:
    try:
        data = json.loads(path.read_text())
        part_flows, bucket_seconds = data.get("part_flows"), data.get("bucket_seconds")
        return Intent(
            int(data["first"]),
            int(data["end"]),
            str(data["token"]),
            None if part_flows is None else int(part_flows),
            None if bucket_seconds is None else int(bucket_seconds),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.error("ignoring an unreadable insert intent %s (%s); its range is inserted again", path, exc)
        return None
