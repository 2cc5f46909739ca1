"""`kubenetmon doctor`: the agent's readiness checks as a table, or JSON with --json."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from kubenetmon.agent.doctor import CheckResult, Status, run_checks
from kubenetmon.cli import option

STYLES = {Status.OK: "green", Status.FIXED: "cyan", Status.WARN: "yellow", Status.FAIL: "bold red"}


@click.command(help="Check that this node can be metered, and say what to fix.")
@option(
    "--netns",
    default=None,
    help="Check this named network namespace instead of our own.",
)
@option(
    "--fix/--no-fix",
    default=False,
    show_default=True,
    help="Set the conntrack sysctls the agent needs when they are wrong.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def command(netns: str | None, fix: bool, as_json: bool) -> None:
    results = run_checks(netns, fix)
    if as_json:
        click.echo(json.dumps([_as_dict(result) for result in results], indent=2))
    else:
        Console().print(_table(results))
    if any(result.status is Status.FAIL for result in results):
        raise SystemExit(1)


def _as_dict(result: CheckResult) -> dict[str, str]:
    return {
        "check": result.name,
        "status": result.status.value,
        "detail": result.detail,
        "remedy": result.remedy,
    }


def _table(results: list[CheckResult]) -> Table:
    table = Table(title="kubenetmon doctor")
    # Names and statuses stay whole (people copy the sysctl names); the prose columns wrap.
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail")
    table.add_column("remedy")
    for result in results:
        style = STYLES[result.status]
        table.add_row(result.name, f"[{style}]{result.status.value}[/{style}]", result.detail, result.remedy)
    return table
