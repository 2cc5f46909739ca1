"""ServerDaemon: agents' batches in, attributed rows out, and nothing lost on the way or at shutdown.

    agents --gRPC--> FlowServer --handle()--> IngestLog (fsync, then ack)
                                                 |
                 inventory (Kubernetes and/or static file) + cloud ranges
                                                 v
                                 Flusher: attribute -> aggregate -> insert -> commit

Root tasks, each named, any of which ending stops the daemon: "store flusher" (schema, then inserts),
"store probe", "inventory ..." (one per Kubernetes kind, plus pruning), "static inventory",
"cloud ranges refresher". Attribution waits for the inventory's first full sync (bounded by
`inventory_timeout`), while batches are already accepted into the durable buffer.

SIGTERM/SIGINT only set a flag. Shutdown then stops taking streams (each finishes its batch and ack),
inserts what is buffered within `shutdown_grace`, and leaves anything the store could not take in the
buffer for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from kubenetmon import status_http
from kubenetmon.errors import InventoryError, PermanentStoreError, StoreError
from kubenetmon.records import Batch
from kubenetmon.server import metrics
from kubenetmon.server.attribution.attribute import Attributor
from kubenetmon.server.attribution.lookups import ExternalSources, FirstAnswer, Inventory, Lookups, Nothing
from kubenetmon.server.cloud.refresh import RangeRefresher
from kubenetmon.server.flusher import Flusher
from kubenetmon.server.ingest import IngestLog
from kubenetmon.server.inventory.cluster import KubeInventory
from kubenetmon.server.inventory.static import StaticInventory
from kubenetmon.server.settings import ServerSettings
from kubenetmon.signals import stop_on_signals
from kubenetmon.store.sink import ClickHouseStore
from kubenetmon.transport.codec import AckStatus
from kubenetmon.transport.service import AckDecision, FlowServer, PeerIdentity

log = logging.getLogger(__name__)

_FULL_FRACTION = 0.9
"""Above this share of its bound the ingest buffer reports not-ready, so new agents go elsewhere."""
_PROBE_SECONDS = 10.0
GC_THRESHOLDS = (50_000, 20, 10)
"""`gc.set_threshold` of a server process. The flusher allocates millions of short-lived row tuples; the
default (a young collection every 700 allocations) walks the live ones over and over, about a fifth of
the flusher's CPU (benchmarks/server_e2e.py). Reference cycles are rare on that path, so collecting less
often costs little memory."""


class ServerDaemon:
    """One server process. `run()` it; it implements the transport's BatchHandler."""

    def __init__(self, settings: ServerSettings, *, freeze_heap: bool = False) -> None:
        """`freeze_heap`: once the inventory is loaded (synced, for Kubernetes) and before the first
        insert, move everything allocated so far out of the cyclic garbage collector's sight
        (`gc.freeze`). For a server process; left off when the daemon is part of a larger one (tests)."""
        self.settings = settings.validated()
        self._freeze_heap = freeze_heap
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._schema_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._failure: BaseException | None = None
        self.ingest: IngestLog | None = None
        self.store: ClickHouseStore | None = None
        self.kube: KubeInventory | None = None
        self.static: StaticInventory | None = None
        self.flusher: Flusher | None = None
        self.flow_server: FlowServer | None = None
        self._status: web.AppRunner | None = None

    def request_stop(self) -> None:
        """Begin a graceful shutdown. Safe from signal handlers."""
        self._stop.set()

    async def run(self) -> None:
        """startup, serve until stopped or a root task fails, shutdown. Raises what made a task fail."""
        with stop_on_signals(self.request_stop):
            try:
                await self.startup()
                await self.main_loop()
            finally:
                await self.shutdown()
        if self._failure is not None:
            raise self._failure

    async def startup(self) -> None:
        """Open the buffer and the store, load what attribution needs, then start taking agents."""
        settings = self.settings
        self.ingest = IngestLog(settings.ingest)
        self.store = ClickHouseStore(settings.store)
        log.info(
            "server %s: buffer %s holds %d bytes to store into %s",
            self.ingest.server_id,
            settings.ingest.directory,
            self.ingest.pending_bytes,
            settings.store.display(),
        )
        refresher = await asyncio.to_thread(RangeRefresher, settings.cloud_ranges)
        if settings.static_inventory is not None:
            self.static = await asyncio.to_thread(StaticInventory, settings.static_inventory)
            self._spawn(self.static.watch(settings.static_reload_seconds), "static inventory")
        if settings.kubernetes is not None:
            self.kube = KubeInventory(settings.kubernetes)
            await self.kube.start()
            self._tasks.extend(self.kube.tasks)
        if settings.cloud_ranges.interval_seconds > 0 and any(settings.cloud_ranges.urls.values()):
            self._spawn(refresher.run(), "cloud ranges refresher")
        attributor = Attributor(self._lookups(refresher), settings.attribution)
        self.flusher = Flusher(
            self.ingest,
            attributor.attribute,
            self.store,
            settings.flusher,
            bucket_seconds=attributor.settings.bucket_seconds,
        )
        self._spawn(self._store_pipeline(), "store flusher")
        self._spawn(self._probe_store(), "store probe")
        if settings.metrics_port:
            self._status = await status_http.serve(
                settings.metrics_host,
                settings.metrics_port,
                {"/healthz": self.liveness, "/readyz": self.readiness},
            )
        self.flow_server = FlowServer(self, settings.service, self.authorize)
        await self.flow_server.start()

    def _lookups(self, refresher: RangeRefresher) -> Lookups:
        sources: list[Inventory] = []
        if self.kube is not None:
            sources.append(self.kube.index)
        if self.static is not None:
            sources.append(self.static)
        inventory = sources[0] if len(sources) == 1 else FirstAnswer(sources)
        external = ExternalSources(self.static or Nothing(), refresher.ranges)
        return Lookups(inventory, inventory, external)

    async def main_loop(self) -> None:
        """Wait for a stop request or for a root task to end; a task ending is a failure."""
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            done, _ = await asyncio.wait([stop, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        for task in done:
            if task is stop or (self._stop.is_set() and not task.cancelled() and task.exception() is None):
                continue
            error = task.exception() if not task.cancelled() else None
            log.critical(
                "task %r ended unexpectedly (%s); shutting down", task.get_name(), error or "returned"
            )
            self._failure = error or RuntimeError(f"task {task.get_name()} ended")

    async def shutdown(self) -> None:
        """Finish open batches, store what the buffer holds within the grace period, release everything."""
        grace = self.settings.shutdown_grace
        self._stop.set()
        if self.flow_server is not None:
            await self.flow_server.stop(grace)
        pipeline = [t for t in self._tasks if t.get_name() == "store flusher"]
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.gather(*pipeline), timeout=grace)
        if self.flusher is not None and self._schema_ready.is_set():
            try:
                await asyncio.wait_for(self.flusher.drain(), timeout=grace)
            except TimeoutError:
                log.warning(
                    "the store did not take the whole buffer within %.0f s; the rest stays buffered in %s "
                    "and is stored after the next start",
                    grace,
                    self.settings.ingest.directory,
                )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.kube is not None:
            await self.kube.stop()
        if self._status is not None:
            await self._status.cleanup()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
        if self.ingest is not None:
            self.ingest.close()
        log.info("server stopped")

    async def handle(self, batch: Batch, peer: PeerIdentity) -> AckDecision:
        """BatchHandler: acknowledged once durable in the ingest buffer (see `IngestLog.accept`)."""
        assert self.ingest is not None
        started = time.perf_counter()
        decision = await self.ingest.accept(batch)
        metrics.BATCHES.labels(decision=decision.status.name.lower()).inc()
        if decision.status is AckStatus.ACCEPTED:
            metrics.ACK_SECONDS.observe(time.perf_counter() - started)
            metrics.RECORDS_RECEIVED.inc(len(batch.records))
            metrics.BUFFERED_BYTES.set(self.ingest.pending_bytes)
            self._wake.set()
        return decision

    def authorize(self, peer: PeerIdentity, node: str) -> bool:
        """May `peer` send batches for `node`? Node names in its certificate, or an agent pod (SPIFFE
        identity in an agent namespace) that the Kubernetes inventory places on that node."""
        if peer.may_report_for(node):
            return True
        policy = self.settings.agents
        if self.kube is None:
            return False
        return any(
            pod.trust_domain == policy.trust_domain
            and pod.namespace in policy.namespaces
            and self.kube.index.node_of_pod(pod.namespace, pod.name) == node
            for pod in peer.pods
        )

    def liveness(self) -> tuple[bool, str]:
        """Alive unless the ingest buffer failed (only a restart recovers from a failed fsync)."""
        failed = self.ingest.failed if self.ingest is not None else None
        return (failed is None, "ok" if failed is None else str(failed))

    def readiness(self) -> tuple[bool, str]:
        """Ready when every part works: buffer with room, store reachable, inventory synced. A watch that
        fails after the first sync is named in the text but keeps the server ready."""
        problems = []
        if self.ingest is None or self.ingest.failed is not None:
            problems.append("ingest buffer failed")
        elif self.ingest.pending_bytes > _FULL_FRACTION * self.settings.ingest.max_bytes:
            problems.append(
                f"ingest buffer nearly full ({self.ingest.pending_bytes} bytes waiting for the store)"
            )
        if not self._schema_ready.is_set():
            problems.append("store schema not checked yet (store unreachable?)")
        elif self.flusher is not None and self.flusher.store_ok is False:
            problems.append(f"store {self.settings.store.display()} is failing")
        if self.kube is not None and not self.kube.ready:
            problems.append("Kubernetes inventory not synced yet")
        if problems:
            return False, "not ready: " + "; ".join(problems)
        failing = self.kube.failing() if self.kube is not None else []
        if failing:
            # Still ready: the inventory attributes with the view it last had, which beats refusing
            # agents (they would spool) over an API server outage. Said here and in a metric.
            return True, "ready; Kubernetes inventory not current: " + "; ".join(failing)
        return True, "ready"

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    async def _ensure_schema(self) -> None:
        """Create or check the table; retry while the store is unreachable, give up on a real conflict."""
        assert self.store is not None
        delay = 1.0
        while True:
            try:
                await asyncio.to_thread(self.store.ensure_schema)
            except PermanentStoreError:
                raise
            except StoreError as exc:
                log.error(
                    "store %s not usable yet: %s; retrying in %.0f s",
                    self.settings.store.display(),
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(60.0, delay * 2)
                continue
            self._schema_ready.set()
            return

    async def _store_pipeline(self) -> None:
        """The flusher, once the schema exists and the inventory has listed everything once."""
        assert self.flusher is not None
        await self._ensure_schema()
        if self.kube is not None:
            try:
                await self.kube.wait_ready(self.settings.inventory_timeout)
            except InventoryError as exc:
                log.error("%s; attributing with what the inventory has", exc)
        if self._freeze_heap:
            # The inventory and the cloud range table live as long as the process: without this every
            # full collection walks them (hundreds of thousands of objects) while the flusher allocates.
            gc.collect()
            gc.freeze()
        await self.flusher.run(self._stop, self._wake)

    async def _probe_store(self) -> None:
        """Keep `store_ok` honest while nothing is being inserted (readiness reads it)."""
        assert self.store is not None and self.flusher is not None
        await self._schema_ready.wait()
        while not self._stop.is_set():
            self.flusher.store_ok = await asyncio.to_thread(self.store.ping)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=_PROBE_SECONDS)
