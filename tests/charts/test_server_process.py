"""The server chart's lab profile runs the real `kubenetmon server`: with exactly the environment and
volumes the chart renders it becomes ready, stores what an agent sends, and stops cleanly on SIGTERM."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kubenetmon.records import Batch, FlowRecord
from kubenetmon.transport.client import ClientSettings, GrpcSink
from kubenetmon.transport.tls import TlsSettings
from tests.charts.rendering import EXAMPLES_DIR, Profile, objects, template
from tests.charts.server_process import local_pod, query, server_process

pytestmark = [pytest.mark.helm, pytest.mark.slow]

LAB = Profile("kubenetmon-server", EXAMPLES_DIR / "server-lab.yaml")


def node_a_to_node_b(now: float, sport: int, up: int, down: int) -> FlowRecord:
    # Both addresses are nodes of the profile's static inventory.
    return FlowRecord(
        node="lab-node-a", proto=6, family=4,
        orig_src="198.18.0.1", orig_dst="198.18.0.2", orig_sport=sport, orig_dport=443,
        reply_src="198.18.0.2", reply_dst="198.18.0.1", reply_sport=443, reply_dport=sport,
        orig_bytes=up, orig_packets=up // 1000 + 1, reply_bytes=down, reply_packets=down // 1000 + 1,
        start=now - 5, end=now,
    )  # fmt: skip


async def test_lab_profile_server_stores_a_plaintext_batch_and_stops_cleanly(
    helm: Path, tmp_path: Path
) -> None:
    pod = local_pod(objects(template(helm, LAB)), "server", tmp_path / "pod")
    now = float(int(time.time()))
    records = [node_a_to_node_b(now, 40000 + i, up=1000 * (i + 1), down=100 * (i + 1)) for i in range(20)]
    with server_process(pod.environment, tmp_path / "server.log") as server:
        sink = GrpcSink.open(ClientSettings(target=server.grpc_target, tls=TlsSettings(insecure=True)))
        await sink.submit(Batch("lab-node-a", "", 0, records))
        await sink.aclose(timeout=30)
        assert sink.pending_batches == 0
    assert '"server stopped"' in server.process.log_tail()
    rows = query(
        pod.environment,
        "SELECT direction, localNode, remoteNode, localAvailabilityZone, remoteAvailabilityZone, "
        "toUInt64(sum(bytes)) AS bytes FROM network_flows_0 GROUP BY ALL ORDER BY direction",
    )
    assert rows == [
        {"direction": "out", "localNode": "lab-node-a", "remoteNode": "lab-node-b",
         "localAvailabilityZone": "lab-zone-a", "remoteAvailabilityZone": "lab-zone-b",
         "bytes": sum(r.orig_bytes for r in records)},
        {"direction": "in", "localNode": "lab-node-a", "remoteNode": "lab-node-b",
         "localAvailabilityZone": "lab-zone-a", "remoteAvailabilityZone": "lab-zone-b",
         "bytes": sum(r.reply_bytes for r in records)},
    ]  # fmt: skip
