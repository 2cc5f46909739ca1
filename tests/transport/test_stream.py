"""Agents and the server over real gRPC on loopback with mTLS: every record arrives exactly once, bad
batches and impostors are refused and counted, and restarts on either side lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from prometheus_client import REGISTRY

from kubenetmon.records import Batch, LossReason, LossReport
from kubenetmon.transport import certificates, codec
from kubenetmon.transport.backoff import BackoffPolicy
from kubenetmon.transport.client import ClientSettings, GrpcSink
from kubenetmon.transport.codec import AckStatus
from kubenetmon.transport.service import AckDecision, PeerIdentity
from kubenetmon.transport.spool import Spool
from kubenetmon.transport.tls import TlsSettings, channel_credentials
from tests.transport.conftest import (
    DurableHandler,
    Pki,
    client_settings,
    free_port,
    make_records,
    serving,
)

FAST = BackoffPolicy(initial=0.05, maximum=0.2)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(15):
        while not condition():  # noqa: ASYNC110 - polls state that other tasks own
            await asyncio.sleep(0.02)


async def refusal(port: int, credentials: grpc.ChannelCredentials, payload: bytes) -> grpc.StatusCode:
    """Open a raw stream, send one message, and return the status the stream ends with."""
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        call = channel.stream_stream(codec.STREAM_METHOD, None, None)(None)
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call.write(payload)
        return await call.code()


def open_sink(pki: Pki, port: int, node: str = "node-a", **overrides: object) -> GrpcSink:
    return GrpcSink.open(client_settings(pki, port, node, backoff=FAST, **overrides))


async def submit_all(sink: GrpcSink, node: str, batches: int, size: int) -> None:
    for i in range(batches):
        await sink.submit(Batch(node, "ignored", 0, make_records(node, size, i * size)))


async def test_batches_arrive_exactly_once_and_in_order(pki: Pki, handler: DurableHandler) -> None:
    async with serving(handler, pki.server) as server:
        sink = open_sink(pki, server.port)
        await submit_all(sink, "node-a", 20, 100)
        await sink.aclose(15)
    assert handler.arrivals == [("node-a", sink.epoch, seq) for seq in range(20)]
    assert handler.records() == make_records("node-a", 2000)
    assert sink.pending_batches == 0


async def test_a_large_submission_is_split_into_batches_the_server_accepts(
    pki: Pki, handler: DurableHandler
) -> None:
    async with serving(handler, pki.server) as server:
        sink = open_sink(pki, server.port, max_records_per_batch=300)
        await sink.submit(Batch("node-a", "x", 0, make_records("node-a", 1000)))
        await sink.aclose(15)
    assert [len(b.records) for b in handler.stored.values()] == [300, 300, 300, 100]
    assert handler.records() == make_records("node-a", 1000)


async def test_the_server_limit_announced_in_acks_shrinks_later_batches(
    pki: Pki, handler: DurableHandler
) -> None:
    async with serving(handler, pki.server, max_records_per_batch=50) as server:
        sink = open_sink(pki, server.port)
        await sink.submit(Batch("node-a", "x", 0, make_records("node-a", 10)))
        await eventually(lambda: sink.pending_batches == 0)
        await sink.submit(Batch("node-a", "x", 0, make_records("node-a", 120, 10)))
        await sink.aclose(15)
    assert [len(b.records) for b in handler.stored.values()] == [10, 50, 50, 20]


async def test_an_agent_with_a_certificate_from_another_ca_is_refused(
    pki: Pki, handler: DurableHandler
) -> None:
    rogue = TlsSettings(
        cert=pki.directory / "rogue-node-a.pem", key=pki.directory / "rogue-node-a-key.pem", ca=pki.server.ca
    )
    async with serving(handler, pki.server) as server:
        failures = metric("kubenetmon_agent_transport_stream_failures_total", code="UNAVAILABLE")
        sink = GrpcSink.open(ClientSettings(target=f"127.0.0.1:{server.port}", tls=rogue, backoff=FAST))
        await submit_all(sink, "node-a", 1, 10)
        await eventually(
            lambda: (
                metric("kubenetmon_agent_transport_stream_failures_total", code="UNAVAILABLE") >= failures + 2
            )
        )
        await sink.aclose(0.1)
    assert handler.arrivals == []


async def test_an_agent_without_a_client_certificate_is_refused(pki: Pki, handler: DurableHandler) -> None:
    assert pki.server.ca is not None
    credentials = grpc.ssl_channel_credentials(root_certificates=pki.server.ca.read_bytes())
    payload = codec.encode_batch(Batch("node-a", "e", 0, make_records("node-a", 1)))
    async with serving(handler, pki.server) as server:
        assert await refusal(server.port, credentials, payload) == grpc.StatusCode.UNAVAILABLE
    assert handler.arrivals == []


async def test_a_node_claiming_another_nodes_name_is_refused_and_counted(
    pki: Pki, handler: DurableHandler
) -> None:
    mismatches = metric("kubenetmon_server_transport_rejected_batches_total", reason="identity_mismatch")
    denied = metric("kubenetmon_agent_transport_stream_failures_total", code="PERMISSION_DENIED")
    async with serving(handler, pki.server) as server:
        sink = open_sink(pki, server.port, node="node-a")
        await submit_all(sink, "node-b", 1, 10)
        await eventually(
            lambda: (
                metric("kubenetmon_agent_transport_stream_failures_total", code="PERMISSION_DENIED") > denied
            )
        )
        await sink.aclose(0.1)
    assert handler.arrivals == []
    assert (
        metric("kubenetmon_server_transport_rejected_batches_total", reason="identity_mismatch") > mismatches
    )


async def test_bad_batches_are_rejected_and_counted_while_a_good_agent_keeps_flowing(
    pki: Pki, handler: DurableHandler
) -> None:
    """1. A good agent (node-a) streams 30 batches.
    2. Meanwhile a raw client with node-b's certificate sends, on one stream: garbage, an oversized batch,
       a batch with too many records, a batch with a bad address, and finally a valid batch.
    3. Each bad batch gets a REJECTED ack with its reason and is counted; the raw stream stays usable
       (the valid batch is ACCEPTED) and the good agent's records all arrive.
    """
    reasons = ["undecodable", "too_large", "too_many_records", "bad_address"]
    before = {r: metric("kubenetmon_server_transport_rejected_batches_total", reason=r) for r in reasons}
    bad_address = codec.flows_pb2.FlowBatch.FromString(
        codec.encode_batch(Batch("node-b", "e", 3, make_records("node-b", 2)))
    )
    bad_address.flows.orig_src[1] = b"\x01\x02"
    bad = [
        b"\xff\xfe garbage",
        codec.encode_batch(Batch("node-b", "e", 1, make_records("node-b", 900))),
        codec.encode_batch(Batch("node-b", "e", 2, make_records("node-b", 600))),
        bad_address.SerializeToString(),
    ]
    valid = codec.encode_batch(Batch("node-b", "e", 4, make_records("node-b", 5)))
    async with serving(handler, pki.server, max_batch_bytes=40_000, max_records_per_batch=500) as server:
        sink = open_sink(pki, server.port, max_records_per_batch=200)
        good = asyncio.create_task(submit_all(sink, "node-a", 30, 200))
        credentials = channel_credentials(pki.client("node-b"))
        assert credentials is not None
        async with grpc.aio.secure_channel(f"127.0.0.1:{server.port}", credentials) as channel:
            call = channel.stream_stream(codec.STREAM_METHOD, None, None)(None)
            acks = []
            for payload in [*bad, valid]:
                await call.write(payload)
                acks.append(codec.decode_ack(await call.read()))
            await call.done_writing()
        await good
        await sink.aclose(15)
    assert [a.status for a in acks] == [AckStatus.REJECTED] * 4 + [AckStatus.ACCEPTED]
    assert acks[1].reason == f"batch is {len(bad[1])} bytes, the limit is 40000"
    assert acks[2].reason == "batch has 600 records, the limit is 500"
    assert acks[3].reason == "record 1: orig_src is 2 bytes, an IPv4 address is 4"
    assert [a.seq for a in acks] == [0, 1, 2, 3, 4]
    for reason in reasons:
        assert (
            metric("kubenetmon_server_transport_rejected_batches_total", reason=reason) == before[reason] + 1
        )
    node_a = [r for k in sorted(handler.stored) if k[0] == "node-a" for r in handler.stored[k].records]
    assert node_a == make_records("node-a", 6000)


async def test_a_server_restart_mid_stream_loses_and_duplicates_nothing(
    pki: Pki, handler: DurableHandler
) -> None:
    """1. Server 1 stores batch 3 durably and then hangs before acknowledging it (a crash's lost ack).
    2. Server 1 is stopped; server 2 starts on the same port with the same durable handler.
    3. The agent resends everything unacknowledged; the handler answers DUPLICATE for batch 3.
    4. Every record is stored exactly once.
    """
    handler.block_after_storing = {3}
    port = free_port()
    sink = None
    async with serving(handler, pki.server, port=port):
        sink = open_sink(pki, port, max_in_flight=2)
        await submit_all(sink, "node-a", 10, 50)
        await eventually(lambda: ("node-a", sink.epoch, 3) in handler.stored)
    assert sink.pending_batches > 0
    async with serving(handler, pki.server, port=port):
        await sink.aclose(15)
    assert sink.pending_batches == 0
    assert sorted(k[2] for k in handler.stored) == list(range(10))
    assert handler.records() == make_records("node-a", 500)
    assert handler.duplicates >= 1


async def test_a_batch_without_an_ack_in_time_is_resent_on_a_new_stream(
    pki: Pki, handler: DurableHandler
) -> None:
    handler.block_after_storing = {0}
    async with serving(handler, pki.server) as server:
        sink = open_sink(pki, server.port, ack_timeout=1.0)
        await submit_all(sink, "node-a", 3, 10)
        await sink.aclose(15)
    assert sink.pending_batches == 0
    assert handler.duplicates >= 1
    assert handler.records() == make_records("node-a", 30)


@dataclass
class Slow(DurableHandler):
    """Takes `delay` seconds over each batch; `entered` counts the batches it has started on."""

    delay: float = 0.5
    entered: int = 0

    async def handle(self, batch: Batch, peer: PeerIdentity) -> AckDecision:
        self.entered += 1
        await asyncio.sleep(self.delay)
        return await super().handle(batch, peer)


class RetryOnce(DurableHandler):
    async def handle(self, batch: Batch, peer: PeerIdentity) -> AckDecision:
        if batch.seq == 1 and not any(k[2] == 1 for k in self.arrivals):
            self.arrivals.append((batch.node, batch.epoch, batch.seq))
            return AckDecision.retry(200, "store busy")
        return await super().handle(batch, peer)


async def test_a_batch_the_server_asks_to_retry_is_resent_after_the_pause(pki: Pki) -> None:
    handler = RetryOnce()
    async with serving(handler, pki.server) as server:
        sink = open_sink(pki, server.port)
        await submit_all(sink, "node-a", 3, 10)
        await sink.aclose(15)
    assert [k[2] for k in handler.arrivals].count(1) == 2
    assert sorted(k[2] for k in handler.stored) == [0, 1, 2]
    assert handler.records() == make_records("node-a", 30)


class RejectSecond(DurableHandler):
    async def handle(self, batch: Batch, peer: PeerIdentity) -> AckDecision:
        if batch.seq == 1:
            return AckDecision.rejected("records from the future")
        return await super().handle(batch, peer)


async def test_a_batch_the_handler_rejects_is_dropped_and_counted_by_the_agent(pki: Pki) -> None:
    lost = metric("kubenetmon_agent_transport_lost_records_total", reason="rejected")
    handler = RejectSecond()
    async with serving(handler, pki.server) as server:
        sink = open_sink(pki, server.port)
        await submit_all(sink, "node-a", 3, 10)
        await sink.aclose(15)
    assert sink.pending_batches == 0
    assert sorted(k[2] for k in handler.stored) == [0, 2]
    assert metric("kubenetmon_agent_transport_lost_records_total", reason="rejected") == lost + 10


async def test_a_full_spool_drops_the_oldest_batches_and_reports_them_in_band(
    pki: Pki, handler: DurableHandler
) -> None:
    """With the server down, 10 batches go into a spool that holds 4; the 6 oldest are dropped. Once
    the server is up, the SPOOL_OVERFLOW reports that arrive add up to exactly the dropped records, bytes
    and packets, and a loss report the first dropped batch carried still arrives."""
    port = free_port()
    carried = LossReport(LossReason.EVENTS_OVERFLOW, 3)
    batches = [Batch("node-a", "x", 0, make_records("node-a", 100, i * 100)) for i in range(10)]
    size = len(codec.encode_batch(Batch("node-a", "0" * 32, 0, batches[0].records, (carried,))))
    settings = client_settings(pki, port, backoff=FAST)
    sink = GrpcSink(settings, Spool.in_memory(int(4.5 * size)))
    lost = metric("kubenetmon_agent_transport_lost_records_total", reason="spool_overflow")
    await sink.submit(Batch("node-a", "x", 0, batches[0].records, (carried,)))
    for batch in batches[1:]:
        await sink.submit(batch)
    async with serving(handler, pki.server, port=port):
        await sink.aclose(15)
    delivered = {k[2] for k, b in handler.stored.items() if b.records}
    dropped = [b for seq, b in enumerate(batches) if seq not in delivered]
    assert delivered == set(range(len(batches) - len(delivered), len(batches)))
    assert len(delivered) == 4
    losses = [loss for b in handler.stored.values() for loss in b.losses]
    overflow = [loss for loss in losses if loss.reason is LossReason.SPOOL_OVERFLOW]
    dropped_records = [r for b in dropped for r in b.records]
    assert sum(loss.count for loss in overflow) == len(dropped_records)
    assert sum(loss.bytes for loss in overflow) == sum(r.orig_bytes + r.reply_bytes for r in dropped_records)
    assert sum(loss.packets for loss in overflow) == sum(
        r.orig_packets + r.reply_packets for r in dropped_records
    )
    assert [loss for loss in losses if loss.reason is LossReason.EVENTS_OVERFLOW] == [carried]
    assert metric("kubenetmon_agent_transport_lost_records_total", reason="spool_overflow") == lost + len(
        dropped_records
    )


async def test_closing_a_memory_spool_sink_that_cannot_deliver_reports_the_loss(pki: Pki) -> None:
    lost = metric("kubenetmon_agent_transport_lost_records_total", reason="shutdown")
    sink = open_sink(pki, free_port())
    await submit_all(sink, "node-a", 3, 7)
    async with asyncio.timeout(5):
        await sink.aclose(0.3)
    assert metric("kubenetmon_agent_transport_lost_records_total", reason="shutdown") == lost + 21


async def test_closing_an_on_disk_sink_keeps_its_batches_for_the_next_start(
    pki: Pki, handler: DurableHandler, tmp_path: Path
) -> None:
    port = free_port()
    sink = open_sink(pki, port, spool_dir=tmp_path)
    await submit_all(sink, "node-a", 4, 25)
    await sink.aclose(0.2)
    async with serving(handler, pki.server, port=port):
        resumed = open_sink(pki, port, spool_dir=tmp_path)
        assert resumed.epoch == sink.epoch
        await resumed.aclose(15)
    assert sorted(k[2] for k in handler.stored) == [0, 1, 2, 3]
    assert handler.records() == make_records("node-a", 100)


CHILD = """
import asyncio, sys
from pathlib import Path
from kubenetmon.records import Batch
from kubenetmon.transport.client import ClientSettings, GrpcSink
from kubenetmon.transport.tls import TlsSettings
from tests.transport.conftest import make_records

async def main() -> None:
    pki, spool, port = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    tls = TlsSettings(cert=pki / "node-node-a.pem", key=pki / "node-node-a-key.pem", ca=pki / "ca.pem")
    sink = GrpcSink.open(ClientSettings(target=f"127.0.0.1:{port}", tls=tls, spool_dir=spool))
    for i in range(6):
        await sink.submit(Batch("node-a", "x", 0, make_records("node-a", 40, i * 40)))
        print(i, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_an_on_disk_spool_survives_the_agent_being_killed(
    pki: Pki, handler: DurableHandler, tmp_path: Path
) -> None:
    """An agent process spools 6 batches while the server is down and is killed with SIGKILL; a new
    sink on the same directory resends all 6 under the same epoch once the server is up."""
    port = free_port()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(pki.directory), str(tmp_path), str(port),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(["src", "."])},
    )  # fmt: skip
    try:
        assert child.stdout is not None
        for i in range(6):
            assert (await child.stdout.readline()).decode().strip() == str(i)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    async with serving(handler, pki.server, port=port):
        sink = open_sink(pki, port, spool_dir=tmp_path)
        await sink.aclose(15)
    assert {k[1] for k in handler.stored} == {sink.epoch}
    assert sorted(k[2] for k in handler.stored) == list(range(6))
    assert handler.records() == make_records("node-a", 240)


async def test_stopping_the_server_finishes_the_batch_in_hand_and_acknowledges_it(pki: Pki) -> None:
    """Graceful stop: the batch being handled completes and is acknowledged (so it is not resent to the
    next server); the stream then ends and the agent moves to the new server."""
    handler = Slow(delay=0.5)
    port = free_port()
    async with serving(handler, pki.server, port=port) as server:
        sink = open_sink(pki, port, max_in_flight=1)
        await submit_all(sink, "node-a", 3, 10)
        await eventually(lambda: handler.entered == 1)
        await server.stop(5)
        assert len(handler.stored) == 1
        await eventually(lambda: sink.pending_batches == 2)
    async with serving(handler, pki.server, port=port):
        await sink.aclose(15)
    assert handler.duplicates == 0
    assert handler.records() == make_records("node-a", 30)


class FailsOnce(DurableHandler):
    async def handle(self, batch: Batch, peer: PeerIdentity) -> AckDecision:
        if not self.arrivals:
            self.arrivals.append((batch.node, batch.epoch, batch.seq))
            raise RuntimeError("store exploded")
        return await super().handle(batch, peer)


async def test_a_handler_that_raises_makes_the_agent_resend_and_is_counted(pki: Pki) -> None:
    errors = metric("kubenetmon_server_transport_handler_errors_total")
    handler = FailsOnce()
    async with serving(handler, pki.server, handler_error_retry_ms=50) as server:
        sink = open_sink(pki, server.port)
        await submit_all(sink, "node-a", 2, 10)
        await sink.aclose(15)
    assert metric("kubenetmon_server_transport_handler_errors_total") == errors + 1
    assert handler.records() == make_records("node-a", 20)


async def test_a_message_over_the_grpc_limit_ends_only_its_own_stream(
    pki: Pki, handler: DurableHandler
) -> None:
    async with serving(handler, pki.server, max_batch_bytes=10_000) as server:
        sink = open_sink(pki, server.port, max_records_per_batch=50)
        credentials = channel_credentials(pki.client("node-b"))
        assert credentials is not None
        huge = codec.encode_batch(Batch("node-b", "e", 0, make_records("node-b", 2000)))
        assert len(huge) > 20_000
        assert await refusal(server.port, credentials, huge) == grpc.StatusCode.RESOURCE_EXHAUSTED
        await submit_all(sink, "node-a", 5, 50)
        await sink.aclose(15)
    assert handler.records() == make_records("node-a", 250)


async def test_a_draining_server_refuses_new_streams(pki: Pki) -> None:
    handler = Slow(delay=1.0)
    async with serving(handler, pki.server) as server:
        sink = open_sink(pki, server.port)
        await submit_all(sink, "node-a", 1, 10)
        await eventually(lambda: handler.entered == 1)
        stopping = asyncio.create_task(server.stop(5))
        await asyncio.sleep(0)
        credentials = channel_credentials(pki.client("node-b"))
        assert credentials is not None
        payload = codec.encode_batch(Batch("node-b", "e", 0, make_records("node-b", 1)))
        assert await refusal(server.port, credentials, payload) == grpc.StatusCode.UNAVAILABLE
        await stopping
        await sink.aclose(0.1)
    assert [k[0] for k in handler.arrivals] == ["node-a"]


async def test_streams_end_after_their_maximum_age_and_agents_reconnect(
    pki: Pki, handler: DurableHandler
) -> None:
    rotations = metric("kubenetmon_agent_transport_stream_failures_total", code="UNAVAILABLE")
    async with serving(handler, pki.server, max_stream_age=0.3) as server:
        sink = open_sink(pki, server.port)
        for i in range(4):
            await sink.submit(Batch("node-a", "x", 0, make_records("node-a", 10, i * 10)))
            await asyncio.sleep(0.4)
        await sink.aclose(15)
    assert metric("kubenetmon_agent_transport_stream_failures_total", code="UNAVAILABLE") >= rotations + 2
    assert handler.duplicates == 0
    assert handler.records() == make_records("node-a", 40)


def served_certificate_cn(port: int, pki: Pki) -> str:
    """The CN of the certificate the server presents to a client with node-a's certificate."""
    context = ssl.create_default_context(cafile=str(pki.server.ca))
    tls = pki.client("node-a")
    context.load_cert_chain(str(tls.cert), str(tls.key))
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as connection,
    ):
        subject = dict(item[0] for item in connection.getpeercert()["subject"])  # type: ignore[index]
        return str(subject["commonName"])


async def test_a_renewed_server_certificate_is_used_without_a_restart(
    pki: Pki, handler: DurableHandler, tmp_path: Path
) -> None:
    served = tmp_path / "served"
    shutil.copytree(pki.directory, served)
    tls = TlsSettings(cert=served / "server.pem", key=served / "server-key.pem", ca=served / "ca.pem")
    async with serving(handler, tls) as server:
        before = await asyncio.to_thread(served_certificate_cn, server.port, pki)
        issuer, _ = certificates.load_or_create_ca(served)
        cert, key = certificates.issue(issuer, "renewed", ["127.0.0.1"], server=True)
        certificates.write_pair(served, "server.pem", "server-key.pem", cert, key)
        after = await asyncio.to_thread(served_certificate_cn, server.port, pki)
        sink = open_sink(pki, server.port)
        await submit_all(sink, "node-a", 2, 5)
        await sink.aclose(15)
    assert (before, after) == ("kubenetmon-server", "renewed")
    assert handler.records() == make_records("node-a", 10)
