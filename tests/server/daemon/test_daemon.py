"""The server daemon end to end in one process: mTLS gRPC in, attributed rows in the embedded engine out."""

from __future__ import annotations

import os

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from kubenetmon.records import Batch, FlowRecord
from kubenetmon.server.attribution.settings import AttributionSettings
from kubenetmon.server.cloud.refresh import RefreshSettings
from kubenetmon.server.daemon import ServerDaemon
from kubenetmon.server.ingest import IngestSettings
from kubenetmon.server.settings import ServerSettings
from kubenetmon.store.dsn import parse_dsn
from kubenetmon.store.sink import ClickHouseStore
from kubenetmon.transport.client import ClientSettings, GrpcSink
from kubenetmon.transport.service import ServiceSettings
from tests.transport.conftest import Pki

INVENTORY = """
cluster: lab
cloud: aws
region: eu-west-1
nodes:
  - {name: node-a, zone: eu-west-1a, addresses: [198.18.0.11]}
  - {name: node-b, zone: eu-west-1b, addresses: [198.18.0.12]}
pods:
  - {namespace: shop, name: web-1, node: node-a, ips: [198.18.1.10], workload: web, workload_kind: Deployment}
  - {namespace: shop, name: db-1, node: node-b, ips: [198.18.2.10], workload: db, workload_kind: StatefulSet}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def web_to_db(now: float, sport: int, up: int, down: int) -> FlowRecord:
    return FlowRecord(
        node="node-a", proto=6, family=4,
        orig_src="198.18.1.10", orig_dst="198.18.2.10", orig_sport=sport, orig_dport=5432,
        reply_src="198.18.2.10", reply_dst="198.18.1.10", reply_sport=5432, reply_dport=sport,
        orig_bytes=up, orig_packets=up // 1000 + 1, reply_bytes=down, reply_packets=down // 1000 + 1,
        start=now - 5, end=now,
    )  # fmt: skip


def settings(tmp_path: Path, pki: Pki, grpc_port: int, metrics_port: int) -> ServerSettings:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY)
    return ServerSettings(
        service=ServiceSettings(listen=f"127.0.0.1:{grpc_port}", tls=pki.server),
        ingest=IngestSettings(tmp_path / "wal"),
        store=parse_dsn(f"chdb://{tmp_path}/store"),
        attribution=AttributionSettings(environment="test", cluster="lab", cloud="aws", region="eu-west-1"),
        kubernetes=None,
        static_inventory=inventory,
        cloud_ranges=RefreshSettings(interval_seconds=0),
        metrics_host="127.0.0.1",
        metrics_port=metrics_port,
        shutdown_grace=10.0,
    )


@asynccontextmanager
async def running(server: ServerDaemon) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(server.run())
    try:
        yield task
    finally:
        server.request_stop()
        await asyncio.wait_for(task, 60)


async def wait_ready(metrics_port: int) -> str:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"http://127.0.0.1:{metrics_port}/readyz") as response:
                    if response.status == 200:
                        return await response.text()
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("server never became ready")


async def test_batches_sent_over_mtls_are_stored_attributed_once_each(tmp_path: Path, pki: Pki) -> None:
    grpc_port, metrics_port = free_port(), free_port()
    server = ServerDaemon(settings(tmp_path, pki, grpc_port, metrics_port))
    now = float(int(time.time()))
    records = [web_to_db(now, 40000 + i, up=1000 * (i + 1), down=300 * (i + 1)) for i in range(50)]
    async with running(server):
        assert await wait_ready(metrics_port) == "ready\n"
        sink = GrpcSink.open(ClientSettings(target=f"127.0.0.1:{grpc_port}", tls=pki.client("node-a")))
        for seq in range(5):
            await sink.submit(Batch("node-a", "", seq, records[seq * 10 : seq * 10 + 10]))
        await sink.aclose(timeout=30)
        assert sink.pending_batches == 0
    with ClickHouseStore(parse_dsn(f"chdb://{tmp_path}/store")) as store:
        rows = store.query(
            "SELECT direction, localPod, remotePod, localWorkload, remoteWorkloadKind, billingClass, "
            "countOnce, sum(bytes) FROM network_flows_0 GROUP BY ALL ORDER BY direction"
        ).rows
    total_up = sum(r.orig_bytes for r in records)
    total_down = sum(r.reply_bytes for r in records)
    assert rows == [
        ("out", "web-1", "db-1", "web", "StatefulSet", "cross-zone", True, total_up),
        ("in", "web-1", "db-1", "web", "StatefulSet", "cross-zone", False, total_down),
    ]


async def test_a_certificate_for_another_node_is_refused_and_nothing_is_stored(
    tmp_path: Path, pki: Pki
) -> None:
    grpc_port, metrics_port = free_port(), free_port()
    server = ServerDaemon(settings(tmp_path, pki, grpc_port, metrics_port))
    now = time.time()
    async with running(server):
        await wait_ready(metrics_port)
        sink = GrpcSink.open(ClientSettings(target=f"127.0.0.1:{grpc_port}", tls=pki.client("node-b")))
        await sink.submit(Batch("node-a", "", 0, [web_to_db(now, 40000, 100, 100)]))
        await sink.aclose(timeout=2)
        assert sink.pending_batches == 1
    with ClickHouseStore(parse_dsn(f"chdb://{tmp_path}/store")) as store:
        assert store.query("SELECT count() FROM network_flows_0").rows == [(0,)]
