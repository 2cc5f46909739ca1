"""The agent's Prometheus metrics, in a registry per daemon, and the /metrics + /healthz endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kubenetmon.records import LossReport


class AgentMetrics:
    """Every metric the agent exports. Each daemon owns one (its own registry, so tests can run several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.dump_duration = Histogram(
            "kubenetmon_agent_dump_duration_seconds",
            "Wall time of one conntrack dump including delta computation.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
            registry=r,
        )
        self.dump_entries = Gauge(
            "kubenetmon_agent_dump_entries", "Entries in the last conntrack dump.", registry=r
        )
        self.tracked_flows = Gauge(
            "kubenetmon_agent_tracked_flows", "Flows whose previous counters are held.", registry=r
        )
        self.records = Counter(
            "kubenetmon_agent_records_emitted", "Flow records handed to the sink.", registry=r
        )
        self.losses = Counter(
            "kubenetmon_agent_losses", "Things that could not be reported exactly.", ["reason"], registry=r
        )
        self.lost_bytes = Counter(
            "kubenetmon_agent_lost_bytes", "Bytes known to be affected by losses.", ["reason"], registry=r
        )
        self.event_overflows = Counter(
            "kubenetmon_agent_event_overflows", "ENOBUFS on the DESTROY event socket.", registry=r
        )
        self.malformed = Counter(
            "kubenetmon_agent_malformed_messages", "Netlink messages skipped as malformed.", registry=r
        )
        self.destroy_events = Counter(
            "kubenetmon_agent_destroy_events", "DESTROY events received.", registry=r
        )
        self.filtered = Counter(
            "kubenetmon_agent_filtered_flows", "Flow deltas not reported, by reason.", ["reason"], registry=r
        )
        self.last_success = Gauge(
            "kubenetmon_agent_last_successful_interval_timestamp_seconds",
            "Unix time at which the last interval was handed to the sink.",
            registry=r,
        )

    def count_losses(self, losses: list[LossReport]) -> None:
        """Add one interval's loss reports."""
        for loss in losses:
            self.losses.labels(loss.reason.value).inc(loss.count)
            if loss.bytes:
                self.lost_bytes.labels(loss.reason.value).inc(loss.bytes)


async def serve(metrics: AgentMetrics, host: str, port: int, healthy: Callable[[], bool]) -> web.AppRunner:
    """Serve /metrics and /healthz (200 while `healthy()`, else 503) until the runner is cleaned up."""

    async def metrics_page(request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health_page(request: web.Request) -> web.Response:
        ok = healthy()
        return web.Response(status=200 if ok else 503, text="ok\n" if ok else "no recent interval\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/healthz", health_page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def recent(last: float, interval: float, now: Callable[[], float] = time.time) -> bool:
    """True when `last` (a success timestamp) is within three intervals (and 30 s) of now."""
    return last > 0 and now() - last <= max(3 * interval, 30.0)
