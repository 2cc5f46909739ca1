"""Summing records per flow before attribution: each flow is attributed once per flush, not once per poll.

Agents report every active flow every interval, and a flow's bytes all land in one row pair per bucket,
so the records of one flow (same node, protocol, family, original and reply tuples) whose starts fall in
the same bucket are summed first. A flow is then one `FlowRecord` with the summed counters, the earliest
start (the time time-aware lookups answer for) and the latest end; attributing it yields exactly the
rows, with exactly the sums, that attributing each record and summing their rows would, because a row's
key depends on the record's tuples and bucket, never on its counters.

Records without bytes or packets are not summed (they produce no rows); they are counted in `empty`.

Works on validated wire columns (`codec.FlowColumns`), so no per-record `FlowRecord` is ever built.
Bounded: `full` says when the table holds `max_flows` flows; the caller flushes then.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import repeat
from typing import Any

from kubenetmon.records import FlowRecord
from kubenetmon.transport.codec import FlowColumns

_NS = 1_000_000_000
_new_record = tuple.__new__
FlowKey = tuple[Any, ...]
"""(node, proto, family, orig_src, orig_dst, orig_sport, orig_dport, reply_src, reply_dst, reply_sport,
reply_dport, bucket number): `FlowRecord[:11]` plus the bucket of its start."""


class FlowTable:
    """Summed flows, in first-seen order (so the same records always drain in the same order)."""

    def __init__(self, bucket_seconds: int, max_flows: int) -> None:
        if bucket_seconds < 1 or max_flows < 1:
            raise ValueError(
                f"a flow table needs bucket_seconds and max_flows >= 1, got {bucket_seconds}, {max_flows}"
            )
        self.bucket_seconds = bucket_seconds
        self.max_flows = max_flows
        self._index: dict[FlowKey, int] = {}
        # Per flow, by slot: parallel lists cost less memory than a list per flow.
        self._sums: tuple[list[int], ...] = ([], [], [], [], [], [], [])
        self._texts: dict[bytes, str] = {}
        self.records = 0
        """Records added since the last drain, empty ones included."""
        self.empty = 0
        """Records without bytes or packets added since the last drain (they make no rows)."""

    def __len__(self) -> int:
        """Distinct flows held."""
        return len(self._index)

    @property
    def full(self) -> bool:
        """Whether the table holds `max_flows` flows: drain before adding more."""
        return len(self._index) >= self.max_flows

    def room_for(self, columns: FlowColumns) -> bool:
        """Whether every record of `columns` surely fits (each could be a new flow)."""
        return not self._index or len(self._index) + columns.count <= self.max_flows

    def add(self, columns: FlowColumns) -> None:
        """Sum one batch's records in. Takes them all: check `room_for` first to stay within the bound."""
        orig_src, orig_dst, reply_src, reply_dst = columns.address_texts(self._texts)
        starts = columns.start_unix_nano
        # The bucket exactly as attribution computes it from the record's start in float seconds.
        bucket = self.bucket_seconds
        buckets = {start: int(start / _NS // bucket) for start in set(starts)}
        keys = zip(
            repeat(columns.node),
            columns.proto,
            columns.family,
            orig_src,
            orig_dst,
            columns.orig_sport,
            columns.orig_dport,
            reply_src,
            reply_dst,
            columns.reply_sport,
            columns.reply_dport,
            map(buckets.__getitem__, starts),
        )
        index = self._index
        (
            orig_bytes_sums,
            orig_packets_sums,
            reply_bytes_sums,
            reply_packets_sums,
            starts_min,
            ends_max,
            counts,
        ) = self._sums
        empty = 0
        for key, orig_bytes, orig_packets, reply_bytes, reply_packets, start, end in zip(
            keys,
            columns.orig_bytes,
            columns.orig_packets,
            columns.reply_bytes,
            columns.reply_packets,
            starts,
            columns.end_unix_nano,
            strict=True,
        ):
            if not (orig_bytes or orig_packets or reply_bytes or reply_packets):
                empty += 1
                continue
            slot = index.get(key)
            if slot is None:
                index[key] = len(counts)
                orig_bytes_sums.append(orig_bytes)
                orig_packets_sums.append(orig_packets)
                reply_bytes_sums.append(reply_bytes)
                reply_packets_sums.append(reply_packets)
                starts_min.append(start)
                ends_max.append(end)
                counts.append(1)
                continue
            orig_bytes_sums[slot] += orig_bytes
            orig_packets_sums[slot] += orig_packets
            reply_bytes_sums[slot] += reply_bytes
            reply_packets_sums[slot] += reply_packets
            if start < starts_min[slot]:  # noqa: PLR1730 - min() is slower, and this is per record
                starts_min[slot] = start
            if end > ends_max[slot]:  # noqa: PLR1730
                ends_max[slot] = end
            counts[slot] += 1
        self.records += columns.count
        self.empty += empty

    def drain(self) -> Iterator[tuple[FlowRecord, int]]:
        """Each flow as one record (summed counters, earliest start, latest end) and how many records it
        sums, in first-seen order. The table is empty afterwards; the iterator owns the flows."""
        index, sums = self._index, self._sums
        self._index, self._sums, self._texts = {}, ([], [], [], [], [], [], []), {}
        self.records = self.empty = 0
        return _summed(index, sums)


def _summed(index: dict[FlowKey, int], sums: tuple[list[int], ...]) -> Iterator[tuple[FlowRecord, int]]:
    for key, orig_bytes, orig_packets, reply_bytes, reply_packets, start, end, count in zip(
        index, *sums, strict=True
    ):
        fields = (*key[:11], orig_bytes, orig_packets, reply_bytes, reply_packets, start / _NS, end / _NS)
        yield _new_record(FlowRecord, fields), count
