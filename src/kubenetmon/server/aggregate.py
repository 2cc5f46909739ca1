"""Pre-aggregation: sum AttributedRows per (bucket, row key) before they reach the store.

The key is `row[:-2]`, everything but bytes and packets, so it already starts with the bucket. Summing
here gives the store one row per key, which is what the table would end up with after merges anyway, at
a fraction of the insert cost.

Pure and single-threaded: no clock of its own (the caller passes `now`), no I/O. Memory is bounded by
`FlushPolicy.max_keys`; `add` stops at the bound and says how far it got, so a caller that streams rows
in drains and continues instead of growing.

How the server uses it: the flusher has already summed records per flow (`server.flows`); for each
insert part it attributes that part's flows and sums their rows in a fresh aggregator sized to hold
them all, then inserts `drain()`. `due()` and the sources serve callers that stream rows in over time
(benchmarks/store.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from operator import itemgetter

from kubenetmon.records import AttributedRow
from kubenetmon.store.columns import ColumnBatch, RowKey, build_columns

_KEY, _BYTES, _PACKETS = itemgetter(slice(0, -2)), itemgetter(-2), itemgetter(-1)


@dataclass(frozen=True, slots=True)
class FlushPolicy:
    """When the pending aggregate becomes one insert."""

    max_keys: int = 200_000
    """Distinct keys held at most: ~330 bytes each (benchmarks/store.py), about 66 MB, plus as much again
    for the drained column batch while it is being inserted. 200k keys insert in about a second."""
    max_age_seconds: float = 10.0
    """Oldest pending row's age at which to flush: bounds how stale the table is and what a crash loses."""

    def __post_init__(self) -> None:
        if self.max_keys < 1 or self.max_age_seconds <= 0:
            raise ValueError(f"flush policy needs max_keys >= 1 and max_age_seconds > 0, got {self}")


class Aggregator:
    """Sums rows per key; `drain()` hands the sums over as table columns and starts empty again."""

    def __init__(self, policy: FlushPolicy) -> None:
        self.policy = policy
        self._index: dict[RowKey, int] = {}
        self._bytes: list[int] = []
        self._packets: list[int] = []
        self._sources: set[str] = set()
        self._rows_in = 0
        self._opened_at: float | None = None

    def __len__(self) -> int:
        """Distinct keys pending."""
        return len(self._bytes)

    @property
    def full(self) -> bool:
        """No new key fits: the caller must `drain()` before adding more."""
        return len(self._bytes) >= self.policy.max_keys

    @property
    def rows_in(self) -> int:
        """Rows added since the last drain (before summing)."""
        return self._rows_in

    def due(self, now: float) -> bool:
        """Whether a flush is due at monotonic time `now`: full, or the oldest pending key too old."""
        if self.full:
            return True
        return self._opened_at is not None and now - self._opened_at >= self.policy.max_age_seconds

    def add(self, rows: Sequence[AttributedRow], source: str, now: float) -> int:
        """Sum `rows` in; returns how many were taken (all of them unless the aggregate became full).

        `source` names where the rows came from (an agent batch id); the drained batch lists its sources.
        Rows after the returned count were not taken: drain, then add `rows[taken:]` again.
        """
        if not self._index and len(rows) <= self.policy.max_keys and self._distinct_into_empty(rows):
            taken = len(rows)
        else:
            taken = self._one_by_one(rows)
        if taken:
            self._sources.add(source)
            self._rows_in += taken
            if self._opened_at is None:
                self._opened_at = now
        return taken

    def _one_by_one(self, rows: Sequence[AttributedRow]) -> int:
        index, byte_sums, packet_sums = self._index, self._bytes, self._packets
        limit = self.policy.max_keys
        taken = 0
        for row in rows:
            key = row[:-2]
            slot = index.get(key)
            if slot is None:
                slot = len(byte_sums)
                if slot >= limit:
                    break
                index[key] = slot
                byte_sums.append(row[-2])
                packet_sums.append(row[-1])
            else:
                byte_sums[slot] += row[-2]
                packet_sums[slot] += row[-1]
            taken += 1
        return taken

    def _distinct_into_empty(self, rows: Sequence[AttributedRow]) -> bool:
        """Take `rows` into the empty aggregator with C-level passes if no two share a key (rows made
        from distinct flows hardly ever do); False, having taken nothing, if some do."""
        keys = list(map(_KEY, rows))
        index = dict(zip(keys, count()))
        if len(index) < len(keys):
            return False
        self._index = index
        self._bytes = list(map(_BYTES, rows))
        self._packets = list(map(_PACKETS, rows))
        return True

    def drain(self) -> ColumnBatch:
        """The pending sums as one column batch (possibly empty); the aggregator is empty afterwards."""
        batch = ColumnBatch(
            build_columns(list(self._index), self._bytes, self._packets),
            len(self._bytes),
            tuple(sorted(self._sources)),
        )
        self._index = {}
        self._bytes = []
        self._packets = []
        self._sources = set()
        self._rows_in = 0
        self._opened_at = None
        return batch
