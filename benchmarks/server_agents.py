"""Agent processes for the server benchmarks: each streams pre-encoded batches for a few nodes, one mTLS
gRPC stream per node with its own node certificate (as real agents do), keeping up to `window` batches
in flight per stream, and times every batch from write to acknowledgement.

Times are `time.monotonic()`, a system-wide clock, so the parent compares them across processes.
"""

from __future__ import annotations

import asyncio
import os
import pickle
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import grpc

from kubenetmon.transport import certificates, codec
from kubenetmon.transport.codec import AckStatus
from kubenetmon.transport.tls import TlsSettings, channel_credentials


@dataclass(frozen=True, slots=True)
class AgentResult:
    """One agent process's view of its run."""

    first_send: float
    last_ack: float
    latencies: list[float]
    """Seconds from writing a batch to reading its ack, one per batch."""
    not_accepted: int
    """Acks other than ACCEPTED (there should be none: every batch is new and the buffer has room)."""


def write_batches(path: Path, batches: dict[str, list[bytes]]) -> None:
    """Hand a process its nodes' batches through a file (pipes would copy them through the parent)."""
    path.write_bytes(pickle.dumps(batches, protocol=pickle.HIGHEST_PROTOCOL))


async def send_all(
    channel: grpc.aio.Channel, batches: list[bytes], window: int, go: asyncio.Event
) -> tuple[float, float, list[float], int]:
    """Once `go` is set, stream `batches` on one call with at most `window` unacknowledged: (first send,
    last ack, seconds from write to ack per batch, acks other than ACCEPTED)."""
    call = channel.stream_stream(codec.STREAM_METHOD, None, None)(None)
    slots = asyncio.Semaphore(window)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    rejected = 0
    loop = asyncio.get_running_loop()

    async def reader() -> None:
        nonlocal rejected
        for _ in batches:
            ack = codec.decode_ack(await call.read())  # type: ignore[arg-type]
            latencies.append(loop.time() - sent.pop(ack.seq))
            rejected += ack.status is not AckStatus.ACCEPTED
            slots.release()

    await go.wait()
    reading = asyncio.create_task(reader())
    first = loop.time()
    for seq, payload in enumerate(batches):
        await slots.acquire()
        sent[seq] = loop.time()
        await call.write(payload)
    await reading
    last = loop.time()
    await call.done_writing()
    return first, last, latencies, rejected


def run_agent(
    pki: Path, port: int, batch_file: Path, window: int, cpus: set[int], control: Connection
) -> None:
    """Connect every node's channel, say "ready", wait for "go", stream, send back an AgentResult."""
    os.sched_setaffinity(0, cpus)
    batches: dict[str, list[bytes]] = pickle.loads(batch_file.read_bytes())

    async def run() -> AgentResult:
        # asyncio's loop.time() is time.monotonic(), the clock the parent reads too.
        channels = []
        for node in batches:
            cert, key = certificates.node_cert_names(node)
            tls = TlsSettings(cert=pki / cert, key=pki / key, ca=pki / certificates.CA_CERT)
            credentials = channel_credentials(tls)
            assert credentials is not None
            channel = grpc.aio.secure_channel(
                f"127.0.0.1:{port}", credentials, options=[("grpc.max_send_message_length", 64 * 2**20)]
            )
            await channel.channel_ready()
            channels.append(channel)
        go = asyncio.Event()
        streams = [
            asyncio.create_task(send_all(channel, node_batches, window, go))
            for channel, node_batches in zip(channels, batches.values(), strict=True)
        ]
        control.send("ready")
        await asyncio.get_running_loop().run_in_executor(None, control.recv)
        go.set()
        results = await asyncio.gather(*streams)
        for channel in channels:
            await channel.close(None)
        return AgentResult(
            first_send=min(r[0] for r in results),
            last_ack=max(r[1] for r in results),
            latencies=[latency for r in results for latency in r[2]],
            not_accepted=sum(r[3] for r in results),
        )

    control.send(asyncio.run(run()))
