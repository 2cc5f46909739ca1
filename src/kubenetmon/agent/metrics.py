"""The agent's Prometheus metrics, in a registry per daemon (served by `kubenetmon.status_http`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
        self.duplicate_destroys = Counter(
            "kubenetmon_agent_duplicate_destroy_events",
            "DESTROY events identical to one already applied (same key, same final counters), ignored. "
            "With nf_conntrack_timestamp=0 a new connection on the same 5-tuple that got the old entry's "
            "id and carried exactly the same bytes looks the same and is counted here instead.",
            registry=r,
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


def recent(last: float, interval: float, now: Callable[[], float] = time.time) -> bool:
    """True when `last` (a success timestamp) is within three intervals (and 30 s) of now."""
    return last > 0 and now() - last <= max(3 * interval, 30.0)
