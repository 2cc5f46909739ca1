"""The server's own Prometheus metrics (the transport and the store declare theirs next to their code).

Everything a record can turn into is counted: accepted into the ingest buffer, attributed (by outcome),
stored as rows, or still waiting; agents' in-band loss reports are counted by reason.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BATCHES = Counter(
    "kubenetmon_server_batches_total",
    "Agent batches by ingest decision (accepted, duplicate, retry).",
    ["decision"],
)
RECORDS_RECEIVED = Counter(
    "kubenetmon_server_records_received_total", "Flow records in batches accepted into the ingest buffer."
)
RECORDS_ATTRIBUTED = Counter(
    "kubenetmon_server_records_attributed_total",
    "Flow records attributed, by outcome (attributed, proxied, forwarded, no-cluster-endpoint, unknown-node, "
    "empty). Every outcome still becomes rows; the outcome says how much was known.",
    ["outcome"],
)
AGENT_LOSSES = Counter(
    "kubenetmon_server_agent_losses_total",
    "Loss reports agents sent in-band, by reason (counts: flows, events, batches; see LossReason).",
    ["reason"],
)
AGENT_LOST_BYTES = Counter(
    "kubenetmon_server_agent_lost_bytes_total",
    "Bytes agents reported they could not attribute to an interval, by reason (where they know them).",
    ["reason"],
)
ROWS_STORED = Counter("kubenetmon_server_rows_stored_total", "Aggregated rows inserted into the store.")
INSERT_FAILURES = Counter(
    "kubenetmon_server_insert_failures_total",
    "Insert attempts that failed and will be retried (the data stays in the ingest buffer), by kind.",
    ["kind"],
)
INSERT_SECONDS = Histogram(
    "kubenetmon_server_flush_seconds",
    "Time from starting an insert to its success, retries included.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
STORE_DELAY = Histogram(
    "kubenetmon_server_store_delay_seconds",
    "Time from a batch's acknowledgement to its rows being stored.",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 900, 3600),
)
ACK_SECONDS = Histogram(
    "kubenetmon_server_ack_seconds",
    "Time to make an accepted batch durable in the ingest buffer (what the agent waits for).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BUFFERED_BYTES = Gauge(
    "kubenetmon_server_ingest_buffered_bytes", "Bytes of acknowledged batches not yet stored."
)
