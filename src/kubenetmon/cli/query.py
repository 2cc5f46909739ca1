"""`kubenetmon query "SQL"`: run one SELECT against the configured store and print the result.

Also home of the store options every store-using subcommand shares (`server`, `query`, `report`).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Sequence
from datetime import date
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from kubenetmon.cli import option
from kubenetmon.errors import SettingsError, StoreError
from kubenetmon.store.dsn import DEFAULT_DSN, PASSWORD_ENV, StoreSettings, store_settings
from kubenetmon.store.sink import ClickHouseStore

F = TypeVar("F", bound=Callable[..., Any])


def store_options(func: F) -> F:
    """--store and --store-password-file (the password may also come from KUBENETMON_STORE_PASSWORD)."""
    func = option(
        "--store-password-file",
        type=click.Path(dir_okay=False),
        help=f"File holding the store password (or set {PASSWORD_ENV}; never put it on the command line).",
    )(func)
    return option(
        "--store",
        "store_dsn",
        default=DEFAULT_DSN,
        show_default=True,
        help="ClickHouse DSN: chdb:///DIR (embedded) or https://USER@HOST:8443/DB; ?table=, ?cluster=.",
    )(func)


def settings_from_options(store_dsn: str, store_password_file: str | None) -> StoreSettings:
    """The store settings for the shared options; a usage error names what is wrong."""
    try:
        return store_settings(store_dsn, store_password_file)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc


def open_for_reading(settings: StoreSettings) -> ClickHouseStore:
    """A store for query and report; they never create an embedded engine directory that is not there."""
    if settings.embedded and not Path(settings.path).is_dir():
        raise click.ClickException(
            f"embedded store {settings.path} does not exist: nothing has been stored there (wrong --store?)"
        )
    return ClickHouseStore(settings)


def plain(value: Any) -> Any:
    """A query value as JSON/CSV can hold it."""
    if isinstance(value, IPv4Address | IPv6Address | date):
        return value.isoformat() if isinstance(value, date) else str(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


def print_table(
    title: str | None, caption: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """A rich table on stdout; integers right-aligned with thousands separators."""
    table = Table(title=title, caption=caption or None, caption_justify="left")
    numeric = [bool(rows) and all(isinstance(row[i], int) for row in rows) for i in range(len(columns))]
    for name, is_number in zip(columns, numeric, strict=True):
        table.add_column(name, justify="right" if is_number else "left")
    for row in rows:
        table.add_row(
            *(f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(plain(v)) for v in row)
        )
    Console(soft_wrap=False).print(table)


@click.command(help=__doc__)
@click.argument("sql")
@store_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="table for people, json (one object per row) or csv for other tools.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
def command(sql: str, *, store_dsn: str, store_password_file: str | None, fmt: str, as_json: bool) -> None:
    settings = settings_from_options(store_dsn, store_password_file)
    try:
        with open_for_reading(settings) as store:
            result = store.query(sql)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json or fmt == "json":
        rows = [dict(zip(result.columns, map(plain, row), strict=True)) for row in result.rows]
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[plain(value) for value in row] for row in result.rows])
    else:
        print_table(None, "", result.columns, result.rows)
