"""`kubenetmon report`: ready answers over a time window, as tables or JSON.

Reports (all by default): cross-zone (top cross-zone talkers), cloud-services (traffic to cloud services
per workload and service), roles (who opens connections, who only accepts them), zone-matrix (bytes
between zones). Bytes are counted once across observation points (see kubenetmon.store.queries).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click

from kubenetmon.cli.query import open_for_reading, plain, print_table, settings_from_options, store_options
from kubenetmon.errors import StoreError
from kubenetmon.records import rfc3339
from kubenetmon.store.queries import REPORTS, Report, Window

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """'90s', '15m', '1h', '2d', '1w' (or a sum such as '1h30m') as seconds."""
    parts = re.fullmatch(r"(?:\d+[smhdw])+", text.strip())
    if not parts:
        raise click.BadParameter(f"{text!r} is not a duration such as 15m, 1h, 2d or 1h30m")
    return sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)([smhdw])", text))


def parse_time(text: str) -> int:
    """A point in time: epoch seconds, RFC 3339, or 'YYYY-MM-DD[ HH:MM[:SS]]' taken as UTC."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not a time such as 2026-11-26T10:00:00Z or 2026-11-26 10:00"
        ) from exc
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def choose_window(since: str | None, start: str | None, end: str | None, now: float) -> Window:
    """--since, or --from [--to]; never both."""
    if since and start:
        raise click.UsageError("give either --since or --from/--to, not both")
    if start:
        return Window(parse_time(start), parse_time(end) if end else int(now) + 1)
    if end:
        raise click.UsageError("--to needs --from")
    return Window.last(parse_duration(since or "1h"), now)


def report_json(report: Report) -> dict[str, Any]:
    """One report as a JSON object: what it is, its window, and one object per row."""
    return {
        "name": report.name,
        "title": report.title,
        "meaning": report.meaning,
        "window": {"from": rfc3339(report.window.start), "to": rfc3339(report.window.end)},
        "rows": [dict(zip(report.columns, map(plain, row), strict=True)) for row in report.rows],
    }


def render(reports: Sequence[Report], as_json: bool) -> None:
    """Print reports as rich tables, or as one JSON array with the same data."""
    if as_json:
        click.echo(json.dumps([report_json(report) for report in reports], indent=2))
        return
    for report in reports:
        window = f"{rfc3339(report.window.start)} .. {rfc3339(report.window.end)}"
        print_table(f"{report.title} ({window})", report.meaning, report.columns, report.rows)


@click.command(help=__doc__)
@click.argument("names", nargs=-1, type=click.Choice(list(REPORTS)))
@store_options
@click.option("--since", help="Window ending now, e.g. 15m, 1h, 2d (default 1h).")
@click.option("--from", "start", help="Window start: RFC 3339, 'YYYY-MM-DD HH:MM' (UTC) or epoch seconds.")
@click.option("--to", "end", help="Window end (default now); same forms as --from.")
@click.option("--json", "as_json", is_flag=True, help="Print the same data as JSON.")
def command(
    names: tuple[str, ...],
    *,
    store_dsn: str,
    store_password_file: str | None,
    since: str | None,
    start: str | None,
    end: str | None,
    as_json: bool,
) -> None:
    window = choose_window(since, start, end, time.time())
    settings = settings_from_options(store_dsn, store_password_file)
    try:
        with open_for_reading(settings) as store:
            reports = [REPORTS[name](store, window) for name in names or REPORTS]
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    render(reports, as_json)
