"""`GrpcSink`: the agent's `RecordSink` that streams batches to the server and never drops one silently.

    submit(batch) --> spool (memory, or fsynced to --spool-dir) --> sender task --> one gRPC stream
                        ^ full: drop OLDEST, report it in-band        | acks: forget accepted/duplicate
                                                                      | failure: back off, reopen, resend

The sink numbers batches itself: its spool owns the (epoch, seq) space, so an agent restarted on the same
spool directory resumes it and the server can recognise resent batches. The epoch and seq of a submitted
`Batch` are therefore replaced.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from kubenetmon.errors import Unavailable
from kubenetmon.records import Batch, FlowRecord, LossReport
from kubenetmon.transport import codec
from kubenetmon.transport.backoff import BackoffPolicy, backoff_delay
from kubenetmon.transport.metrics import (
    AGENT_ACKS,
    AGENT_LOST_BATCHES,
    AGENT_LOST_RECORDS,
    AGENT_SPOOL_BATCHES,
    AGENT_SPOOL_BYTES,
    AGENT_STREAM_FAILURES,
)
from kubenetmon.transport.ratelimit import RateLimitedLog
from kubenetmon.transport.spool import Spool, describe_dropped, merge_losses
from kubenetmon.transport.tls import TlsSettings, channel_credentials, channel_options

log = logging.getLogger(__name__)

# Pings keep NAT/conntrack state alive and detect a dead server within ~40 s on an idle stream.
_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
]


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Where and how an agent sends its batches."""

    target: str
    """Server address, host:port (a Service name in a cluster)."""
    tls: TlsSettings = field(default_factory=TlsSettings)
    spool_dir: Path | None = None
    """Directory for the on-disk spool (a hostPath on the node); None keeps the spool in memory only,
    so unacknowledged batches are lost when the agent stops."""
    spool_max_bytes: int = 256 * 1024 * 1024
    """Bound on spooled (encoded) batches; beyond it the oldest are dropped and reported."""
    max_records_per_batch: int = 8192
    """Larger batches are split. At most 8192, which every valid server configuration accepts."""
    max_in_flight: int = 8
    """Batches sent but not yet acknowledged, at most (the server may ask for fewer)."""
    ack_timeout: float = 120.0
    """Seconds without an acknowledgement for the oldest batch in flight before the stream is reopened."""
    compression: bool = False
    """gzip each message (about 3x fewer bytes on the wire for some CPU on both ends)."""
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)

    def problems(self) -> list[str]:
        """Every reason these settings cannot work; empty when fine."""
        found = self.tls.problems()
        if not self.target:
            found.append("the server address is required")
        if not 1 <= self.max_records_per_batch <= 8192 or self.max_in_flight < 1:
            found.append("max records per batch must be 1..8192 and max in flight at least 1")
        if self.spool_max_bytes < 1024 * 1024:
            found.append(f"the spool bound {self.spool_max_bytes} is below 1 MiB")
        if self.ack_timeout <= 0:
            found.append("the ack timeout must be positive")
        return found


class GrpcSink:
    """A `RecordSink` over gRPC. Create it with `open()` inside a running event loop."""

    def __init__(self, settings: ClientSettings, spool: Spool) -> None:
        self._settings = settings
        self._spool = spool
        self._on_disk = settings.spool_dir is not None
        self._limited = RateLimitedLog(log)
        self._losses: list[LossReport] = []
        """Loss reports waiting for the next batch."""
        self._node = ""
        self._max_records = settings.max_records_per_batch
        self._window = settings.max_in_flight
        self._pause_until = 0.0
        self._in_flight: deque[tuple[int, float]] = deque()
        self._resend: list[int] = []
        self._cursor = -1
        self._acked = False
        self._changed = asyncio.Event()
        self._drained = asyncio.Event()
        self._closing = False
        self._pending_changed()
        self.task = asyncio.create_task(self._run(), name="sender")
        """The sender; it runs until `aclose`, reconnecting as needed, and never returns on its own."""

    @classmethod
    def open(cls, settings: ClientSettings) -> GrpcSink:
        """A sink on a fresh memory spool, or on the on-disk spool (resending what it holds)."""
        if settings.tls.insecure:
            log.warning("sending batches WITHOUT TLS to %s: plaintext, server not verified", settings.target)
        if settings.spool_dir is None:
            spool = Spool.in_memory(settings.spool_max_bytes)
        else:
            spool = Spool.on_disk(settings.spool_dir, settings.spool_max_bytes)
        return cls(settings, spool)

    @property
    def epoch(self) -> str:
        """The sequence space batches are numbered in."""
        return self._spool.epoch

    @property
    def pending_batches(self) -> int:
        """Batches not yet acknowledged by the server."""
        return self._spool.pending_batches

    async def submit(self, batch: Batch) -> None:
        """Spool a batch (split if larger than the server accepts); it carries any pending loss reports."""
        if self._closing:
            raise RuntimeError("GrpcSink.submit called after aclose")
        self._node = batch.node
        losses = merge_losses([*self._losses, *batch.losses])
        self._losses = []
        records = list(batch.records)
        size = self._max_records
        chunks = [records[i : i + size] for i in range(0, len(records), size)] or [[]]
        for index, chunk in enumerate(chunks):
            self._enqueue(chunk, losses if index == 0 else [])

    async def aclose(self, timeout: float) -> None:  # noqa: ASYNC109 - a drain budget, not a cancel scope
        """Wait up to `timeout` s for every batch to be acknowledged, then stop. What is left stays in the
        on-disk spool for the next start, or (memory spool) is counted and logged as lost."""
        if self._closing:
            return
        self._closing = True
        if self._losses:
            self._enqueue([], self._losses)
        try:
            async with asyncio.timeout(timeout):
                await self._drained.wait()
        except TimeoutError:
            pass
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self._give_up_on_pending()
        self._spool.close()

    def _enqueue(self, records: list[FlowRecord], losses: list[LossReport]) -> None:
        batch = Batch(self._node, self._spool.epoch, self._spool.next_seq, records, tuple(losses))
        dropped = self._spool.add(codec.encode_batch(batch))
        if dropped:
            described = describe_dropped(dropped)
            self._losses = merge_losses([*self._losses, *described.reports()])
            records_lost = described.overflow.count
            AGENT_LOST_BATCHES.labels(reason="spool_overflow").inc(len(dropped))
            AGENT_LOST_RECORDS.labels(reason="spool_overflow").inc(records_lost)
            self._limited.log(
                logging.WARNING,
                "overflow",
                "spool full (%d bytes): dropped the %d oldest batches (%d flow records), reported as lost "
                "in the next batch; is the server reachable? (or raise the spool bound)",
                self._spool.max_bytes,
                len(dropped),
                records_lost,
            )
        self._changed.set()
        self._pending_changed()

    def _give_up_on_pending(self) -> None:
        pending = list(self._spool.pending())
        if not pending:
            return
        if self._on_disk:
            log.warning(
                "%d unacknowledged batches stay in %s and are resent at the next start",
                len(pending),
                self._settings.spool_dir,
            )
            return
        records = sum(len(codec.decode_batch(payload, 2**31).records) for _, payload in pending)
        AGENT_LOST_BATCHES.labels(reason="shutdown").inc(len(pending))
        AGENT_LOST_RECORDS.labels(reason="shutdown").inc(records)
        log.error(
            "%d batches (%d flow records) were never acknowledged and are lost at shutdown; "
            "use a spool directory to keep them",
            len(pending),
            records,
        )

    async def _run(self) -> None:
        failures = 0
        while True:
            self._acked = False
            try:
                await self._stream_once()
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                self._stream_failed(exc.code().name, f"{exc.code().name}: {exc.details()}")
            except Unavailable as exc:
                self._stream_failed("UNAVAILABLE", str(exc))
            except Exception as exc:
                log.exception("sender failed unexpectedly; reconnecting")
                self._stream_failed("INTERNAL", repr(exc))
            failures = 1 if self._acked else failures + 1
            await asyncio.sleep(backoff_delay(self._settings.backoff, failures, random.random()))

    def _stream_failed(self, code: str, detail: str) -> None:
        AGENT_STREAM_FAILURES.labels(code=code).inc()
        if code in {"PERMISSION_DENIED", "UNAUTHENTICATED"}:
            level = logging.ERROR
        elif self._acked:  # a working stream that ended: server restart, drain or rotation
            level = logging.INFO
        else:
            level = logging.WARNING
        self._limited.log(
            level,
            f"stream-{code}",
            "stream to %s ended (%s); %d batches pending; reconnecting after a backoff",
            self._settings.target,
            detail,
            self._spool.pending_batches,
        )

    async def _stream_once(self) -> None:
        options = [*_CHANNEL_OPTIONS, *channel_options(self._settings.tls)]
        credentials = channel_credentials(self._settings.tls)
        if credentials is None:
            channel = grpc.aio.insecure_channel(self._settings.target, options=options)
        else:
            channel = grpc.aio.secure_channel(self._settings.target, credentials, options=options)
        compression = grpc.Compression.Gzip if self._settings.compression else grpc.Compression.NoCompression
        try:
            stream = channel.stream_stream(codec.STREAM_METHOD, None, None)
            call = stream(None, compression=compression)
            self._in_flight.clear()
            self._resend.clear()
            self._cursor = -1
            workers = [
                asyncio.create_task(self._write(call), name="sender writer"),
                asyncio.create_task(self._read(call), name="sender reader"),
                asyncio.create_task(self._watch_acks(), name="sender ack watchdog"),
            ]
            try:
                done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
            for worker in done:
                worker.result()
        finally:
            await channel.close(grace=None)

    async def _write(self, call: grpc.aio.StreamStreamCall[bytes, bytes]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            seq = await self._next_to_send()
            payload = self._spool.read(seq)
            if payload is None:
                continue
            self._in_flight.append((seq, loop.time()))
            await call.write(payload)

    async def _next_to_send(self) -> int:
        loop = asyncio.get_running_loop()
        while True:
            if self._pause_until > loop.time():
                await asyncio.sleep(self._pause_until - loop.time())
                continue
            if len(self._in_flight) < self._window:
                seq = self._pick()
                if seq is not None:
                    return seq
            self._changed.clear()
            await self._changed.wait()

    def _pick(self) -> int | None:
        while self._resend:
            seq = heapq.heappop(self._resend)
            if self._spool.is_pending(seq):
                return seq
        following = self._spool.next_after(self._cursor)
        if following is not None:
            self._cursor = following
        return following

    async def _read(self, call: grpc.aio.StreamStreamCall[bytes, bytes]) -> None:
        while True:
            raw = await call.read()
            if not isinstance(raw, bytes):  # grpc.aio.EOF
                raise Unavailable(f"server ended the stream: {await call.code()} {await call.details()}")
            self._on_ack(codec.decode_ack(raw))

    async def _watch_acks(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self._settings.ack_timeout
        while True:
            await asyncio.sleep(timeout / 4)
            if self._in_flight and loop.time() - self._in_flight[0][1] > timeout:
                raise Unavailable(f"no acknowledgement for batch {self._in_flight[0][0]} within {timeout} s")

    def _on_ack(self, ack: codec.Ack) -> None:
        if not self._in_flight:
            raise Unavailable(f"server acknowledged batch {ack.seq}, but none is in flight")
        seq, _ = self._in_flight.popleft()
        if ack.seq != seq:
            raise Unavailable(f"server acknowledged batch {ack.seq} where {seq} was next; resynchronising")
        AGENT_ACKS.labels(status=ack.status.name.lower()).inc()
        self._apply_hints(ack)
        if ack.status is codec.AckStatus.RETRY:
            heapq.heappush(self._resend, seq)
        elif ack.status is codec.AckStatus.REJECTED:
            self._drop_rejected(seq, ack.reason)
        else:
            self._spool.ack(seq)
            self._acked = True
        self._changed.set()
        self._pending_changed()

    def _apply_hints(self, ack: codec.Ack) -> None:
        settings = self._settings
        if ack.max_in_flight:
            self._window = min(settings.max_in_flight, ack.max_in_flight)
        if ack.max_records_per_batch:
            self._max_records = min(settings.max_records_per_batch, ack.max_records_per_batch)
        delay_ms = ack.retry_after_ms
        if ack.status is codec.AckStatus.RETRY and not delay_ms:
            delay_ms = int(settings.backoff.initial * 1000)
        if delay_ms:
            loop = asyncio.get_running_loop()
            self._pause_until = max(self._pause_until, loop.time() + delay_ms / 1000)

    def _drop_rejected(self, seq: int, reason: str) -> None:
        payload = self._spool.read(seq)
        self._spool.ack(seq)
        records = 0 if payload is None else len(codec.decode_batch(payload, 2**31).records)
        AGENT_LOST_BATCHES.labels(reason="rejected").inc()
        AGENT_LOST_RECORDS.labels(reason="rejected").inc(records)
        self._limited.log(
            logging.ERROR,
            "rejected",
            "server rejected batch %d (%d flow records), which is dropped: %s",
            seq,
            records,
            reason,
        )

    def _pending_changed(self) -> None:
        if self._spool.pending_batches:
            self._drained.clear()
        else:
            self._drained.set()
        AGENT_SPOOL_BATCHES.set(self._spool.pending_batches)
        AGENT_SPOOL_BYTES.set(self._spool.pending_bytes)
