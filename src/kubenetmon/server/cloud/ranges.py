"""Longest-prefix match for IPv4 and IPv6, as a sorted list of disjoint intervals searched by bisection.

Nested prefixes are flattened once, at build time, into intervals that each carry the value of the most
specific prefix covering them; a lookup is then one address parse and one `bisect` in C. Measured on the
bundled snapshot (74k IPv4 intervals) this answers in about 0.8 us per address including the parse,
against 1.4-2.3 us for the per-prefix-length dictionary alternative (benchmarks/cloud_lookup.py).
"""

from __future__ import annotations

import socket
from bisect import bisect_right
from collections.abc import Iterable
from typing import Generic, TypeVar

V = TypeVar("V")

_inet_pton = socket.inet_pton
_from_bytes = int.from_bytes
_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6


def parse_prefix(text: str) -> tuple[int, int, int]:
    """(IP version, first address, last address) of a prefix such as '10.0.0.0/8' or '2001:db8::/32'.

    Host bits are ignored ('10.1.2.3/8' is 10.0.0.0/8); a bare address is a /32 or /128. Raises
    ValueError for anything else. Much faster than `ipaddress.ip_network`, which matters for the
    100,000-odd prefixes of a full refresh.
    """
    address, slash, length_text = text.partition("/")
    family, bits, version = (_AF_INET6, 128, 6) if ":" in address else (_AF_INET, 32, 4)
    try:
        value = _from_bytes(_inet_pton(family, address))
    except OSError:
        raise ValueError(f"{text!r} is not an IP prefix") from None
    if not slash:
        return version, value, value
    if not (length_text.isdigit() and int(length_text) <= bits):
        raise ValueError(f"{text!r} has no valid prefix length (0-{bits})")
    host = (1 << (bits - int(length_text))) - 1
    first = value & ~host
    return version, first, first | host


class _Intervals(Generic[V]):
    """Disjoint intervals of one address family: `starts[i]` begins the run that has value `values[i]`."""

    __slots__ = ("starts", "values")

    def __init__(self, prefixes: Iterable[tuple[int, int, V]]) -> None:
        self.starts: list[int] = []
        self.values: list[V | None] = []
        open_prefixes: list[tuple[int, V]] = []  # (last address, value), outermost first
        # Outer prefixes sort before the prefixes nested in them (same start, larger end first).
        for first, last, value in sorted(prefixes, key=lambda p: (p[0], -p[1])):
            while open_prefixes and open_prefixes[-1][0] < first:
                self._close(open_prefixes)
            self._emit(first, value)
            open_prefixes.append((last, value))
        while open_prefixes:
            self._close(open_prefixes)

    def _close(self, open_prefixes: list[tuple[int, V]]) -> None:
        closed_last = open_prefixes.pop()[0]
        resumed = open_prefixes[-1][1] if open_prefixes and open_prefixes[-1][0] > closed_last else None
        self._emit(closed_last + 1, resumed)

    def _emit(self, start: int, value: V | None) -> None:
        if self.starts and self.starts[-1] == start:
            self.values[-1] = value
        elif not self.values or self.values[-1] is not value:
            self.starts.append(start)
            self.values.append(value)

    def find(self, address: int) -> V | None:
        index = bisect_right(self.starts, address) - 1
        return self.values[index] if index >= 0 else None


class PrefixTable(Generic[V]):
    """Maps IPv4 and IPv6 prefixes to values; `lookup` returns the value of the longest matching prefix.

    Each prefix must appear once (callers resolve duplicates by their own rules before building);
    raises ValueError for a malformed prefix.
    """

    __slots__ = ("_v4", "_v6", "prefix_count")

    def __init__(self, prefixes: Iterable[tuple[str, V]]) -> None:
        v4: list[tuple[int, int, V]] = []
        v6: list[tuple[int, int, V]] = []
        for text, value in prefixes:
            version, first, last = parse_prefix(text)
            (v4 if version == 4 else v6).append((first, last, value))
        self.prefix_count = len(v4) + len(v6)
        self._v4 = _Intervals(v4)
        self._v6 = _Intervals(v6)

    def lookup(self, ip: str) -> V | None:
        """The value of the most specific prefix containing `ip`, or None (also for a malformed address)."""
        try:
            if ":" in ip:
                return self._v6.find(_from_bytes(_inet_pton(_AF_INET6, ip)))
            return self._v4.find(_from_bytes(_inet_pton(_AF_INET, ip)))
        except OSError:
            return None

    def __len__(self) -> int:
        return self.prefix_count
