"""Dispatcher: `python -m benchmarks NAME [ARGS...]` runs benchmarks.<module>.main(ARGS).

Add a benchmark by adding one line to BENCHMARKS.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS: dict[str, tuple[str, str]] = {
    "agent": (
        "benchmarks.agent_interval",
        "conntrack -L vs our dump+parse vs a full agent interval; RSS/flow",
    ),
    "attribution": (
        "benchmarks.attribution",
        "1M records vs 5k nodes / 50k pods / 5k services + cloud ranges, one core: records/s, RSS",
    ),
    "cloud-lookup": ("benchmarks.cloud_lookup", "cloud range lookups: bisect table vs per-length dicts"),
    "inventory": ("benchmarks.inventory", "50k pods through the informer's parse path: sync time, memory"),
    "inventory-apiserver": (
        "benchmarks.inventory_apiserver",
        "50k pods in a real kube-apiserver: sync time vs a plain list, memory",
    ),
    "server-e2e": (
        "benchmarks.server_e2e",
        "one server process on one core, agents over mTLS -> stored rows: records/s, ack latency, profile",
    ),
    "store": (
        "benchmarks.store",
        "1M attributed rows: aggregation, encoding, insert into chDB and via HTTP; rows/s and RSS",
    ),
    "transport-codec": ("benchmarks.transport_codec", "batch encode/decode per record vs JSON lines"),
    "transport-server": (
        "benchmarks.transport_server",
        "one server core receiving mTLS batches: records/s, ack latency",
    ),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print("usage: python -m benchmarks NAME [ARGS...]\n\nbenchmarks:")
        for name, (_, text) in sorted(BENCHMARKS.items()):
            print(f"  {name:12} {text}")
        return 0 if not argv else 2
    module = importlib.import_module(BENCHMARKS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
