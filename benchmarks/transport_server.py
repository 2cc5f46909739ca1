"""One FlowServer process pinned to one core, fed pre-recorded batches by agent processes over loopback
with mTLS; the handler only acknowledges (the service decodes and validates every batch).

Run: PYTHONPATH=src python -m benchmarks.transport_server [--agents 4] [--batches 100] [--records 1000]

Prints records/s through the server and the p50/p99 time from sending a batch to receiving its ack.
Baseline measured in the same run, on the same core: `codec.decode_batch` alone over the same batches,
the most the server could do if gRPC, TLS and asyncio cost nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import grpc

from benchmarks.server_agents import send_all
from benchmarks.transport_codec import synthetic_records
from kubenetmon.records import Batch
from kubenetmon.transport import certificates, codec
from kubenetmon.transport.service import AckDecision, FlowServer, PeerIdentity, ServiceSettings
from kubenetmon.transport.tls import TlsSettings, channel_credentials


class AckOnly:
    """A handler that takes every decoded batch as durable at once."""

    def __init__(self) -> None:
        self.records = 0

    async def handle(self, batch: Batch, peer: PeerIdentity) -> AckDecision:
        self.records += len(batch.records)
        return AckDecision.accepted()


def make_pki(directory: Path, agents: int) -> None:
    issuer, _ = certificates.load_or_create_ca(directory)
    cert, key = certificates.issue(issuer, "server", ["127.0.0.1"], server=True)
    certificates.write_pair(directory, certificates.SERVER_CERT, certificates.SERVER_KEY, cert, key)
    for agent in range(agents):
        cert, key = certificates.issue(issuer, f"node-{agent}", [f"node-{agent}"], server=False)
        certificates.write_pair(directory, *certificates.node_cert_names(f"node-{agent}"), cert, key)


def recorded_batches(node: str, count: int, records: int) -> list[bytes]:
    """Distinct encoded batches, as an agent would have spooled them."""
    flows = synthetic_records(records, node)
    return [codec.encode_batch(Batch(node, "bench", seq, flows)) for seq in range(count)]


def serve(pki: Path, cpu: int, ready: Connection) -> None:
    os.sched_setaffinity(0, {cpu})

    async def run() -> None:
        tls = TlsSettings(cert=pki / "server.pem", key=pki / "server-key.pem", ca=pki / "ca.pem")
        handler = AckOnly()
        server = FlowServer(handler, ServiceSettings(listen="127.0.0.1:0", tls=tls))
        await server.start()
        ready.send(server.port)
        await asyncio.get_running_loop().run_in_executor(None, ready.recv)
        await server.stop(1)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        ready.send((usage.ru_utime + usage.ru_stime - cpu_at_start) / handler.records)

    cpu_at_start = time.process_time()

    asyncio.run(run())


def decode_baseline(cpu: int, batches: list[bytes], result: Connection) -> None:
    """CPU seconds per record, best of 5 passes (CPU time, so other load on the machine does not count)."""
    os.sched_setaffinity(0, {cpu})
    costs = []
    for _ in range(5):
        started = time.process_time()
        records = sum(len(codec.decode_batch(payload, 65536).records) for payload in batches)
        costs.append((time.process_time() - started) / records)
    result.send(min(costs))


def agent(pki: Path, node: str, port: int, args: argparse.Namespace, cpus: set[int], out: Connection) -> None:
    os.sched_setaffinity(0, cpus)
    batches = recorded_batches(node, args.batches, args.records)
    cert, key = certificates.node_cert_names(node)
    tls = TlsSettings(cert=pki / cert, key=pki / key, ca=pki / certificates.CA_CERT)

    async def run() -> tuple[float, float, list[float]]:
        credentials = channel_credentials(tls)
        assert credentials is not None
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
            go = asyncio.Event()
            go.set()
            started, finished, latencies, _ = await send_all(channel, batches, args.window, go)
        return started, finished, latencies

    out.send(asyncio.run(run()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--batches", type=int, default=100, help="batches per agent")
    parser.add_argument("--records", type=int, default=1000, help="records per batch")
    parser.add_argument("--window", type=int, default=8, help="batches in flight per agent")
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, agent_cpus = cpus[0], set(cpus[1:]) or {cpus[0]}
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as scratch:
        pki = Path(scratch)
        make_pki(pki, args.agents)

        mine, theirs = context.Pipe()
        baseline = context.Process(
            target=decode_baseline, args=(server_cpu, recorded_batches("node-0", 50, args.records), theirs)
        )
        baseline.start()
        decode_cost = mine.recv()
        baseline.join()

        control, server_end = context.Pipe()
        server = context.Process(target=serve, args=(pki, server_cpu, server_end))
        server.start()
        port = control.recv()
        pipes, agents = [], []
        for number in range(args.agents):
            mine, theirs = context.Pipe()
            process = context.Process(
                target=agent, args=(pki, f"node-{number}", port, args, agent_cpus, theirs)
            )
            process.start()
            pipes.append(mine)
            agents.append(process)
        results = [pipe.recv() for pipe in pipes]
        for process in agents:
            process.join()
        control.send("stop")
        server_cost = control.recv()
        server.join()

    started = min(r[0] for r in results)
    finished = max(r[1] for r in results)
    latencies = sorted(latency for r in results for latency in r[2])
    total = args.agents * args.batches * args.records
    rate = total / (finished - started)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(
        f"transport server on cpu {server_cpu}, {args.agents} agents on cpus {sorted(agent_cpus)}, "
        f"{args.batches} batches x {args.records} records each, window {args.window}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  server throughput (wall clock)    {rate:12,.0f} records/s")
    for name, cost in (
        ("server CPU per record", server_cost),
        ("baseline: decode only, per record", decode_cost),
    ):
        print(f"  {name:33} {cost * 1e6:12.2f} us  -> {1 / cost:,.0f} records/s per core")
    print(f"  server / baseline CPU per record  {server_cost / decode_cost:12.2f}x")
    print(f"  ack latency p50                  {statistics.median(latencies) * 1000:12.1f} ms")
    print(f"  ack latency p99                  {p99 * 1000:12.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
