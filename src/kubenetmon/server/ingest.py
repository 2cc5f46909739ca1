"""The server's write-ahead buffer: an agent's batch is acknowledged once it is here, on local disk.

Why a buffer of our own instead of acknowledging after the ClickHouse insert: inserts are efficient only in
large blocks that mix many agents' batches, and a server killed between a successful insert and its acks
would see every batch of that block resent and stored twice. Here each batch is fsynced into a segment log
(group commit: one fsync covers every batch that arrived meanwhile) before it is acknowledged; the
flusher (`server.flusher`) turns the log into inserts with deterministic deduplication tokens, so a
replay after a crash repeats the same inserts and ClickHouse drops the ones it already has.

Resent batches are recognised by (node, epoch, seq) in a `SequenceBook`, which is rebuilt on start from
the book saved at the last commit plus the headers of the batches still in the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice, takewhile
from pathlib import Path

from kubenetmon.errors import KubenetmonError
from kubenetmon.records import Batch
from kubenetmon.transport import codec
from kubenetmon.transport.segment_log import FsyncPolicy, LogFull, SegmentLog, SegmentLogSettings
from kubenetmon.transport.service import AckDecision

log = logging.getLogger(__name__)

_U16 = struct.Struct("<H")
_U64 = struct.Struct("<Q")


class IngestFailed(KubenetmonError):
    """The buffer could not make data durable (fsync failed); the server must restart to recover."""


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """Where and how much the server buffers between agents and the store."""

    directory: Path
    """Holds the log segments, the sequence book and the server id. Survives restarts of the process
    (a Kubernetes emptyDir survives container restarts; a PVC survives rescheduling)."""
    max_bytes: int = 1024 * 1024 * 1024
    """Bound on the buffered batches. When it is reached agents are told to retry later (they keep the
    data in their spools), so a long store outage costs disk here and there, never bytes."""
    segment_bytes: int = 16 * 1024 * 1024
    retry_after_ms: int = 5000
    """What a full buffer asks agents to wait before resending."""

    def problems(self) -> list[str]:
        """Every reason these settings cannot work; empty when fine."""
        found = []
        if self.max_bytes < 4 * self.segment_bytes:
            found.append(
                f"the ingest buffer bound {self.max_bytes} must be at least four segments "
                f"({4 * self.segment_bytes} bytes)"
            )
        if self.retry_after_ms <= 0:
            found.append("the retry delay of a full ingest buffer must be positive")
        return found


class SequenceBook:
    """Which (node, epoch, seq) are durable: per agent epoch, every seq up to `low` plus a bounded set above.

    A set and not only a high-water mark, because a batch the server asked to retry may arrive after a
    later one was accepted; the set is bounded (oldest entries fold into `low`), which is safe because a
    retried batch comes back within seconds, not after `max_pending` newer batches.
    """

    def __init__(self, max_pending: int = 10_000) -> None:
        self._max_pending = max_pending
        self._agents: dict[tuple[str, str], tuple[int, set[int]]] = {}
        self._last_seen: dict[tuple[str, str], float] = {}

    def __contains__(self, ident: tuple[str, str, int]) -> bool:
        node, epoch, seq = ident
        state = self._agents.get((node, epoch))
        return state is not None and (seq <= state[0] or seq in state[1])

    def add(self, node: str, epoch: str, seq: int, now: float) -> None:
        """Record that this batch is durable."""
        key = (node, epoch)
        low, above = self._agents.get(key, (-1, set()))
        above.add(seq)
        while low + 1 in above:
            low += 1
            above.discard(low)
        while len(above) > self._max_pending:
            oldest = min(above)
            above.discard(oldest)
            low = max(low, oldest)
        self._agents[key] = (low, above)
        self._last_seen[key] = now

    def prune(self, now: float, max_age: float) -> None:
        """Forget agent epochs not heard from for `max_age` seconds (agents restarted without a spool)."""
        for key in [k for k, seen in self._last_seen.items() if now - seen > max_age]:
            del self._agents[key], self._last_seen[key]

    def to_json(self) -> str:
        """The book as JSON text, for `save`."""
        return json.dumps(
            [
                [node, epoch, low, sorted(above), self._last_seen[(node, epoch)]]
                for (node, epoch), (low, above) in self._agents.items()
            ]
        )

    @classmethod
    def from_json(cls, text: str, max_pending: int = 10_000) -> SequenceBook:
        """Inverse of `to_json`."""
        book = cls(max_pending)
        for node, epoch, low, above, seen in json.loads(text):
            book._agents[(node, epoch)] = (int(low), {int(s) for s in above})
            book._last_seen[(node, epoch)] = float(seen)
        return book


def frame(batch: Batch) -> bytes:
    """A log record: a small header naming the batch (read without decoding it) and the encoded batch,
    as received when the batch came off the wire (encoding it again costs as much as decoding it)."""
    node, epoch = batch.node.encode(), batch.epoch.encode()
    return b"".join(
        (
            _U16.pack(len(node)),
            node,
            _U16.pack(len(epoch)),
            epoch,
            _U64.pack(batch.seq),
            batch.encoded or codec.encode_batch(batch),
        )
    )


def header(record: bytes) -> tuple[str, str, int, int]:
    """(node, epoch, seq, offset of the encoded batch) of a log record."""
    (node_length,) = _U16.unpack_from(record, 0)
    node = record[2 : 2 + node_length].decode()
    offset = 2 + node_length
    (epoch_length,) = _U16.unpack_from(record, offset)
    epoch = record[offset + 2 : offset + 2 + epoch_length].decode()
    offset += 2 + epoch_length
    (seq,) = _U64.unpack_from(record, offset)
    return node, epoch, seq, offset + _U64.size


def unframe(record: bytes, max_records: int) -> Batch:
    """The batch a log record holds."""
    return codec.decode_batch(record[header(record)[3] :], max_records)


class IngestLog:
    """The durable buffer. `accept` is called from the event loop; the flusher reads and commits.

    Every touch of the segment log holds one lock, because fsync runs in a worker thread.
    """

    BOOK_MAX_AGE = 7 * 86400.0

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        settings.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._log = SegmentLog(
            settings.directory / "log",
            SegmentLogSettings(
                max_bytes=settings.max_bytes, segment_bytes=settings.segment_bytes, fsync=FsyncPolicy.NEVER
            ),
        )
        recovery = self._log.recovery
        if recovery.torn_bytes or recovery.lost_records:
            log.warning(
                "ingest buffer %s: cut %d torn bytes after a crash; %d records there were never acknowledged",
                settings.directory,
                recovery.torn_bytes,
                recovery.lost_records,
            )
        self.server_id = _server_id(settings.directory / "server-id")
        self._book_path = settings.directory / "sequences.json"
        self._book = (
            SequenceBook.from_json(self._book_path.read_text())
            if self._book_path.exists()
            else SequenceBook()
        )
        now = time.time()
        for position in self._log.positions():
            node, epoch, seq, _ = header(self._log.read(position))
            self._book.add(node, epoch, seq, now)
        self._synced = self._log.next_position
        self._sync_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._sync_task: asyncio.Task[None] | None = None
        self._failed: IngestFailed | None = None

    @property
    def start(self) -> int:
        """The first position not yet committed (stored in ClickHouse)."""
        return self._log.start

    @property
    def next_position(self) -> int:
        """The position the next accepted batch gets."""
        return self._log.next_position

    @property
    def durable_end(self) -> int:
        """Every batch below this position is durable (and may be read by the flusher)."""
        return self._synced

    @property
    def pending_bytes(self) -> int:
        """Bytes of buffered batches not yet stored."""
        return self._log.pending_bytes

    @property
    def failed(self) -> IngestFailed | None:
        """Set once an fsync failed; from then on nothing is acknowledged."""
        return self._failed

    async def accept(self, batch: Batch) -> AckDecision:
        """Make `batch` durable and say so, or say it already was, or ask the agent to retry later."""
        if self._failed is not None:
            return AckDecision.retry(self.settings.retry_after_ms, "server ingest buffer failed; restart it")
        if (batch.node, batch.epoch, batch.seq) in self._book:
            return AckDecision.duplicate()
        try:
            with self._lock:
                position = self._log.append(frame(batch))
        except LogFull:
            return AckDecision.retry(self.settings.retry_after_ms, "server ingest buffer is full")
        # Booked before it is synced, so a resend racing on another stream is not appended twice;
        # a failed sync makes the whole server refuse (and a restart rebuilds the book from disk).
        self._book.add(batch.node, batch.epoch, batch.seq, time.time())
        await self._durable(position)
        return AckDecision.accepted()

    async def _durable(self, position: int) -> None:
        if position < self._synced:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sync_waiters.append((position, waiter))
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.create_task(self._sync_loop(), name="ingest fsync")
        await waiter

    async def _sync_loop(self) -> None:
        # Group commit: every batch appended while one fsync runs is covered by the next one.
        while self._sync_waiters:
            target = self._log.next_position
            try:
                await asyncio.to_thread(self._sync)
            except OSError as exc:
                self._failed = IngestFailed(
                    f"fsync of the ingest buffer {self.settings.directory} failed: {exc}"
                )
                log.critical("%s; acknowledging nothing until the server restarts", self._failed)
                for _, waiter in self._sync_waiters:
                    if not waiter.done():
                        waiter.set_exception(self._failed)
                self._sync_waiters.clear()
                return
            self._synced = target
            still_waiting = []
            for position, waiter in self._sync_waiters:
                if position < target:
                    if not waiter.done():
                        waiter.set_result(None)
                else:
                    still_waiting.append((position, waiter))
            self._sync_waiters = still_waiting

    def _sync(self) -> None:
        with self._lock:
            self._log.sync()

    def pending(self, after: int, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(position, record) of the durable, uncommitted batches from position `after` on, in order: all
        of them, or the first `limit`. Costs `limit`, not the whole backlog, however much is buffered."""
        with self._lock:
            durable = takewhile(lambda p: p < self._synced, self._log.positions(after))
            positions = list(islice(durable, limit))
        for position in positions:
            with self._lock:
                record = self._log.read(position)
            yield position, record

    def commit(self, position: int) -> None:
        """Everything below `position` is stored: save the sequence book, then let the log drop it.

        The book first, so the log never forgets batches whose sequence numbers are not yet saved.
        """
        now = time.time()
        self._book.prune(now, self.BOOK_MAX_AGE)
        write_atomically(self._book_path, self._book.to_json())
        with self._lock:
            self._log.commit(position)

    def close(self) -> None:
        """Sync and release the files."""
        with self._lock:
            self._log.close()


def _server_id(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    server_id = secrets.token_hex(8)
    write_atomically(path, server_id)
    return server_id


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a crash leaves either the old or the new content, durably."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    with temporary.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
