"""The transport's Prometheus metrics, declared once. Reasons and outcomes are labels from fixed sets."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# Agent side (GrpcSink and its spool).
AGENT_LOST_RECORDS = Counter(
    "kubenetmon_agent_transport_lost_records_total",
    "Flow records the agent's transport gave up on, by reason "
    "(spool_overflow, rejected, shutdown, corrupt_spool).",
    ["reason"],
)
AGENT_LOST_BATCHES = Counter(
    "kubenetmon_agent_transport_lost_batches_total",
    "Batches the agent's transport gave up on, by reason (as for lost records).",
    ["reason"],
)
AGENT_ACKS = Counter(
    "kubenetmon_agent_transport_acks_total",
    "Acknowledgements received from the server, by status (accepted, duplicate, rejected, retry).",
    ["status"],
)
AGENT_STREAM_FAILURES = Counter(
    "kubenetmon_agent_transport_stream_failures_total",
    "Streams to the server that ended and were reopened after a backoff, by gRPC status code.",
    ["code"],
)
AGENT_SPOOL_BATCHES = Gauge(
    "kubenetmon_agent_transport_spool_batches", "Batches waiting in the spool for an acknowledgement."
)
AGENT_SPOOL_BYTES = Gauge(
    "kubenetmon_agent_transport_spool_bytes", "Encoded bytes of the batches waiting in the spool."
)
AGENT_SPOOL_RECOVERED = Counter(
    "kubenetmon_agent_transport_spool_recovery_total",
    "What reopening the on-disk spool found: batches replayed, torn_bytes cut off, lost_batches.",
    ["what"],
)

# Server side (FlowService).
SERVER_BATCHES = Counter(
    "kubenetmon_server_transport_batches_total",
    "Batches answered, by ack status (accepted, duplicate, rejected, retry).",
    ["status"],
)
SERVER_RECORDS = Counter(
    "kubenetmon_server_transport_records_total", "Flow records in batches the handler accepted."
)
SERVER_REJECTED = Counter(
    "kubenetmon_server_transport_rejected_batches_total",
    "Batches refused before reaching the handler, by reason (too_large, undecodable, too_many_records, "
    "bad_address, ..., identity_mismatch).",
    ["reason"],
)
SERVER_HANDLER_ERRORS = Counter(
    "kubenetmon_server_transport_handler_errors_total",
    "Batches whose handler raised; the agent was told to retry them.",
)
SERVER_STREAMS = Gauge("kubenetmon_server_transport_streams", "Agent streams currently open.")
