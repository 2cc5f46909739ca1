"""The store's Prometheus metrics, declared once. Every insert outcome and every error is counted."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

INSERTS = Counter(
    "kubenetmon_store_inserts_total",
    "Insert calls (one batch each) by outcome: inserted, or failed after retries / on a permanent error.",
    ["outcome"],
)
ROWS = Counter(
    "kubenetmon_store_rows_total",
    "Table rows by outcome: inserted, or failed (the caller still holds them; nothing is dropped here).",
    ["outcome"],
)
ERRORS = Counter(
    "kubenetmon_store_errors_total",
    "Store errors by kind (transient: retried; permanent: not) and operation (insert, query, ddl, ping).",
    ["kind", "operation"],
)
RETRIES = Counter(
    "kubenetmon_store_insert_retries_total", "Insert attempts repeated after a transient error."
)
INSERT_SECONDS = Histogram(
    "kubenetmon_store_insert_seconds",
    "Wall time of one successful insert call, retries included.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
