"""Cloud range lookup: the bisection table against the per-prefix-length dictionary alternative.

Run: python -m benchmarks cloud-lookup

Both answer longest-prefix matches over the bundled snapshot's IPv4 prefixes; the baseline checks one
dictionary per prefix length, longest first. Prints ns per lookup for hits and for random addresses
(mostly misses), and the ratio; results are checked to agree first.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import socket
import time

from kubenetmon.server.cloud.ranges import PrefixTable, parse_prefix
from kubenetmon.server.cloud.snapshot import startup_entries


class PerLengthDicts:
    """The alternative design: {prefix length: {network int: value}}, probed from longest to shortest."""

    def __init__(self, prefixes: list[tuple[str, object]]) -> None:
        by_length: dict[int, dict[int, object]] = {}
        for text, value in prefixes:
            _, first, last = parse_prefix(text)
            length = 32 - (last - first).bit_length()
            by_length.setdefault(length, {})[first] = value
        self.masks = [
            ((0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF, by_length[n]) for n in sorted(by_length, reverse=True)
        ]

    def lookup(self, ip: str) -> object | None:
        address = int.from_bytes(socket.inet_pton(socket.AF_INET, ip))  # the same parse the table uses
        for mask, table in self.masks:
            found = table.get(address & mask)
            if found is not None:
                return found
        return None


def ns_per_lookup(lookup: object, addresses: list[str], rounds: int = 20) -> float:
    began = time.process_time()
    for _ in range(rounds):
        for ip in addresses:
            lookup(ip)  # type: ignore[operator]
    return (time.process_time() - began) / (rounds * len(addresses)) * 1e9


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m benchmarks cloud-lookup", description=__doc__).parse_args(argv)
    entries = startup_entries(None)
    # Both sides map the same distinct IPv4 prefixes to themselves, so their answers must be identical.
    chosen = {e.prefix: e.prefix for group in entries.values() for e in group if ":" not in e.prefix}
    table = PrefixTable(chosen.items())
    baseline = PerLengthDicts(list(chosen.items()))
    rng = random.Random(3)
    hits = [str(ipaddress.ip_network(p).network_address + 1) for p in rng.sample(list(chosen), 5000)]
    randoms = [str(ipaddress.IPv4Address(rng.randrange(1 << 32))) for _ in range(5000)]
    for ip in hits + randoms:
        assert table.lookup(ip) == baseline.lookup(ip), ip
    for label, addresses in (("hits", hits), ("random", randoms)):
        ours, theirs = ns_per_lookup(table.lookup, addresses), ns_per_lookup(baseline.lookup, addresses)
        print(
            f"{label:7s} bisect {ours:6.0f} ns   per-length dicts {theirs:6.0f} ns   "
            f"ratio {theirs / ours:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
