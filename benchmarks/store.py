"""Store throughput: attributed rows -> aggregation -> Native encoding -> insert, embedded and over HTTP.

    python -m benchmarks store [--rows 1000000] [--polls 4] [--repeat 3]

Each scenario runs in a fresh child process (the engine allows one directory per process, and peak RSS
is then the scenario's own). Rows are generated before timing starts, `--polls` agent polls per
connection per minute bucket so aggregation has something to sum. Reported per scenario (median of
`--repeat` runs): rows/s of each stage and end to end, and peak RSS. Baselines measured in the same run:
the engine alone (INSERT SELECT from a Memory table, no Python), and the Python codec next to the Rust one.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.rustcodec import _make_native_transform

from kubenetmon.server.aggregate import Aggregator, FlushPolicy
from kubenetmon.store.dsn import parse_dsn
from kubenetmon.store.schema import COLUMN_NAMES, COLUMN_TYPES
from kubenetmon.store.sink import ClickHouseStore
from tests.clickhouse_http.process import EndpointProcess
from tests.store.rowgen import generate

AGENT_BATCH = 5_000
"""Rows per `Aggregator.add` call: about one agent batch."""


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _median_time(
    repeat: int, run: Callable[[], Any], setup: Callable[[], Any] = lambda: None
) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds of this process, all threads) of `repeat` runs after a warm-up.

    CPU time is what to compare when the machine is shared: it does not grow when other processes take
    the cores, while wall time does.
    """
    setup()
    run()  # warm-up: first calls pay one-time costs (the Rust codec's set-up, engine caches)
    walls, cpus = [], []
    for _ in range(repeat):
        setup()
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def child(target: str, rows_wanted: int, polls: int, repeat: int, url: str) -> dict[str, Any]:
    """One scenario in this process; returns its measurements."""
    start = int(time.time()) // 60 * 60 - 600
    rows = generate(seed=7, count=rows_wanted, start=start, polls=polls)
    rss_rows = _peak_rss_mib()
    slices = [rows[i : i + AGENT_BATCH] for i in range(0, len(rows), AGENT_BATCH)]

    def pump(flush: Callable[[Any], None]) -> None:
        """What the server's flusher does: add agent-sized slices, flush whenever full, flush the rest."""
        aggregator = Aggregator(FlushPolicy())
        for number, rows_slice in enumerate(slices):
            taken = 0
            while taken < len(rows_slice):
                taken += aggregator.add(rows_slice[taken:], f"agent/{number}", now=0.0)
                if aggregator.full:
                    flush(aggregator.drain())
        flush(aggregator.drain())

    def aggregate() -> list[Any]:
        batches: list[Any] = []
        pump(batches.append)
        return batches

    result: dict[str, Any] = {"rows": len(rows), "rss_rows_mib": rss_rows}
    with tempfile.TemporaryDirectory() as scratch:
        dsn = f"chdb://{scratch}/engine" if target == "embedded" else f"{url}/bench{int(time.time())}"
        store = ClickHouseStore(parse_dsn(dsn))
        table = store.settings.name.qualified
        store.ensure_schema()

        def truncate() -> None:
            store.command(f"TRUNCATE TABLE {table}")

        result["end_to_end_s"] = _median_time(
            repeat, lambda: pump(lambda b: store.insert(b, b.token())), truncate
        )
        # Peak RSS so far is the server-shaped path: input rows, the aggregate, one batch in flight, engine.
        result["peak_rss_e2e_mib"] = _peak_rss_mib()
        stored = store.query(f"SELECT sum(bytes) FROM {table}").rows[0][0]
        result["sums_exact"] = stored == sum(row.bytes for row in rows)
        result.update(_stages(store, slices, aggregate, repeat, truncate, target))
        store.close()
    result["peak_rss_mib"] = _peak_rss_mib()
    return result


def _stages(
    store: ClickHouseStore,
    slices: list[Any],
    aggregate: Callable[[], list[Any]],
    repeat: int,
    truncate: Callable[[], Any],
    target: str,
) -> dict[str, Any]:
    """Each stage alone, on the same rows, with the baselines."""
    result: dict[str, Any] = {"aggregate_s": _median_time(repeat, aggregate)}
    batches = aggregate()
    tracemalloc.start()  # RSS cannot tell: the freed batches above leave arenas the aggregate reuses
    held = Aggregator(FlushPolicy(max_keys=10**9))
    for number, rows_slice in enumerate(slices):
        held.add(rows_slice, f"agent/{number}", now=0.0)
    result["aggregate_bytes_per_key"] = tracemalloc.get_traced_memory()[0] / len(held)
    tracemalloc.stop()
    del held
    result["keys"] = sum(batch.rows for batch in batches)
    types = [get_from_name(name) for name in COLUMN_TYPES]
    for codec in ("rust", "python"):
        transform = _make_native_transform(codec)

        def encode(transform: Any = transform) -> None:
            for batch in batches:
                context = InsertContext("t", list(COLUMN_NAMES), types, batch.columns, column_oriented=True)
                for _ in transform.build_insert(context):
                    pass

        result[f"encode_{codec}_s"] = _median_time(repeat, encode)
    client, name = store._connected(), store.settings.name

    def insert_all(**settings: Any) -> Callable[[], None]:
        def run() -> None:
            for n, batch in enumerate(batches):
                token = f"{n}-{time.time()}"
                client.insert(
                    table=name.table, database=name.database, data=batch.columns, column_names=COLUMN_NAMES,
                    column_type_names=COLUMN_TYPES, column_oriented=True,
                    settings={"async_insert": 0, "insert_deduplication_token": token, **settings},
                )  # fmt: skip

        return run

    result["insert_s"] = _median_time(repeat, insert_all(optimize_on_insert=0), truncate)
    result["insert_optimize_on_insert_s"] = _median_time(repeat, insert_all(optimize_on_insert=1), truncate)
    if target == "embedded":
        store.command(f"ALTER TABLE {name.qualified} MODIFY SETTING non_replicated_deduplication_window = 0")
        result["insert_no_dedup_window_s"] = _median_time(repeat, insert_all(optimize_on_insert=0), truncate)
        store.command(f"CREATE TABLE default.memory_copy AS {name.qualified} ENGINE = Memory")
        store.command(f"INSERT INTO default.memory_copy SELECT * FROM {name.qualified}")
        copy = f"INSERT INTO {name.qualified} SELECT * FROM default.memory_copy SETTINGS optimize_on_insert=0"
        result["engine_only_s"] = _median_time(repeat, lambda: store.command(copy), truncate)
    return result


def _run_child(target: str, args: argparse.Namespace, url: str = "") -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.store", "--child", target, "--rows", str(args.rows)]
    command += ["--polls", str(args.polls), "--repeat", str(args.repeat), "--url", url]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
    return json.loads(out.stdout.splitlines()[-1])


def _endpoint_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _print(target: str, m: dict[str, Any]) -> None:
    rows, keys = m["rows"], m["keys"]
    print(f"\n{target}: {rows:,} rows in, {keys:,} keys after aggregation, sums exact: {m['sums_exact']}")
    lines = [
        ("aggregation (add + drain to columns)", m["aggregate_s"], rows),
        ("encode, Rust codec (Native, no I/O)", m["encode_rust_s"], keys),
        ("encode, Python codec (baseline)", m["encode_python_s"], keys),
        ("insert only, optimize_on_insert=0", m["insert_s"], keys),
        ("insert only, optimize_on_insert=1", m["insert_optimize_on_insert_s"], keys),
        ("END TO END: aggregate + insert", m["end_to_end_s"], rows),
    ]
    if "engine_only_s" in m:
        lines.append(("insert only, no deduplication window", m["insert_no_dedup_window_s"], keys))
        lines.append(("engine alone: INSERT SELECT from Memory", m["engine_only_s"], keys))
    print(f"  {'stage':42} {'wall s':>8} {'rows/s':>12} {'CPU s':>8} {'rows/CPU-s':>12}")
    for label, (wall, cpu), count in lines:
        print(f"  {label:42} {wall:8.3f} {count / wall:>12,.0f} {cpu:8.3f} {count / max(cpu, 1e-9):>12,.0f}")
    ratios = [
        ("Rust / Python encode speed-up", "encode_python_s", "encode_rust_s"),
        ("optimize_on_insert 0 vs 1 insert speed-up", "insert_optimize_on_insert_s", "insert_s"),
    ]
    if "engine_only_s" in m:
        ratios.append(("insert path cost / engine alone", "insert_s", "engine_only_s"))
        ratios.append(("dedup window on / off", "insert_s", "insert_no_dedup_window_s"))
    for label, slow, fast in ratios:
        wall, cpu = m[slow][0] / m[fast][0], m[slow][1] / max(m[fast][1], 1e-9)
        print(f"  {label:42} wall {wall:5.2f}x   CPU {cpu:5.2f}x")
    print(f"  aggregate memory: {m['aggregate_bytes_per_key']:.0f} bytes per pending key (tracemalloc)")
    print(
        f"  peak RSS: end to end {m['peak_rss_e2e_mib']:.0f} MiB, of which the generated input rows "
        f"{m['rss_rows_mib']:.0f} MiB; after all stages {m['peak_rss_mib']:.0f} MiB"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks store", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--polls", type=int, default=4, help="agent polls per connection per bucket")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--target", choices=["embedded", "http", "both"], default="both")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.rows, args.polls, args.repeat, args.url)))
        return 0
    if args.target in ("embedded", "both"):
        _print("embedded chDB", _run_child("embedded", args))
    if args.target in ("http", "both"):
        with tempfile.TemporaryDirectory() as scratch, EndpointProcess(Path(scratch) / "engine") as endpoint:
            measured = _run_child("http", args, endpoint.url)
            endpoint_rss = _endpoint_rss_mib(endpoint.pid)
        _print("HTTP test endpoint (client process)", measured)
        print(f"  endpoint process peak RSS {endpoint_rss:.0f} MiB (its CPU time is not in the CPU column)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
