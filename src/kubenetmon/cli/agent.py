"""`kubenetmon agent`: flags -> AgentSettings -> AgentDaemon with the chosen sink."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kubenetmon.agent.daemon import AgentDaemon
from kubenetmon.agent.settings import AgentSettings
from kubenetmon.agent.sinks import JsonlSink
from kubenetmon.cli import logging_options, setup_logging
from kubenetmon.errors import KubenetmonError
from kubenetmon.records import RecordSink

F = TypeVar("F", bound=Callable[..., Any])

# --output choices: name -> factory. Another sink is one more line here.
SINKS: dict[str, Callable[[AgentSettings], RecordSink]] = {
    "jsonl": lambda settings: JsonlSink(),
}


def _option(*names: str, **kwargs: Any) -> Callable[[F], F]:
    env = "KUBENETMON_" + names[0].lstrip("-").split("/")[0].replace("-", "_").upper()
    return click.option(*names, envvar=env, show_envvar=True, **kwargs)


@click.command(help="Meter this node's conntrack table and ship per-interval flow records.")
@_option("--node-name", default="", help="Node name on every record (default: the hostname).")
@_option("--interval", type=float, default=5.0, show_default=True, help="Seconds per interval.")
@_option("--netns", default=None, help="Read the conntrack table of this named network namespace.")
@_option(
    "--output", type=click.Choice(sorted(SINKS)), default="jsonl", show_default=True, help="Record sink."
)
@_option(
    "--metrics-port", type=int, default=0, show_default=True, help="Port for /metrics and /healthz; 0 = off."
)
@_option("--metrics-host", default="0.0.0.0", show_default=True, help="Address for the metrics endpoint.")
@_option(
    "--configure-sysctls/--no-configure-sysctls",
    default=True,
    show_default=True,
    help="Set nf_conntrack_acct=1 and nf_conntrack_events=1 at start if needed.",
)
@_option("--ignore-protocol", multiple=True, help="Protocol name or number never reported (repeatable).")
@_option("--ignore-cidr", multiple=True, help="Network whose flows are not reported (repeatable).")
@_option("--ignore-zone", type=int, multiple=True, help="Conntrack zone not reported (repeatable).")
@_option(
    "--destroy-grace",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds a vanished flow waits for its DESTROY before it counts as lost.",
)
@_option(
    "--event-buffer-bytes",
    type=int,
    default=16 * 1024 * 1024,
    show_default=True,
    help="Receive buffer of the DESTROY event socket.",
)
@_option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Save counters here on shutdown so a restart continues exactly.",
)
@_option(
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
            output=output,
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
        asyncio.run(AgentDaemon(settings, SINKS[output](settings)).run())
    except KubenetmonError as exc:
        raise click.ClickException(str(exc)) from exc
