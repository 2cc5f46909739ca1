"""`kubenetmon query` and `kubenetmon report` against an embedded store, end to end through click."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubenetmon.cli import main
from kubenetmon.cli.report import choose_window, parse_duration
from kubenetmon.store import queries
from kubenetmon.store.columns import ColumnBatch
from kubenetmon.store.dsn import parse_dsn
from kubenetmon.store.sink import ClickHouseStore
from tests.store.rowgen import generate


@pytest.fixture
def dsn(tmp_path: Path, bucket: int) -> str:
    dsn = f"chdb://{tmp_path}/engine"
    with ClickHouseStore(parse_dsn(dsn)) as store:
        store.ensure_schema()
        batch = ColumnBatch.from_rows(generate(seed=41, count=3000, start=bucket), ["cli"])
        store.insert(batch, batch.token())
    return dsn


def test_report_json_carries_the_same_rows_as_the_report_functions(dsn: str, bucket: int) -> None:
    start, end = str(bucket - 3600), str(bucket + 3600)
    result = CliRunner().invoke(main, ["report", "--store", dsn, "--from", start, "--to", end, "--json"])
    assert result.exit_code == 0, result.output
    printed = {report["name"]: report for report in json.loads(result.output)}
    assert list(printed) == list(queries.REPORTS)
    with ClickHouseStore(parse_dsn(dsn)) as store:
        for name, function in queries.REPORTS.items():
            report = function(store, queries.Window(int(start), int(end)))
            assert printed[name]["rows"] == [
                dict(zip(report.columns, row, strict=True)) for row in report.rows
            ]


def test_report_tables_name_each_report(dsn: str) -> None:
    result = CliRunner().invoke(
        main, ["report", "zone-matrix", "cross-zone", "--store", dsn, "--since", "2h"]
    )
    assert result.exit_code == 0, result.output
    assert "Zone-to-zone bytes" in result.output and "Top cross-zone talkers" in result.output
    assert "Traffic to cloud services" not in result.output


def test_query_prints_csv(dsn: str) -> None:
    sql = "SELECT direction, count() AS n FROM default.network_flows_0 GROUP BY direction ORDER BY direction"
    result = CliRunner().invoke(main, ["query", sql, "--store", dsn, "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "direction,n" and [line.split(",")[0] for line in lines[1:]] == ["out", "in"]
    assert sum(int(line.split(",")[1]) for line in lines[1:]) == 3000


def test_query_errors_are_reported_not_raised(dsn: str) -> None:
    result = CliRunner().invoke(main, ["query", "SELECT * FROM nowhere", "--store", dsn])
    assert result.exit_code == 1
    assert "Code: 60" in result.output and "Traceback" not in result.output


def test_a_bad_store_dsn_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["query", "SELECT 1", "--store", "mysql://x"])
    assert result.exit_code == 2 and "scheme must be chdb://" in result.output


def test_windows_come_from_since_or_from_to() -> None:
    assert parse_duration("1h30m") == 5400
    assert choose_window(None, "2026-11-26T10:00:00Z", "2026-11-26 11:00", now=0) == queries.Window(
        1795687200, 1795690800
    )
    assert choose_window("15m", None, None, now=1000) == queries.Window(101, 1001)
    with pytest.raises(Exception, match="not both"):
        choose_window("1h", "0", None, now=0)


def test_reading_a_missing_embedded_store_creates_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", "--store", f"chdb://{tmp_path}/absent"])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert not (tmp_path / "absent").exists()
