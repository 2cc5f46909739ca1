"""The server end of the agent stream: validate each batch, check who sent it, hand it to a `BatchHandler`
and acknowledge it once the handler says it is durable.

Per stream, batches are handled one at a time in arrival order and each gets exactly one ack. A bad
batch is rejected with a precise reason and counted; only a batch claiming another node than the client
certificate vouches for ends its stream (PERMISSION_DENIED). Nothing one stream sends can disturb another.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import grpc

from kubenetmon.records import Batch
from kubenetmon.transport import codec
from kubenetmon.transport.codec import Ack, AckStatus, InvalidBatch
from kubenetmon.transport.metrics import (
    SERVER_BATCHES,
    SERVER_HANDLER_ERRORS,
    SERVER_RECORDS,
    SERVER_REJECTED,
    SERVER_STREAMS,
)
from kubenetmon.transport.ratelimit import RateLimitedLog
from kubenetmon.transport.tls import PeerIdentity, TlsSettings, peer_identity, server_credentials

__all__ = ["AckDecision", "AckStatus", "BatchHandler", "FlowServer", "PeerIdentity", "ServiceSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AckDecision:
    """A handler's verdict on one batch."""

    status: AckStatus
    reason: str = ""
    """Why, for REJECTED and RETRY; sent to the agent and logged there."""
    retry_after_ms: int = 0
    """For RETRY (and as a slow-down hint with any status): no new batches from this agent for this long."""

    @classmethod
    def accepted(cls) -> AckDecision:
        """The batch is durable."""
        return cls(AckStatus.ACCEPTED)

    @classmethod
    def duplicate(cls) -> AckDecision:
        """This (node, epoch, seq) was already durable."""
        return cls(AckStatus.DUPLICATE)

    @classmethod
    def rejected(cls, reason: str) -> AckDecision:
        """The batch can never be accepted; the agent drops it and counts it as lost."""
        return cls(AckStatus.REJECTED, reason)

    @classmethod
    def retry(cls, after_ms: int, reason: str) -> AckDecision:
        """Not taken now (overload, storage down); the agent keeps it and resends after `after_ms`."""
        return cls(AckStatus.RETRY, reason, after_ms)


class BatchHandler(Protocol):
    """What the service needs from the server."""

    async def handle(self, batch: Batch, peer: PeerIdentity) -> AckDecision:
        """Return ACCEPTED only once the batch is durable, DUPLICATE if it already was (recognised by
        (node, epoch, seq)), or REJECTED/RETRY. May take its time: that is the back-pressure."""
        ...


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """The gRPC listener and its limits."""

    listen: str = "[::]:7439"
    """host:port to listen on; port 0 picks a free one (see `FlowServer.port`)."""
    tls: TlsSettings = field(default_factory=TlsSettings)
    max_batch_bytes: int = 16 * 1024 * 1024
    """Larger batches are rejected with a reason. gRPC itself cuts off messages over twice this (ending
    that stream with RESOURCE_EXHAUSTED), so a runaway sender cannot make the server buffer more."""
    max_records_per_batch: int = 65536
    """Larger batches are rejected; announced to agents, which split their batches below it."""
    max_in_flight_hint: int = 8
    """Unacknowledged batches an agent may keep in flight, announced in every ack."""
    handler_error_retry_ms: int = 1000
    """When the handler raises, the agent is told to resend the batch after this long."""
    max_stream_age: float = 300.0
    """After about this long (+-10 %) a stream ends at a batch boundary with UNAVAILABLE, so agents
    reconnect and spread over the server replicas (a ClusterIP Service balances per connection)."""

    def problems(self) -> list[str]:
        """Every reason these settings cannot work; empty when fine."""
        found = self.tls.problems()
        # An agent's largest batch (8192 records of at most ~160 bytes) must always fit.
        if self.max_batch_bytes < 4 * 1024 * 1024:
            found.append(f"the batch size limit {self.max_batch_bytes} is below 4 MiB")
        if self.max_records_per_batch < 8192:
            found.append(f"the records-per-batch limit {self.max_records_per_batch} is below 8192")
        if self.max_in_flight_hint < 1 or self.max_stream_age <= 0:
            found.append("the in-flight hint must be at least 1 and the stream age positive")
        return found


class FlowServer:
    """A grpc.aio server running `FlowService.Stream` for a handler. `start()`, then `stop(grace)`."""

    def __init__(
        self,
        handler: BatchHandler,
        settings: ServiceSettings,
        authorize: Callable[[PeerIdentity, str], bool] = PeerIdentity.may_report_for,
    ) -> None:
        """`authorize(peer, node)` says whether `peer` may send batches for `node`; the default trusts
        node names in the certificate only, the server adds pod identities it can place on nodes."""
        self._handler = handler
        self._settings = settings
        self._authorize = authorize
        self._draining = asyncio.Event()
        self._limited = RateLimitedLog(log)
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", 2 * settings.max_batch_bytes),
                ("grpc.so_reuseport", 0),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 20_000),
                # A backstop only: streams end themselves at a batch boundary well before this.
                ("grpc.max_connection_age_ms", int(settings.max_stream_age * 2000)),
                ("grpc.max_connection_age_grace_ms", 60_000),
            ]
        )
        # Raw bytes in and out: decoding happens in `codec`, where it is validated and measured.
        method = grpc.stream_stream_rpc_method_handler(self._stream)
        service, name = codec.STREAM_METHOD.strip("/").split("/")
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {name: method}),)
        )
        credentials = server_credentials(settings.tls)
        if credentials is None:
            log.warning("serving agents WITHOUT TLS: they are not authenticated and node names are trusted")
            self.port = self._server.add_insecure_port(settings.listen)
        else:
            self.port = self._server.add_secure_port(settings.listen, credentials)
        """The bound port (useful with port 0)."""

    async def start(self) -> None:
        """Start accepting streams."""
        await self._server.start()
        log.info("accepting agent streams on %s (port %d)", self._settings.listen, self.port)

    async def stop(self, grace: float) -> None:
        """Refuse new streams, let each open stream finish the batch it is handling (and ack it), end the
        streams with UNAVAILABLE so agents reconnect elsewhere; cancel whatever is left after `grace` s."""
        self._draining.set()
        await self._server.stop(grace)

    async def _stream(self, _requests: object, context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        peer = peer_identity(context.auth_context(), context.peer())
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + self._settings.max_stream_age * random.uniform(0.9, 1.1)
        SERVER_STREAMS.inc()
        try:
            while True:
                raw = await self._next_message(context, ends_at - loop.time())
                if raw is None:
                    return
                ack = await self._answer(raw, peer, context)
                await context.write(codec.encode_ack(ack))
        finally:
            SERVER_STREAMS.dec()

    async def _next_message(
        self, context: grpc.aio.ServicerContext[bytes, bytes], time_left: float
    ) -> bytes | None:
        """The next batch, or None once the agent is done, the server drains or the stream is due to end
        (then with UNAVAILABLE, so the agent reconnects). A batch not read yet is resent by the agent."""
        if not self._draining.is_set() and time_left > 0:
            read = asyncio.ensure_future(context.read())
            drain = asyncio.ensure_future(self._draining.wait())
            try:
                await asyncio.wait({read, drain}, timeout=time_left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                drain.cancel()
            if read.done():
                raw = read.result()
                return raw if isinstance(raw, bytes) else None  # else grpc.aio.EOF
            read.cancel()
        why = "server is shutting down" if self._draining.is_set() else "stream rotated"
        context.set_code(grpc.StatusCode.UNAVAILABLE)
        context.set_details(f"{why}; reconnect")
        return None

    async def _answer(
        self, raw: bytes, peer: PeerIdentity, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> Ack:
        settings = self._settings
        if len(raw) > settings.max_batch_bytes:
            message = f"batch is {len(raw)} bytes, the limit is {settings.max_batch_bytes}"
            return self._reject(InvalidBatch("too_large", message, codec.seq_of(raw)), peer)
        try:
            batch = codec.decode_batch(raw, settings.max_records_per_batch)
        except InvalidBatch as exc:
            return self._reject(exc, peer)
        if not self._authorize(peer, batch.node):
            SERVER_REJECTED.labels(reason="identity_mismatch").inc()
            message = f"batch claims node {batch.node!r}, but the client certificate is for {peer.describe()}"
            self._limited.log(logging.WARNING, "identity", "refused %s: %s", peer.address, message)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)
        try:
            decision = await self._handler.handle(batch, peer)
        except Exception:
            SERVER_HANDLER_ERRORS.inc()
            log.exception(
                "handler failed on batch %s/%d from %s; asking for a resend",
                batch.epoch,
                batch.seq,
                batch.node,
            )
            decision = AckDecision.retry(settings.handler_error_retry_ms, "server error; resend later")
        SERVER_BATCHES.labels(status=decision.status.name.lower()).inc()
        if decision.status is AckStatus.ACCEPTED:
            SERVER_RECORDS.inc(len(batch.records))
        return self._ack(batch.seq, decision)

    def _reject(self, exc: InvalidBatch, peer: PeerIdentity) -> Ack:
        SERVER_REJECTED.labels(reason=exc.kind).inc()
        SERVER_BATCHES.labels(status="rejected").inc()
        self._limited.log(
            logging.WARNING, f"reject-{exc.kind}", "rejected a batch from %s: %s", peer.address, exc
        )
        return self._ack(exc.seq, AckDecision.rejected(str(exc)))

    def _ack(self, seq: int, decision: AckDecision) -> Ack:
        return Ack(
            seq=seq,
            status=decision.status,
            reason=decision.reason,
            retry_after_ms=decision.retry_after_ms,
            max_records_per_batch=self._settings.max_records_per_batch,
            max_in_flight=self._settings.max_in_flight_hint,
        )
