"""The table definition: seed compatibility, sorting key, DDL files, cluster variant, compatibility check."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kubenetmon.store.schema import (
    COLUMN_NAMES,
    EXTENSION_COLUMNS,
    PRIMARY_KEY,
    SEED_COLUMNS,
    SORTING_KEY,
    SUMMED,
    ExistingTable,
    TableName,
    create_statements,
    missing_extensions,
    problems,
)
from kubenetmon.store.sink import ClickHouseStore
from tests.clickhouse_http.process import child_env
from tests.store import deploy_ddl

SEED_DDL = (Path(__file__).parent / "fixtures" / "seed_network_flows_0.sql").read_text()


def _seed_columns() -> list[tuple[str, str, str]]:
    return re.findall(r"`(\w+)` (.*?) CODEC\(((?:[^()]|\([^()]*\))*)\)", SEED_DDL)


def test_seed_columns_keep_the_seed_names_types_and_codecs_in_order() -> None:
    seed = [(n, t.replace("Enum(", "Enum8("), c) for n, t, c in _seed_columns()]
    assert seed == [(c.name, c.type, c.codec) for c in SEED_COLUMNS]


def test_sorting_key_is_the_seed_order_by_followed_by_every_other_dimension() -> None:
    seed_order = re.search(r"ORDER BY \((.*?)\)\n", SEED_DDL).group(1).split(", ")  # type: ignore[union-attr]
    assert SORTING_KEY[: len(seed_order)] == tuple(seed_order)
    assert SORTING_KEY[: len(PRIMARY_KEY)] == PRIMARY_KEY
    assert set(SORTING_KEY) == set(COLUMN_NAMES) - set(SUMMED)
    assert len(SORTING_KEY) == len(set(SORTING_KEY))


def test_deploy_files_are_rendered_from_the_schema_module() -> None:
    for name, text in deploy_ddl.rendered().items():
        assert (deploy_ddl.DEPLOY / name).read_text() == text, (
            f"regenerate: python -m tests.store.deploy_ddl ({name})"
        )


def test_created_table_reports_exactly_the_declared_columns_and_key(embedded: ClickHouseStore) -> None:
    columns = embedded.query(
        "SELECT name, type FROM system.columns WHERE database = 'default' AND table = 'network_flows_0' "
        "ORDER BY position"
    ).rows
    assert [tuple(c) for c in columns] == [(c.name, c.type) for c in SEED_COLUMNS + EXTENSION_COLUMNS]
    engine, key, primary = embedded.query(
        "SELECT engine_full, sorting_key, primary_key FROM system.tables "
        "WHERE database = 'default' AND name = 'network_flows_0'"
    ).rows[0]
    assert key == ", ".join(SORTING_KEY)
    assert primary == ", ".join(PRIMARY_KEY)
    assert "non_replicated_deduplication_window = 1000" in engine
    assert "TTL intervalStartTime + toIntervalDay(90)" in engine


def test_ensure_schema_is_idempotent(embedded: ClickHouseStore) -> None:
    embedded.ensure_schema()
    embedded.ensure_schema()
    assert embedded.query("SELECT count() FROM system.tables WHERE name = 'network_flows_0'").rows == [(1,)]


def test_every_cluster_statement_parses(embedded: ClickHouseStore) -> None:
    for statement in create_statements(TableName("flows", "network_flows_0", cluster="prod")):
        embedded.query(f"EXPLAIN AST {statement}")


def test_cluster_distributed_table_is_created_over_a_configured_cluster(tmp_path: Path) -> None:
    """chDB cannot create Replicated tables (no Keeper) but can create the Distributed front table."""
    config = tmp_path / "config.xml"
    config.write_text(
        "<clickhouse><remote_servers><prod><shard><replica><host>localhost</host><port>9000</port>"
        "</replica></shard></prod></remote_servers></clickhouse>"
    )
    script = textwrap.dedent(
        f"""
        import chdb
        from kubenetmon.store.schema import TableName, create_statements
        conn = chdb.connect("{tmp_path}/engine?config-file={config}")
        name = TableName("flows", "network_flows_0", cluster="prod")
        database, local, front = create_statements(name)
        single = create_statements(TableName("flows", "network_flows_0_local"))[1]
        conn.query("CREATE DATABASE flows")
        conn.query(single)
        conn.query(front.replace(" ON CLUSTER 'prod'", ""))
        tables = "SELECT engine FROM system.tables WHERE database = 'flows' ORDER BY name"
        print(conn.query(tables, "CSV").bytes())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, env=child_env()
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"Distributed"\\n"SummingMergeTree"' in result.stdout


def _table(**changes: object) -> ExistingTable:
    base = ExistingTable(
        "SummingMergeTree", SORTING_KEY, {c.name: c.type for c in SEED_COLUMNS + EXTENSION_COLUMNS}
    )
    return ExistingTable(
        **{"engine": base.engine, "sorting_key": base.sorting_key, "columns": base.columns, **changes}
    )  # type: ignore[arg-type]


def test_our_own_table_has_no_problems() -> None:
    assert problems(_table()) == []
    assert missing_extensions(_table()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"engine": "MergeTree"}, "engine is MergeTree"),
        ({"columns": {c.name: c.type for c in SEED_COLUMNS[1:]}}, "missing seed columns: date"),
        (
            {"columns": {**{c.name: c.type for c in SEED_COLUMNS}, "bytes": "UInt32"}},
            "bytes is UInt32, expected UInt64",
        ),
        ({"sorting_key": SORTING_KEY[:33]}, "ORDER BY lacks localKind"),
    ],
)
def test_incompatible_tables_are_described(change: dict[str, object], expected: str) -> None:
    assert any(expected in problem for problem in problems(_table(**change)))


def test_a_seed_only_table_is_compatible_but_lacks_the_extensions() -> None:
    seed = _table(columns={c.name: c.type for c in SEED_COLUMNS}, sorting_key=SORTING_KEY[:33])
    assert problems(seed) == []
    assert missing_extensions(seed) == [c.name for c in EXTENSION_COLUMNS]
