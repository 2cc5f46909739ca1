"""The inventory's Prometheus metrics, declared once. Labels: `kind` is the API resource's plural."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS = Counter(
    "kubenetmon_inventory_watch_events_total",
    "Watch events received, by kind and event type (ADDED, MODIFIED, DELETED, BOOKMARK).",
    ["kind", "type"],
)
LISTS = Counter(
    "kubenetmon_inventory_lists_total",
    "Completed full lists, by kind and why (initial, or relist after a 410 Gone).",
    ["kind", "reason"],
)
ERRORS = Counter(
    "kubenetmon_inventory_api_errors_total",
    "Failed list or watch requests, by kind and error class (ApiUnavailable, Forbidden, ...).",
    ["kind", "error"],
)
MALFORMED = Counter(
    "kubenetmon_inventory_malformed_objects_total",
    "Objects skipped because a field the inventory needs was missing or malformed.",
    ["kind"],
)
OBJECTS = Gauge(
    "kubenetmon_inventory_objects",
    "Objects the informer currently knows, by kind (deleted ones in their grace period excluded).",
    ["kind"],
)
LISTED = Gauge(
    "kubenetmon_inventory_listed",
    "1 once the kind has completed its first full list (the inventory is ready when all kinds are).",
    ["kind"],
)
FAILING = Gauge(
    "kubenetmon_inventory_failing_seconds",
    "Seconds the kind's list or watch has been failing with no success since; 0 while it works. The "
    "inventory stays ready meanwhile, attributing with the view it last had: alert on this instead.",
    ["kind"],
)
PRUNED = Counter(
    "kubenetmon_inventory_pruned_total",
    "Deleted objects and released addresses forgotten after the deletion grace period.",
)
