"""AttributedRow keys and sums -> the table's columns, in `schema.COLUMN_NAMES` order.

This is the only place that knows how an `AttributedRow` lands in `network_flows_0`. It works on whole
columns: one C-level transpose of the row keys, then per-column maps over small caches (one entry per
distinct endpoint, IP address, flag set or bucket), so the per-row Python work stays a few list builds.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

from kubenetmon.records import AttributedRow, Endpoint
from kubenetmon.store.schema import COLUMN_NAMES

RowKey = tuple[Any, ...]
"""`row[:-2]`: every AttributedRow field except the summed bytes and packets."""

_ENDPOINT_FIELDS = (
    "cloud",
    "region",
    "cluster",
    "cell",
    "zone",
    "node",
    "instance_id",
    "namespace",
    "pod",
    "app",
    "workload",
    "workload_kind",
    "cloud_service",
    "kind",
)
_SECONDS_PER_DAY = 86400
_KEY_WIDTH = len(AttributedRow._fields) - 2
_COUNTERS = (COLUMN_NAMES.index("bytes"), COLUMN_NAMES.index("packets"))


@dataclass(frozen=True, slots=True)
class ColumnBatch:
    """Rows ready for one insert: one sequence per table column, in `schema.COLUMN_NAMES` order."""

    columns: tuple[Sequence[Any], ...]
    rows: int
    sources: tuple[str, ...] = field(default=())
    """What the rows were made from (agent batch ids); part of the deduplication token."""

    @classmethod
    def from_rows(cls, rows: Iterable[AttributedRow], sources: Sequence[str] = ()) -> ColumnBatch:
        """Columns for rows as they are, one table row each (no summing; the table sums on merge)."""
        listed = list(rows)
        keys = [row[:-2] for row in listed]
        return cls(
            build_columns(keys, [row.bytes for row in listed], [row.packets for row in listed]),
            len(listed),
            tuple(sorted(set(sources))),
        )

    def token(self) -> str:
        """A deterministic `insert_deduplication_token` for exactly this content.

        Built from the sources and the summed counters, so a retry of this batch carries the same token
        and a different batch (even from the same sources, e.g. split by a size flush) does not.
        """
        digest = hashlib.blake2b(digest_size=20)
        digest.update("\x1f".join(self.sources).encode())
        digest.update(self.rows.to_bytes(8, "little"))
        for index in _COUNTERS if self.rows else ():
            digest.update(array("Q", self.columns[index]).tobytes())
        return digest.hexdigest()


def build_columns(
    keys: Sequence[RowKey], byte_sums: Sequence[int], packet_sums: Sequence[int]
) -> tuple[Sequence[Any], ...]:
    """The table's columns for `keys[i]` with counters `byte_sums[i]`, `packet_sums[i]`."""
    # One map(itemgetter) per field: zip(*keys) would allocate an iterator per key, and the cyclic GC
    # walking those makes it ~7x slower at 250k keys.
    (
        buckets,
        bucket_seconds,
        environment,
        proto,
        direction,
        local,
        remote,
        local_ip,
        local_port,
        remote_ip,
        remote_port,
        local_service,
        remote_service,
        connection_class,
        billing_class,
        billing_reason,
        flags,
        observation_point,
        count_once,
    ) = (list(map(itemgetter(field), keys)) for field in range(_KEY_WIDTH))
    lc, lr, lcl, lcell, lz, ln, li, lns, lpod, lapp, lwl, lwk, _, lkind = _endpoint_columns(local)
    rc, rr, rcl, rcell, rz, rn, ri, rns, rpod, rapp, rwl, rwk, rsvc, rkind = _endpoint_columns(remote)
    plain = _Plain()
    connection_class, billing_class, billing_reason, lkind, rkind = (
        list(map(plain.__getitem__, column))
        for column in (connection_class, billing_class, billing_reason, lkind, rkind)
    )
    return (
        _mapped(buckets, lambda start: start // _SECONDS_PER_DAY),
        buckets,
        bucket_seconds,
        environment,
        proto,
        connection_class,
        _mapped(flags, lambda names: dict.fromkeys(names, True)),
        direction,
        lc,
        lr,
        lcl,
        lcell,
        lz,
        ln,
        li,
        lns,
        lpod,
        _mapped(local_ip, _ipv4),
        local_port,
        lapp,
        rc,
        rr,
        rcl,
        rcell,
        rz,
        rn,
        ri,
        rns,
        rpod,
        _mapped(remote_ip, _ipv4),
        remote_port,
        rapp,
        rsvc,
        byte_sums,
        packet_sums,
        lkind,
        lwl,
        lwk,
        local_service,
        _mapped(local_ip, _ipv6),
        rkind,
        rwl,
        rwk,
        remote_service,
        _mapped(remote_ip, _ipv6),
        billing_class,
        billing_reason,
        observation_point,
        count_once,
    )


class _Plain(dict[str, str]):
    """A text -> the same text as a plain `str`, computed once per distinct value. Enum members (StrEnum)
    are `str` subclasses, which the Rust Native codec encodes about 15 times slower than plain `str`
    (benchmarks/server_e2e.py): mapping them here costs less than that."""

    def __missing__(self, text: str) -> str:
        plain = self[text] = str.__str__(text)
        return plain


def _mapped(values: Sequence[Any], convert: Any) -> list[Any]:
    """`convert` applied per value, computed once per distinct value (values repeat a lot)."""
    cache = {value: convert(value) for value in set(values)}
    return list(map(cache.__getitem__, values))


def _endpoint_columns(endpoints: Sequence[Endpoint]) -> list[list[Any]]:
    return [list(map(attrgetter(name), endpoints)) for name in _ENDPOINT_FIELDS]


def _ipv4(ip: str) -> str:
    """The IPv4 column: the address of an IPv4 flow, 0.0.0.0 for an IPv6 flow."""
    return "0.0.0.0" if ":" in ip else ip


def _ipv6(ip: str) -> str:
    """The IPv6 column: an IPv6 flow's address, or an IPv4 flow's address IPv4-mapped (::ffff:a.b.c.d)."""
    return ip if ":" in ip else "::ffff:" + ip
