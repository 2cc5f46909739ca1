"""The agent's bounded spool of encoded batches that the server has not acknowledged yet.

A batch's seq is its position in the spool's log, so the sequence space and the stored batches cannot
drift apart: an on-disk spool reopened after a restart continues the same epoch and seq numbering and
still holds every batch that was never acknowledged. A memory-only spool starts a new epoch each time.

When a new batch would take the spool past its byte bound, the OLDEST batches are dropped to make room.
`describe_dropped` turns dropped batches into the loss reports that travel in-band with the next batch.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kubenetmon.records import LossReason, LossReport
from kubenetmon.transport import codec
from kubenetmon.transport.metrics import AGENT_LOST_BATCHES, AGENT_SPOOL_RECOVERED
from kubenetmon.transport.segment_log import (
    CorruptRecord,
    FsyncPolicy,
    LogFull,
    SegmentLog,
    SegmentLogSettings,
)

log = logging.getLogger(__name__)

_STATE_FILE = "spool.json"
_LOG_DIR = "log"


class BatchLog(Protocol):
    """The storage a spool needs: an append-only log of payloads, consumed from the front."""

    @property
    def start(self) -> int: ...
    @property
    def next_position(self) -> int: ...
    @property
    def pending_bytes(self) -> int: ...
    def append(self, payload: bytes) -> int: ...
    def read(self, position: int) -> bytes: ...
    def __contains__(self, position: int) -> bool: ...
    def commit(self, position: int) -> None: ...
    def close(self) -> None: ...


class MemoryLog:
    """A `BatchLog` in a dict: lost with the process."""

    def __init__(self) -> None:
        self._records: dict[int, bytes] = {}
        self.start = 0
        self.next_position = 0
        self.pending_bytes = 0

    def append(self, payload: bytes) -> int:
        position = self.next_position
        self._records[position] = payload
        self.next_position += 1
        self.pending_bytes += len(payload)
        return position

    def read(self, position: int) -> bytes:
        return self._records[position]

    def __contains__(self, position: int) -> bool:
        return position in self._records

    def commit(self, position: int) -> None:
        end = min(position, self.next_position)
        for done in range(self.start, end):
            self.pending_bytes -= len(self._records.pop(done, b""))
        self.start = max(self.start, end)

    def close(self) -> None:
        self._records.clear()


class Spool:
    """Encoded batches in seq order, each kept until acknowledged or dropped for room."""

    def __init__(self, storage: BatchLog, epoch: str, max_bytes: int) -> None:
        self.epoch = epoch
        self.max_bytes = max_bytes
        self._log = storage
        self._done: set[int] = set()
        """Acknowledged out of order, so not yet committed to the log."""
        self._count = sum(1 for seq in range(storage.start, storage.next_position) if seq in storage)

    @classmethod
    def in_memory(cls, max_bytes: int) -> Spool:
        """A spool that lives and dies with the process, under a fresh random epoch."""
        return cls(MemoryLog(), uuid.uuid4().hex, max_bytes)

    @classmethod
    def on_disk(cls, directory: Path, max_bytes: int) -> Spool:
        """The spool in `directory` (created if new): same epoch, next seq and unacknowledged batches as
        when it was last closed or killed. Every append is fsynced before it returns."""
        directory.mkdir(parents=True, exist_ok=True)
        segment_bytes = max(64 * 1024, max_bytes // 16)
        # The spool drops batches at `max_bytes` of payload; the log's own bound only backstops that.
        settings = SegmentLogSettings(
            max_bytes=2 * max_bytes + segment_bytes, segment_bytes=segment_bytes, fsync=FsyncPolicy.ALWAYS
        )
        storage = SegmentLog(directory / _LOG_DIR, settings)
        _report_recovery(directory, storage)
        return cls(storage, _load_or_create_epoch(directory), max_bytes)

    @property
    def next_seq(self) -> int:
        """The seq the next added batch must carry."""
        return self._log.next_position

    @property
    def pending_batches(self) -> int:
        return self._count

    @property
    def pending_bytes(self) -> int:
        return self._log.pending_bytes

    def add(self, payload: bytes) -> list[bytes]:
        """Store a batch encoded with seq `next_seq`; return the payloads dropped to make room, oldest
        first (the new one itself if it alone exceeds the bound)."""
        if len(payload) > self.max_bytes:
            return [payload]
        dropped = []
        while self._count and self.pending_bytes + len(payload) > self.max_bytes:
            dropped.extend(self._drop_oldest())
        while True:
            try:
                self._log.append(payload)
            except LogFull:
                if not self._count:
                    return [*dropped, payload]
                dropped.extend(self._drop_oldest())
            else:
                self._count += 1
                return dropped

    def is_pending(self, seq: int) -> bool:
        """Whether the batch is still waiting for an acknowledgement."""
        return seq not in self._done and seq in self._log

    def read(self, seq: int) -> bytes | None:
        """The payload of a pending batch; None if it is no longer pending (or was found corrupt, which
        is counted and logged, and the batch forgotten)."""
        if not self.is_pending(seq):
            return None
        try:
            return self._log.read(seq)
        except CorruptRecord as exc:
            log.error("spool batch %d is corrupt on disk and is lost: %s", seq, exc)
            AGENT_LOST_BATCHES.labels(reason="corrupt_spool").inc()
            self.ack(seq)
            return None

    def next_after(self, seq: int) -> int | None:
        """The lowest pending seq above `seq`, if any."""
        candidate = max(seq + 1, self._log.start)
        while candidate < self._log.next_position:
            if self.is_pending(candidate):
                return candidate
            candidate += 1
        return None

    def ack(self, seq: int) -> bool:
        """Forget a batch the server has (or that was given up); False if it was not pending."""
        if not self.is_pending(seq):
            return False
        self._done.add(seq)
        self._count -= 1
        position = self._log.start
        while position < self._log.next_position and (position in self._done or position not in self._log):
            self._done.discard(position)
            position += 1
        self._log.commit(position)
        return True

    def pending(self) -> Iterator[tuple[int, bytes]]:
        """Every pending (seq, payload), oldest first."""
        seq = self.next_after(self._log.start - 1)
        while seq is not None:
            payload = self.read(seq)
            if payload is not None:
                yield seq, payload
            seq = self.next_after(seq)

    def close(self) -> None:
        """Release the storage; an on-disk spool keeps every pending batch for the next start."""
        self._log.close()

    def _drop_oldest(self) -> list[bytes]:
        seq = self.next_after(self._log.start - 1)
        if seq is None:
            return []
        payload = self.read(seq)
        self.ack(seq)
        return [] if payload is None else [payload]


@dataclass(frozen=True, slots=True)
class DroppedBatches:
    """What dropping batches for room cost, as it must be reported."""

    overflow: LossReport
    """SPOOL_OVERFLOW: `count` is the dropped flow records, with their bytes and packets (both ways)."""
    carried: tuple[LossReport, ...]
    """Loss reports the dropped batches were carrying, which must not vanish with them."""

    def reports(self) -> list[LossReport]:
        """Everything to send in-band in place of the dropped batches."""
        return merge_losses([self.overflow, *self.carried] if self.overflow.count else self.carried)


def describe_dropped(dropped: Iterable[bytes]) -> DroppedBatches:
    """Decode dropped batches to account for them."""
    count = traffic_bytes = packets = 0
    carried: list[LossReport] = []
    for payload in dropped:
        batch = codec.decode_batch(payload, max_records=2**31)
        for record in batch.records:
            count += 1
            traffic_bytes += record.orig_bytes + record.reply_bytes
            packets += record.orig_packets + record.reply_packets
        carried.extend(batch.losses)
    overflow = LossReport(LossReason.SPOOL_OVERFLOW, count=count, bytes=traffic_bytes, packets=packets)
    return DroppedBatches(overflow, tuple(carried))


def merge_losses(losses: Iterable[LossReport]) -> list[LossReport]:
    """One report per reason, summing counts, bytes and packets; reasons in first-seen order."""
    merged: dict[LossReason, LossReport] = {}
    for loss in losses:
        seen = merged.get(loss.reason)
        merged[loss.reason] = (
            loss
            if seen is None
            else LossReport(
                loss.reason, seen.count + loss.count, seen.bytes + loss.bytes, seen.packets + loss.packets
            )
        )
    return list(merged.values())


def _load_or_create_epoch(directory: Path) -> str:
    path = directory / _STATE_FILE
    try:
        epoch = json.loads(path.read_text())["epoch"]
        if isinstance(epoch, str) and epoch:
            return epoch
        log.warning("spool state %s has no usable epoch; starting a new one", path)
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("spool state %s is unreadable (%s); starting a new epoch", path, exc)
    epoch = uuid.uuid4().hex
    temporary = path.with_suffix(".tmp")
    with temporary.open("w") as out:
        json.dump({"epoch": epoch}, out)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)
    return epoch


def _report_recovery(directory: Path, storage: SegmentLog) -> None:
    found = storage.recovery
    AGENT_SPOOL_RECOVERED.labels(what="batches").inc(found.records)
    AGENT_SPOOL_RECOVERED.labels(what="torn_bytes").inc(found.torn_bytes)
    AGENT_SPOOL_RECOVERED.labels(what="lost_batches").inc(found.lost_records)
    if found.lost_records:
        AGENT_LOST_BATCHES.labels(reason="corrupt_spool").inc(found.lost_records)
    if found.records or found.torn_bytes or found.lost_records:
        log.info(
            "spool %s: %d unacknowledged batches to resend, %d torn bytes cut off, %d batches lost to "
            "corruption",
            directory,
            found.records,
            found.torn_bytes,
            found.lost_records,
        )
