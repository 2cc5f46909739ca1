"""`kubenetmon agent`: flags -> AgentSettings -> AgentDaemon with the chosen sink."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from kubenetmon.agent.daemon import AgentDaemon
from kubenetmon.agent.settings import AgentSettings
from kubenetmon.agent.sinks import JsonlSink
from kubenetmon.cli import logging_options, option, setup_logging, tls_options, tls_settings
from kubenetmon.errors import KubenetmonError
from kubenetmon.transport.client import ClientSettings, GrpcSink

# --output choices. Sinks are made inside the running loop (the gRPC sink starts a sender task).
OUTPUTS = ("jsonl", "grpc")


@click.command(help="Meter this node's conntrack table and ship per-interval flow records.")
@option("--node-name", default="", help="Node name on every record (default: the hostname).")
@option("--interval", type=float, default=5.0, show_default=True, help="Seconds per interval.")
@option("--netns", default=None, help="Read the conntrack table of this named network namespace.")
@option(
    "--output",
    type=click.Choice(OUTPUTS),
    default="jsonl",
    show_default=True,
    help="jsonl: records as JSON lines on stdout; grpc: batches to --server over mTLS.",
)
@option("--server", default="", help="kubenetmon-server gRPC address HOST:PORT (for --output grpc).")
@tls_options
@option("--tls-server-name", default="", help="Name to verify in the server certificate, if not HOST.")
@option(
    "--spool-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="On-disk spool of unacknowledged batches (survives restarts); default: memory only.",
)
@option(
    "--spool-max-bytes",
    type=int,
    default=256 * 1024 * 1024,
    show_default=True,
    help="Spool bound; beyond it the oldest batches are dropped, counted and reported.",
)
@option(
    "--metrics-port", type=int, default=0, show_default=True, help="Port for /metrics and /healthz; 0 = off."
)
@option("--metrics-host", default="0.0.0.0", show_default=True, help="Address for the metrics endpoint.")
@option(
    "--configure-sysctls/--no-configure-sysctls",
    default=True,
    show_default=True,
    help="Set nf_conntrack_acct, nf_conntrack_events and nf_conntrack_timestamp to 1 at start if needed.",
)
@option("--ignore-protocol", multiple=True, help="Protocol name or number never reported (repeatable).")
@option("--ignore-cidr", multiple=True, help="Network whose flows are not reported (repeatable).")
@option("--ignore-zone", type=int, multiple=True, help="Conntrack zone not reported (repeatable).")
@option(
    "--destroy-grace",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds a vanished flow waits for its DESTROY before it counts as lost.",
)
@option(
    "--event-buffer-bytes",
    type=int,
    default=16 * 1024 * 1024,
    show_default=True,
    help="Receive buffer of the DESTROY event socket.",
)
@option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Save counters here on shutdown so a restart continues exactly.",
)
@option(
    "--drain-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds the sink may take to deliver on shutdown.",
)
@logging_options
def command(  # noqa: PLR0917 - one parameter per flag is how click calls it
    node_name: str,
    interval: float,
    netns: str | None,
    output: str,
    server: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
    insecure: bool,
    tls_server_name: str,
    spool_dir: Path | None,
    spool_max_bytes: int,
    metrics_port: int,
    metrics_host: str,
    configure_sysctls: bool,
    ignore_protocol: tuple[str, ...],
    ignore_cidr: tuple[str, ...],
    ignore_zone: tuple[int, ...],
    destroy_grace: float,
    event_buffer_bytes: int,
    state_dir: Path | None,
    drain_timeout: float,
    log_level: str,
    log_format: str,
) -> None:
    setup_logging(log_level, log_format)
    try:
        settings = AgentSettings(
            node_name=node_name,
            interval=interval,
            netns=netns,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            configure_sysctls=configure_sysctls,
            ignore_protocols=ignore_protocol,
            ignore_cidrs=ignore_cidr,
            ignore_zones=ignore_zone,
            destroy_grace=destroy_grace,
            event_buffer_bytes=event_buffer_bytes,
            state_dir=state_dir,
            drain_timeout=drain_timeout,
        )
        client = None
        if output == "grpc":
            client = ClientSettings(
                target=server,
                tls=tls_settings(tls_cert, tls_key, tls_ca, insecure, tls_server_name),
                spool_dir=spool_dir,
                spool_max_bytes=spool_max_bytes,
            )
            problems = client.problems()
            if problems:
                raise click.UsageError("; ".join(problems))
        asyncio.run(_run(settings, client))
    except KubenetmonError as exc:
        raise click.ClickException(str(exc)) from exc


async def _run(settings: AgentSettings, client: ClientSettings | None) -> None:
    """The daemon with its sink; a gRPC sink's sender task ending stops the daemon too."""
    if client is None:
        await AgentDaemon(settings, JsonlSink()).run()
        return
    sink = GrpcSink.open(client)
    daemon = AgentDaemon(settings, sink)
    sink.task.add_done_callback(lambda _: daemon.request_stop())
    await daemon.run()
    failure = sink.task.exception() if sink.task.done() and not sink.task.cancelled() else None
    if failure is not None:
        raise failure
