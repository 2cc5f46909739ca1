"""The store: create or check the table, insert column batches idempotently, answer queries.

One code path over clickhouse-connect for both the embedded engine and a remote server. An insert carries
the caller's deterministic `insert_deduplication_token`, so a retry after an ambiguous failure (the server
committed, the answer was lost) cannot double the bytes; transient errors are retried with exponential
backoff and full jitter up to `RetryPolicy.attempts`, then raised, never swallowed: the caller still
holds the batch and decides what to do with it.

The methods block; the server calls them from a worker thread (`asyncio.to_thread`). Calls are
serialized on one client, which is what the embedded engine needs and costs a remote store nothing at
one insert at a time.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kubenetmon.errors import PermanentStoreError, StoreError, TransientStoreError
from kubenetmon.store import metrics
from kubenetmon.store.client import codec_name, open_client, translated
from kubenetmon.store.columns import ColumnBatch
from kubenetmon.store.dsn import StoreSettings
from kubenetmon.store.schema import (
    COLUMN_NAMES,
    COLUMN_TYPES,
    ExistingTable,
    create_statements,
    missing_extensions,
    parse_key,
    problems,
    refusal,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one insert tries before giving the batch back to the caller."""

    attempts: int = 6
    """Total attempts, the first included; with the delays below about 15 s of retrying at most."""
    first_delay: float = 0.5
    max_delay: float = 15.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.first_delay < 0 or self.max_delay < self.first_delay:
            raise ValueError(
                f"retry policy needs attempts >= 1 and 0 <= first_delay <= max_delay, got {self}"
            )

    def delay(self, retry: int, rng: random.Random) -> float:
        """Full-jitter backoff before retry `retry` (1-based): uniform(0, min(max, first * 2**(retry-1)))."""
        return rng.uniform(0.0, min(self.max_delay, self.first_delay * 2 ** (retry - 1)))


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A query's answer: column names, ClickHouse type names and rows of Python values."""

    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: list[tuple[Any, ...]]


class Store(Protocol):
    """What the server and the CLI need from a store."""

    def ensure_schema(self) -> None:
        """Create what is missing; refuse (PermanentStoreError) a table we cannot write correctly."""

    def insert(self, batch: ColumnBatch, token: str) -> None:
        """Insert the batch exactly once per token; raise StoreError if it could not be stored."""

    def ping(self) -> bool:
        """Whether the store answers queries now (readiness)."""

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        """Run one SELECT; `{name:Type}` placeholders are bound server-side from `parameters`."""

    def close(self) -> None:
        """Release the client (and the embedded engine's directory lock)."""


class ClickHouseStore:
    """`Store` over clickhouse-connect: `chdb://` embedded or `http(s)://` remote, chosen by the settings."""

    def __init__(
        self,
        settings: StoreSettings,
        retry: RetryPolicy = RetryPolicy(),
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.retry = retry
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._client: Any = None

    def __repr__(self) -> str:
        return f"ClickHouseStore({self.settings.display()})"

    def __enter__(self) -> ClickHouseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def codec(self) -> str:
        """'rust' or 'python': the Native codec inserts are encoded with (connects if needed)."""
        with self._lock:
            return codec_name(self._connected())

    def _connected(self) -> Any:
        if self._client is None:
            self._client = open_client(self.settings)
        return self._client

    def _run(self, operation: str, action: str, call: Callable[[Any], Any]) -> Any:
        """`call(client)` under the lock, with errors translated and counted under `operation`."""
        try:
            with self._lock, translated(action, self.settings):
                return call(self._connected())
        except StoreError as exc:
            kind = "transient" if isinstance(exc, TransientStoreError) else "permanent"
            metrics.ERRORS.labels(kind, operation).inc()
            raise

    def ensure_schema(self) -> None:
        name = self.settings.name
        existing = self._existing(name.local)
        if existing is None or (name.cluster and self._existing(name.table) is None):
            for statement in create_statements(name):
                self._command("ddl", "creating the table", statement)
            log.info("store %s: created %s.%s", self.settings.display(), name.database, name.table)
            existing = self._existing(name.local)
        if existing is None:
            raise PermanentStoreError(f"store {self.settings.display()}: table still missing after CREATE")
        found = problems(existing)
        if name.cluster:
            front = self._existing(name.table)
            found += problems(front, distributed=True) if front else ["Distributed table missing"]
        if found or missing_extensions(existing):
            metrics.ERRORS.labels("permanent", "ddl").inc()
            raise PermanentStoreError(refusal(name, existing, found))

    def _existing(self, table: str) -> ExistingTable | None:
        database = self.settings.name.database
        found = self.query(
            "SELECT engine, sorting_key FROM system.tables "
            "WHERE database = {db:String} AND name = {t:String}",
            {"db": database, "t": table},
        ).rows
        if not found:
            return None
        columns = self.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}",
            {"db": database, "t": table},
        ).rows
        return ExistingTable(found[0][0], parse_key(found[0][1]), dict(columns))

    def insert(self, batch: ColumnBatch, token: str) -> None:
        if batch.rows == 0:
            return
        started = time.monotonic()
        for attempt in range(1, self.retry.attempts + 1):
            try:
                self._insert_once(batch, token)
            except TransientStoreError as exc:
                if attempt == self.retry.attempts:
                    self._count_failed(batch)
                    raise TransientStoreError(f"gave up after {attempt} attempts: {exc}") from exc
                pause = self.retry.delay(attempt, self._rng)
                log.warning(
                    "insert of %d rows failed (attempt %d), retrying in %.1fs: %s",
                    batch.rows,
                    attempt,
                    pause,
                    exc,
                )
                metrics.RETRIES.inc()
                self._sleep(pause)
            except PermanentStoreError:
                self._count_failed(batch)
                raise
            else:
                metrics.INSERTS.labels("inserted").inc()
                metrics.ROWS.labels("inserted").inc(batch.rows)
                metrics.INSERT_SECONDS.observe(time.monotonic() - started)
                return

    def _insert_once(self, batch: ColumnBatch, token: str) -> None:
        name = self.settings.name
        settings: dict[str, Any] = {
            "insert_deduplication_token": token,
            "insert_deduplicate": 1,
            # Our batches are already large; server-side async buffering would only weaken the token.
            "async_insert": 0,
            # Sorting and summing each insert block costs 2/3 of the engine's insert time; merges sum anyway.
            "optimize_on_insert": 0,
        }
        if name.cluster:
            # The token only protects a retry if the Distributed table forwards the insert synchronously.
            settings["distributed_foreground_insert"] = 1
        self._run(
            "insert",
            f"inserting {batch.rows} rows",
            lambda client: client.insert(
                table=name.table,
                database=name.database,
                data=batch.columns,
                column_names=COLUMN_NAMES,
                column_type_names=COLUMN_TYPES,
                column_oriented=True,
                settings=settings,
            ),
        )

    @staticmethod
    def _count_failed(batch: ColumnBatch) -> None:
        metrics.INSERTS.labels("failed").inc()
        metrics.ROWS.labels("failed").inc(batch.rows)

    def ping(self) -> bool:
        try:
            return str(self._run("ping", "ping", lambda client: client.command("SELECT 1"))) == "1"
        except StoreError as exc:
            log.warning("store %s is not ready: %s", self.settings.display(), exc)
            return False

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        result = self._run("query", "query", lambda client: client.query(sql, parameters=parameters))
        return QueryResult(
            tuple(result.column_names), tuple(t.name for t in result.column_types), result.result_rows
        )

    def command(self, sql: str) -> Any:
        """Run one statement that returns no result set (OPTIMIZE, SYSTEM ..., DDL)."""
        return self._command("query", "command", sql)

    def _command(self, operation: str, action: str, sql: str) -> Any:
        return self._run(operation, action, lambda client: client.command(sql))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
