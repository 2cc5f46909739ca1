"""The in-namespace half of benchmarks.agent_interval, run in a fresh interpreter for a clean RSS."""

from __future__ import annotations

import itertools
import json
import resource
import statistics
import time
import tracemalloc
from pathlib import Path

from kubenetmon.agent.memory import return_large_blocks_to_the_os
from kubenetmon.agent.tracker import DeltaTracker
from kubenetmon.conntrack import netlink, netns, parse
from kubenetmon.conntrack.dump import TableReader


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def timed(call) -> tuple[float, float]:
    cpu, wall = cpu_seconds(), time.perf_counter()
    call()
    return cpu_seconds() - cpu, time.perf_counter() - wall


def main(namespace: str, rounds: int) -> None:
    return_large_blocks_to_the_os()  # as the agent does
    reader = TableReader(netns.run_in(namespace, netlink.open_socket))
    sum(1 for _ in reader.sightings())  # warm up: buffers, imports, code paths
    rss_before = rss_bytes()
    tracker = DeltaTracker(120.0)
    entries = tracker.observe_dump(reader.sightings(), time.monotonic())
    tracker.end_baseline()
    tracker.close_interval("bench", 0.0, 5.0)
    rss_after = rss_bytes()

    def dump_and_parse() -> None:
        for _ in reader.sightings():
            pass

    def interval() -> None:
        tracker.observe_dump(reader.sightings(), time.monotonic())
        tracker.expire(time.monotonic())
        tracker.close_interval("bench", 0.0, 5.0)

    dumps = [timed(dump_and_parse) for _ in range(rounds)]
    intervals = [timed(interval) for _ in range(rounds)]
    rss_steady = rss_bytes()
    messages = [bytes(m) for _, _, m in itertools.islice(reader.sightings(), 20000)]

    def decode_all() -> None:
        for message in messages:
            parse.decode(memoryview(message), 0, len(message))

    decode_cpu = timed(decode_all)[0]
    tracemalloc.start()
    traced = DeltaTracker(120.0)
    traced.observe_dump(reader.sightings(), time.monotonic())
    traced_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    reader.close()
    print(
        json.dumps(
            {
                "entries": entries,
                "dump_cpu": statistics.median(c for c, _ in dumps),
                "dump_wall": statistics.median(w for _, w in dumps),
                "interval_cpu": statistics.median(c for c, _ in intervals),
                "interval_wall": statistics.median(w for _, w in intervals),
                "rss_per_flow": (rss_after - rss_before) / entries,
                "traced_per_flow": traced_bytes / entries,
                "rss_steady_per_flow": (rss_steady - rss_before) / entries,
                "decode_us": decode_cpu / len(messages) * 1e6,
            }
        )
    )
