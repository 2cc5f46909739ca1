"""The cloud range table attribution asks, and the holder that swaps it when a refresh succeeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kubenetmon.records import Endpoint, EndpointKind
from kubenetmon.server.cloud.providers import Provider, RangeEntry, merge_google
from kubenetmon.server.cloud.ranges import PrefixTable


class CloudRangeTable:
    """An immutable longest-prefix table from address to a shared CLOUD `Endpoint`.

    There is one Endpoint per distinct (cloud, region, service), so millions of rows share a few
    thousand objects.
    """

    __slots__ = ("_table", "prefix_counts")

    def __init__(self, entries: Mapping[Provider, Sequence[RangeEntry]]) -> None:
        # Precedence for a prefix two files list: AWS, then Google (cloud.json before goog.json), then Azure.
        groups = (
            entries.get(Provider.AWS, ()),
            merge_google(list(entries.get(Provider.GCP, ())), list(entries.get(Provider.GOOGLE, ()))),
            entries.get(Provider.AZURE, ()),
        )
        endpoints: dict[tuple[str, str, str], Endpoint] = {}
        chosen: dict[str, Endpoint] = {}
        for group in groups:
            for entry in group:
                if entry.prefix in chosen:
                    continue
                key = (entry.cloud, entry.region, entry.service)
                endpoint = endpoints.get(key)
                if endpoint is None:
                    endpoint = endpoints[key] = Endpoint(
                        EndpointKind.CLOUD,
                        cloud=entry.cloud,
                        region=entry.region,
                        cloud_service=entry.service,
                    )
                chosen[entry.prefix] = endpoint
        self.prefix_counts: dict[Provider, int] = {p: len(v) for p, v in entries.items()}
        self._table: PrefixTable[Endpoint] = PrefixTable(chosen.items())

    def lookup(self, ip: str) -> Endpoint | None:
        """The range `ip` falls in, or None."""
        return self._table.lookup(ip)

    def __len__(self) -> int:
        return len(self._table)


class CloudRanges:
    """The current `CloudRangeTable`, with a bounded per-address memo in front of it.

    Remote addresses repeat heavily (the same object-store and API endpoints over and over), so a
    dictionary hit is worth having before the bisection. The memo is dropped on every swap, and cleared
    whole when it reaches `memo_size`, which bounds memory without per-entry bookkeeping.
    """

    __slots__ = ("_memo", "_memo_size", "_table")

    def __init__(self, table: CloudRangeTable, memo_size: int = 65536) -> None:
        self._table = table
        self._memo: dict[str, Endpoint | None] = {}
        self._memo_size = memo_size

    @property
    def table(self) -> CloudRangeTable:
        """The table lookups currently use."""
        return self._table

    def swap(self, table: CloudRangeTable) -> None:
        """Use `table` from now on (one reference assignment; readers never see a half-built table)."""
        self._table = table
        self._memo = {}

    def cloud_range(self, ip: str) -> Endpoint | None:
        """The longest-prefix match of `ip` in the loaded cloud ranges (cloud, region, service)."""
        memo = self._memo
        try:
            return memo[ip]
        except KeyError:
            pass
        if len(memo) >= self._memo_size:
            memo.clear()
        found = memo[ip] = self._table.lookup(ip)
        return found
