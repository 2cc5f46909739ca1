"""End to end through one real server process on one core: agents' mTLS batches in, stored rows out.

Run: python -m benchmarks server-e2e [--nodes 50] [--intervals 4] [--records-per-batch 5000] [--window 2]
     [--no-profile] [--stage-nodes 10]

Setup: `kubenetmon server --no-kubernetes --inventory FILE` (500 nodes in 3 zones, 10,000 dual-stack pods,
500 Services, 30 inventory databases, the bundled cloud ranges; see benchmarks/server_traffic.py), mTLS
with a throwaway PKI, the embedded chDB store and the WAL in a temporary directory, pinned to the first
core with everything it starts (the engine's threads included). Agent processes on the other core stream
pre-recorded, pre-encoded batches, one stream per simulated node with its own node certificate and at
most `--window` batches in flight; they time each batch from write to acknowledgement.

"Stored" is measured thus: when every agent has its last ack, the WAL holds everything; the server then
gets SIGTERM, which makes it insert what is left at once instead of after the age-based flush delay
(production flush settings otherwise, `FlusherSettings()`: a table of 500,000 flows, or 10 s once the
flusher has caught up with the buffer, 60 s while it works through a backlog). It closes its HTTP endpoint
only after that last insert, so /healthz is polled every 20 ms until the connection is refused: that
moment is the end. The server must then exit 0 having logged "server stopped", and the table's sum(bytes)
and sum(packets) must equal the recorded batches'. Server CPU is user+system of all its threads (the
engine's background merges included) from the first send to that moment, from /proc; peak RSS is its
ru_maxrss (os.wait4).

Merge debt: merges the engine has not done by the end are not in that CPU time, yet a server that keeps
running does them on its core. So the parts left in the table are then merged into one per partition
(OPTIMIZE FINAL, in a separate process) and that CPU time is reported too, with the capacity it leaves.

Baselines in the same run, on the same core and the same batches: transport only (FlowServer with a
handler that acknowledges at once: gRPC + TLS + decode, the most a server could receive), and each stage
of the server's path alone (benchmarks/server_stages.py; decode-only is its first line). With profiling
on, a second identical run is sampled by py-spy (it slows the server, so its times are not reported).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks import server_profile, server_stages
from benchmarks.server_agents import write_batches
from benchmarks.server_process import in_child, scrape, start_server, stream, wait_stopped_storing
from benchmarks.server_traffic import Traffic, inventory_document, recorded_traffic
from benchmarks.transport_server import make_pki, serve
from kubenetmon.server.attribution.settings import AttributionSettings
from kubenetmon.store.dsn import parse_dsn
from kubenetmon.store.sink import ClickHouseStore

_CLUSTER = ["--cluster", "bench", "--cloud", "aws", "--region", "us-east-1", "--environment", "bench"]
_ATTRIBUTION = AttributionSettings(environment="bench", cluster="bench", cloud="aws", region="us-east-1")


@dataclass(frozen=True, slots=True)
class Setup:
    """What every run shares."""

    pki: Path
    inventory: Path
    groups: list[Path]
    """One batch file per agent process."""
    window: int
    server_cpu: int
    agent_cpus: set[int]


@dataclass(frozen=True, slots=True)
class EndToEnd:
    """One run of the real server."""

    seconds: float
    """First send to the last insert (everything stored)."""
    acked_seconds: float
    """First send to the last ack (everything in the WAL)."""
    cpu_seconds: float
    """User + system CPU of every server thread, first send to the last insert."""
    peak_rss_mib: float
    latencies: list[float]
    threads: dict[str, float]
    """CPU seconds per server thread group, first send to the last insert."""
    stored: tuple[int, int, int]
    """(rows, sum(bytes), sum(packets)) in the table afterwards."""
    merge_debt: tuple[int, float]
    """(parts, CPU seconds to merge them into one per partition) the run left in the table."""
    received: float
    """Records the server counted into its buffer (its /metrics at the last ack)."""
    profile: tuple[dict[str, int], int] | None


def end_to_end(setup: Setup, scratch: Path, profile: Path | None) -> EndToEnd:
    """Start the server, stream every batch, SIGTERM it, note when the last insert is done, read the table.
    With `profile` (a file for py-spy's raw output) the server is sampled."""
    scratch.mkdir()
    tail = ["--no-kubernetes", "--inventory", str(setup.inventory), "--cloud-ranges-refresh", "0",
            "--shutdown-grace", "600", *_CLUSTER]  # fmt: skip
    server = start_server(tail, scratch, setup.pki, setup.server_cpu)
    pid = server.process.pid
    at_go: dict[str, float] = {}
    watches: list[server_profile.ThreadWatch] = []
    samplers = []

    def go() -> None:
        if profile is not None:
            samplers.append(server_profile.start_sampler(pid, profile, setup.agent_cpus))
            time.sleep(1.0)  # py-spy attaches before the first batch
        watches.append(server_profile.ThreadWatch(pid))
        at_go["cpu"] = server_profile.process_cpu(pid)

    results = stream(setup.pki, server.grpc_port, setup.groups, setup.window, setup.agent_cpus, go)
    received = scrape(server).get("kubenetmon_server_records_received_total", 0.0)
    # SIGTERM ends the age-based wait for the last partial aggregate: it is inserted at once.
    server.process.send_signal(signal.SIGTERM)
    stored_at = wait_stopped_storing(server)
    cpu = server_profile.process_cpu(pid) - at_go["cpu"]
    threads = watches[0].stop()
    _, status, usage = os.wait4(pid, 0)
    server.process.returncode = os.waitstatus_to_exitcode(status)
    sampler = samplers[0] if samplers else None
    if sampler is not None:
        sampler.wait(timeout=120)  # py-spy writes its output once the sampled process exits
    server.drained()
    if (
        server.process.returncode != 0
        or server.logged("server stopped") is None
        or server.logged("did not take the whole buffer")
    ):
        raise RuntimeError("the server did not store everything:\n" + server.log_text())
    first = min(r.first_send for r in results)
    return EndToEnd(
        seconds=stored_at - first,
        acked_seconds=max(r.last_ack for r in results) - first,
        cpu_seconds=cpu,
        peak_rss_mib=usage.ru_maxrss / 1024,
        latencies=[latency for r in results for latency in r.latencies],
        threads=threads,
        merge_debt=in_child(merge_debt, scratch / "store"),
        stored=in_child(table_totals, scratch / "store"),
        received=received,
        profile=server_profile.categorize(profile) if profile is not None and sampler is not None else None,
    )


def transport_only(setup: Setup) -> tuple[float, float, list[float]]:
    """(seconds, server CPU seconds per record, ack latencies) of a FlowServer that only acknowledges."""
    import multiprocessing  # noqa: PLC0415

    context = multiprocessing.get_context("spawn")
    control, server_end = context.Pipe()
    process = context.Process(target=serve, args=(setup.pki, setup.server_cpu, server_end))
    process.start()
    results = stream(setup.pki, control.recv(), setup.groups, setup.window, setup.agent_cpus, lambda: None)
    control.send("stop")
    cost: float = control.recv()
    process.join()
    seconds = max(r.last_ack for r in results) - min(r.first_send for r in results)
    return seconds, cost, [latency for r in results for latency in r.latencies]


def merge_debt(directory: Path) -> tuple[int, float]:
    """(active parts, CPU seconds of OPTIMIZE FINAL) of the table in an embedded store directory: the
    merges the run left undone (a server that keeps running does them in the background, on its core)."""
    with ClickHouseStore(parse_dsn(f"chdb://{directory}")) as store:
        name = store.settings.name
        [(parts,)] = store.query(
            "SELECT count() FROM system.parts WHERE active AND database = {db:String} AND table = {t:String}",
            {"db": name.database, "t": name.table},
        ).rows
        started = time.process_time()
        store.command(f"OPTIMIZE TABLE {name.qualified} FINAL")
        return int(parts), time.process_time() - started


def table_totals(directory: Path) -> tuple[int, int, int]:
    """(rows, sum(bytes), sum(packets)) of the table in an embedded store directory."""
    with ClickHouseStore(parse_dsn(f"chdb://{directory}")) as store:
        table = store.settings.name.qualified
        rows, sent, packets = store.query(f"SELECT count(), sum(bytes), sum(packets) FROM {table}").rows[0]
    return int(rows), int(sent), int(packets)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[round(share * (len(ordered) - 1))]


def report(
    traffic: Traffic,
    setup: Setup,
    stages: server_stages.StageCosts,
    transport: tuple[float, float, list[float]],
    run: EndToEnd,
    profiled: EndToEnd | None,
) -> bool:
    """Print the results; False if the table does not hold exactly what was sent."""
    records, batches = traffic.records, sum(len(b) for b in traffic.batches.values())
    rows, stored_bytes, stored_packets = run.stored
    exact = (stored_bytes, stored_packets) == (traffic.total_bytes, traffic.total_packets)
    exact = exact and run.received == records
    print(f"server on cpu {setup.server_cpu}, {len(setup.groups)} agent processes on cpus "
          f"{sorted(setup.agent_cpus)}; {records:,} records in {batches} batches from {len(traffic.batches)} "
          f"nodes, window {setup.window} per stream; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"received {run.received:,.0f} records, stored {rows:,} rows; sum(bytes) and sum(packets) "
          f"{'match' if exact else 'DO NOT MATCH'} the batches ({stored_bytes:,} vs {traffic.total_bytes:,} "
          "bytes)\n")  # fmt: skip
    t_seconds, t_cost, t_latencies = transport
    e2e_rate, t_rate = records / run.seconds, records / t_seconds
    e2e_cost = run.cpu_seconds / records
    line = "  {:44} {:>12} {:>14} {:>10} {:>10}"
    print(line.format("", "records/s", "CPU us/record", "ack p50", "ack p99"))
    for name, rate, cost, latencies in (
        ("end to end: first send -> all rows stored", e2e_rate, e2e_cost, run.latencies),
        ("  of which first send -> last ack (in WAL)", records / run.acked_seconds, None, None),
        ("baseline: transport only (receive, decode)", t_rate, t_cost, t_latencies),
        ("baseline: decode only", None, stages.per_record["decode"], None),
    ):
        print(line.format(
            name,
            f"{rate:,.0f}" if rate else "",
            f"{cost * 1e6:.2f}" if cost else "",
            f"{statistics.median(latencies) * 1e3:.1f} ms" if latencies else "",
            f"{_percentile(latencies, 0.99) * 1e3:.1f} ms" if latencies else "",
        ))  # fmt: skip
    print(f"  end to end / transport only: {e2e_rate / t_rate:.2f}x the records/s, "
          f"{e2e_cost / t_cost:.2f}x the CPU per record; / decode only: "
          f"{e2e_cost / stages.per_record['decode']:.1f}x the CPU per record")  # fmt: skip
    parts, merge_seconds = run.merge_debt
    with_merges = e2e_cost + merge_seconds / records
    print(f"  server capacity on one core: {1 / e2e_cost:,.0f} records per CPU-second (floor 50,000); "
          f"peak RSS {run.peak_rss_mib:.0f} MiB")  # fmt: skip
    print(f"  merge debt: the run left {parts} parts; merging them into one costs {merge_seconds:.2f} CPU s "
          f"({merge_seconds / records * 1e6:.2f} us/record): {1 / with_merges:,.0f} records per CPU-second "
          "with it\n")  # fmt: skip
    staged = sum(stages.per_record.values())
    print(f"stages alone (server_stages.py, {stages.records:,} records -> {stages.flows:,} flows -> "
          f"{stages.rows:,} rows -> {stages.keys:,} keys in {stages.inserts} inserts), "
          "CPU us/record:")  # fmt: skip
    for name, cost in stages.per_record.items():
        print(f"  {name:44} {cost * 1e6:8.2f}  {cost / e2e_cost:6.1%} of end to end")
    print(f"  {'sum of stages':44} {staged * 1e6:8.2f}  {staged / e2e_cost:6.1%}")
    rest = e2e_cost - staged
    print(f"  {'rest: gRPC, TLS, asyncio, metrics, GIL':44} {rest * 1e6:8.2f}  {rest / e2e_cost:6.1%}\n")
    total = sum(run.threads.values())
    print("server CPU by thread (first send -> last insert):")
    for name, seconds in sorted(run.threads.items(), key=lambda item: -item[1]):
        if seconds > 0.005 * total:
            print(f"  {name:44} {seconds:7.2f} s  {seconds / total:6.1%}")
    if profiled is not None and profiled.profile is not None:
        counts, samples = profiled.profile
        print(f"\npy-spy, Python threads only, {samples} samples (second run, slowed by sampling):")
        for name, count in sorted(counts.items(), key=lambda item: -item[1]):
            print(f"  {name:44} {count / samples:6.1%}")
    return exact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50, help="agent nodes, one stream each")
    parser.add_argument("--intervals", type=int, default=4, help="batches per node (10 s intervals)")
    parser.add_argument("--records-per-batch", type=int, default=5000)
    parser.add_argument("--window", type=int, default=2, help="batches in flight per stream")
    parser.add_argument("--agents", type=int, default=5, help="agent processes the streams are spread over")
    parser.add_argument("--stage-nodes", type=int, default=10, help="nodes whose batches the stages run on")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip the py-spy run")
    parser.add_argument(
        "--profile-output",
        type=Path,
        default=None,
        help="keep py-spy's collapsed stacks here (flamegraph input)",
    )
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    first_start = (time.time() // 60 - 2) * 60
    traffic = recorded_traffic(args.nodes, args.intervals, args.records_per_batch, first_start)
    with tempfile.TemporaryDirectory(prefix="kubenetmon-server-e2e-") as directory:
        scratch = Path(directory)
        pki = scratch / "pki"
        pki.mkdir()
        make_pki(pki, args.nodes)
        inventory = scratch / "inventory.yaml"
        inventory.write_text(yaml.safe_dump(inventory_document(), sort_keys=False))
        nodes = list(traffic.batches)
        groups = []
        for number in range(args.agents):
            groups.append(scratch / f"agent-{number}.batches")
            write_batches(groups[-1], {node: traffic.batches[node] for node in nodes[number :: args.agents]})
        setup = Setup(pki, inventory, groups, args.window, cpus[0], set(cpus[1:]) or {cpus[0]})
        # In arrival order: every node's first interval, then every node's second, ...
        sample = [
            traffic.batches[node][seq] for seq in range(args.intervals) for node in nodes[: args.stage_nodes]
        ]
        stages = in_child(server_stages.measure, inventory, sample, setup.server_cpu, _ATTRIBUTION)
        transport = transport_only(setup)
        run = end_to_end(setup, scratch / "run", None)
        profile = (args.profile_output or scratch / "profile.txt").absolute()
        profiled = end_to_end(setup, scratch / "profiled", profile) if args.profile else None
    return 0 if report(traffic, setup, stages, transport, run, profiled) else 1


if __name__ == "__main__":
    raise SystemExit(main())
