"""AgentDaemon: readiness checks, baseline, one batch per interval to a RecordSink, clean shutdown.

Order matters for exactness. The DESTROY socket is opened before the baseline dump, so no flow can end
unseen between the two. DESTROY events are applied as they arrive (an event-loop reader) and the socket
is drained right before and right after every dump, so a flow missing from a dump has its DESTROY
applied before its tombstone could expire. The dump itself runs synchronously in the loop: nothing else
touches the tracker while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable

from prometheus_client import REGISTRY

from kubenetmon import status_http
from kubenetmon.agent import doctor, memory, state
from kubenetmon.agent.doctor import Status
from kubenetmon.agent.filters import flow_filter
from kubenetmon.agent.interval import IntervalClock
from kubenetmon.agent.metrics import AgentMetrics, recent
from kubenetmon.agent.settings import AgentSettings
from kubenetmon.agent.tracker import DeltaTracker
from kubenetmon.conntrack import netlink, netns
from kubenetmon.conntrack.dump import TableReader
from kubenetmon.conntrack.events import DestroyListener
from kubenetmon.conntrack.parse import ParseStats
from kubenetmon.errors import NotReady
from kubenetmon.records import Batch, LossReason, LossReport, RecordSink
from kubenetmon.signals import stop_on_signals

log = logging.getLogger(__name__)


class AgentDaemon:
    """One agent: reads one namespace's conntrack table and hands a Batch per interval to `sink`."""

    def __init__(
        self,
        settings: AgentSettings,
        sink: RecordSink,
        *,
        metrics: AgentMetrics | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.metrics = metrics if metrics is not None else AgentMetrics()
        self._now = wall_clock
        self.parse_stats = ParseStats()
        self.tracker = DeltaTracker(
            settings.destroy_grace,
            flow_filter(settings.ignored_protocol_numbers, settings.ignore_cidrs, settings.ignore_zones),
        )
        self.epoch = secrets.token_hex(8)
        self.seq = 0
        self._reader: TableReader | None = None
        self._listener: DestroyListener | None = None
        self._clock: IntervalClock | None = None
        self._stop = asyncio.Event()
        self._last_success = 0.0
        self._accounted = {"overflows": 0, "malformed": 0}
        self._identity = ""

    def request_stop(self) -> None:
        """Ask the loop to close the current (partial) interval and shut down. Safe from signal handlers."""
        self._stop.set()

    async def run(self) -> None:
        """startup, one interval after another until stopped, then shutdown; SIGTERM/SIGINT stop it."""
        runner = None
        with stop_on_signals(self.request_stop):
            try:
                await self.startup()
                if self.settings.metrics_port:
                    # The default registry holds the transport's metrics when the sink is gRPC.
                    runner = await status_http.serve(
                        self.settings.metrics_host,
                        self.settings.metrics_port,
                        {"/healthz": self._health},
                        registries=(self.metrics.registry, REGISTRY),
                    )
                await self.main_loop()
            finally:
                await self.shutdown()
                if runner is not None:
                    await runner.cleanup()

    def healthy(self) -> bool:
        """True while intervals are being delivered on time."""
        return recent(self._last_success, self.settings.interval, self._now)

    def _health(self) -> tuple[bool, str]:
        if self.healthy():
            return True, "ok"
        return False, "no interval delivered recently"

    async def startup(self) -> None:
        """Readiness checks, sockets (events first), then the baseline dump or the saved state."""
        memory.return_large_blocks_to_the_os()
        for result in doctor.run_checks(self.settings.netns, fix=self.settings.configure_sysctls):
            if result.status is Status.FAIL:
                log.error("%s", result.log_line())
            elif result.status is Status.WARN:
                log.warning("%s", result.log_line())
            else:
                log.info("%s", result.log_line())
        namespace = self.settings.netns
        try:
            self._listener = DestroyListener(
                netns.run_in(namespace, netlink.open_socket),
                self.parse_stats,
                self.settings.event_buffer_bytes,
            )
            self._reader = TableReader(netns.run_in(namespace, netlink.open_socket), self.parse_stats)
        except OSError as exc:
            raise NotReady(
                f"cannot open ctnetlink sockets ({exc.strerror}): run as root or with CAP_NET_ADMIN"
            ) from exc
        asyncio.get_running_loop().add_reader(self._listener.fileno(), self._apply_destroys)
        self._identity = state.namespace_identity(namespace)
        self._restore_state()
        started = self._now()
        self._clock = IntervalClock(self.settings.interval, started)
        self._dump()
        self.tracker.end_baseline()
        log.info(
            "agent started: node %s, interval %ss, %d flows tracked, epoch %s",
            self.settings.node,
            self.settings.interval,
            self.tracker.tracked_flows,
            self.epoch,
        )

    async def main_loop(self) -> None:
        """Close one interval at each boundary until a stop is requested."""
        assert self._clock is not None
        while not self._stop.is_set():
            delay = self._clock.next_end() - self._now()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    return
            await self.close_interval(self._clock.boundary_for(self._now()))

    async def close_interval(self, end: float) -> Batch:
        """Dump, apply events, and hand the interval ending at `end` to the sink."""
        assert self._clock is not None
        self._dump()
        self.tracker.expire(time.monotonic())
        self._note_socket_losses()
        start, end = self._clock.close(end)
        records, losses = self.tracker.close_interval(self.settings.node, start, end)
        batch = Batch(self.settings.node, self.epoch, self.seq, records, losses)
        self.seq += 1
        await self.sink.submit(batch)
        self._after_batch(batch)
        return batch

    async def shutdown(self) -> None:
        """Emit the last partial interval, drain the sink, save state, close sockets."""
        if self._listener is not None:
            asyncio.get_running_loop().remove_reader(self._listener.fileno())
        try:
            if self._reader is not None and self._clock is not None:
                await self.close_interval(max(self._now(), self._clock.start))
                self._save_state()
        finally:
            await self.sink.aclose(self.settings.drain_timeout)
            for closable in (self._reader, self._listener):
                if closable is not None:
                    closable.close()
            self._reader = self._listener = None

    def _dump(self) -> None:
        assert self._reader is not None
        self._apply_destroys()
        began = time.perf_counter()
        entries = self.tracker.observe_dump(self._reader.sightings(), time.monotonic())
        self._apply_destroys()
        self.metrics.dump_duration.observe(time.perf_counter() - began)
        self.metrics.dump_entries.set(entries)
        self.metrics.tracked_flows.set(self.tracker.tracked_flows)

    def _apply_destroys(self) -> None:
        if self._listener is not None:
            stats = self.tracker.stats
            seen, duplicates = stats.destroys_seen, stats.duplicate_destroys
            self.tracker.observe_destroys(self._listener.drain(), time.monotonic())
            self.metrics.destroy_events.inc(stats.destroys_seen - seen)
            self.metrics.duplicate_destroys.inc(stats.duplicate_destroys - duplicates)

    def _note_socket_losses(self) -> None:
        assert self._listener is not None
        overflows = self._listener.overflows - self._accounted["overflows"]
        malformed = self.parse_stats.malformed_messages - self._accounted["malformed"]
        self._accounted = {
            "overflows": self._listener.overflows,
            "malformed": self.parse_stats.malformed_messages,
        }
        if overflows:
            log.warning(
                "DESTROY events overflowed %d time(s): raise --event-buffer-bytes (now %d granted bytes)",
                overflows,
                self._listener.receive_buffer,
            )
        self.metrics.event_overflows.inc(overflows)
        self.metrics.malformed.inc(malformed)
        self.tracker.note_loss(LossReason.EVENTS_OVERFLOW, overflows)
        self.tracker.note_loss(LossReason.MALFORMED_NETLINK, malformed)

    def _after_batch(self, batch: Batch) -> None:
        self.metrics.records.inc(len(batch.records))
        self.metrics.count_losses(list(batch.losses))
        for reason, count in self.tracker.stats.filtered.items():
            self.metrics.filtered.labels(reason).inc(count)
        self.tracker.stats.filtered.clear()
        self._last_success = self._now()
        self.metrics.last_success.set(self._last_success)
        for loss in batch.losses:
            if loss.reason is not LossReason.BASELINE_AT_START:
                log.warning("%s", _describe_loss(loss))

    def _restore_state(self) -> None:
        directory = self.settings.state_dir
        if directory is None:
            return
        saved, why_not = state.load(directory, self._identity)
        if saved is None:
            log.info("starting from a fresh baseline: %s", why_not)
            return
        self.tracker.restore(saved.live, saved.tombstones, time.monotonic())
        self.epoch, self.seq = saved.epoch, saved.next_seq
        log.info("continuing epoch %s at seq %d with %d saved flows", self.epoch, self.seq, len(saved.live))

    def _save_state(self) -> None:
        if self.settings.state_dir is None:
            return
        live, tombstones = self.tracker.snapshot()
        path = state.save(
            self.settings.state_dir, self._identity, state.SavedState(self.epoch, self.seq, live, tombstones)
        )
        log.info("saved %d flows to %s", len(live), path)


def _describe_loss(loss: LossReport) -> str:
    return f"loss this interval: {loss.reason.value} x{loss.count} ({loss.bytes} bytes known affected)"
