"""`kubenetmon demo`: the whole system on a lab in network namespaces, then its report and accuracy.

Builds the demo lab (2 zones, 3 nodes, 10 pods, a ClusterIP service, S3 in another region, an internet
host; IPv4 and IPv6), starts a real server (embedded ClickHouse, static inventory) and one real agent per
node over mTLS, drives a traffic mix, then prints the reports and the accuracy of the metered bytes
against the lab's nftables ground truth, per billing class. Needs root. Ctrl-C or SIGTERM tear it all down.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console

from kubenetmon.cli import option, setup_logging
from kubenetmon.cli.lab import state_dir_option
from kubenetmon.cli.report import render, report_json
from kubenetmon.demo.display import RichProgress
from kubenetmon.demo.run import DemoOptions, DemoResult, run_demo
from kubenetmon.demo.summary import accuracy_json, accuracy_line, human_bytes, problems
from kubenetmon.errors import KubenetmonError


def _keep_dir(value: str | None) -> Path | None:
    if value is None:
        return None
    return Path(value or time.strftime("kubenetmon-demo-%Y%m%d-%H%M%S"))


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every context manager tears its part down."""


def _interrupt_on_sigterm() -> None:
    """Turn SIGTERM into `_Terminated`; further SIGTERMs are ignored so the teardown can finish."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _Terminated

    signal.signal(signal.SIGTERM, interrupt)


def _document(result: DemoResult) -> dict[str, Any]:
    return {
        "scenario": {
            "plans": [
                {"name": p.name, "kind": p.kind, "client": p.client, "target": p.target, "family": p.family}
                for p in result.plans
            ],
            "flows": result.flows,
        },
        "reports": [report_json(report) for report in result.reports],
        "accuracy": accuracy_json(result.verdict),
        "store": result.store_dsn,
        "seconds": {phase: round(seconds, 3) for phase, seconds in result.seconds.items()},
    }


def _print_human(result: DemoResult) -> None:
    render(result.reports, as_json=False)
    total = result.verdict.total()
    click.echo(accuracy_line(result.verdict))
    click.echo(
        f"{result.flows} connections and UDP flows, {human_bytes(total.metered)} metered of "
        f"{human_bytes(total.truth)} sent (TCP and UDP, IP-level bytes, each byte counted once)"
    )
    if result.store_dsn:
        click.echo(
            f"store kept: kubenetmon query --store {result.store_dsn} 'SELECT count() FROM network_flows_0'"
        )
        click.echo(f"            kubenetmon report --store {result.store_dsn} --since 1d")


_option = functools.partial(option, prefix="KUBENETMON_DEMO_")
"""A demo option: it also reads KUBENETMON_DEMO_<FIRST NAME>."""


@click.command(name="demo", help=__doc__)
@_option(
    "--duration",
    type=click.FloatRange(2, 3600),
    default=20.0,
    show_default=True,
    help="Seconds of traffic; the amount of traffic scales with it.",
)
@_option(
    "--keep",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[DIR]",
    help="Keep the store (and logs) in DIR, new or empty (default ./kubenetmon-demo-<time>), "
    "for `kubenetmon query` and `kubenetmon report`.",
)
@_option(
    "--interval",
    type=click.FloatRange(0.2, 60),
    default=1.0,
    show_default=True,
    help="Agent interval in seconds.",
)
@_option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document (reports and per-class accuracy) instead of tables.",
)
@state_dir_option
def command(duration: float, keep: str | None, interval: float, as_json: bool, state_dir: Path) -> None:
    if os.geteuid() != 0:
        raise click.UsageError("the demo builds network namespaces: run it as root (e.g. sudo)")
    setup_logging("warning", "text")
    _interrupt_on_sigterm()
    options = DemoOptions(duration, _keep_dir(keep), interval, state_dir)
    try:
        with RichProgress(Console(stderr=True)) as progress:
            result = run_demo(options, progress)
    except KeyboardInterrupt as interrupted:
        click.echo("interrupted: agents, server and lab are torn down", err=True)
        raise SystemExit(143 if isinstance(interrupted, _Terminated) else 130) from None
    except (KubenetmonError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(_document(result), indent=2))
    else:
        _print_human(result)
    found = problems(result.verdict)
    for line in found:
        click.echo(f"accuracy problem: {line}", err=True)
    if found:
        raise SystemExit(1)
