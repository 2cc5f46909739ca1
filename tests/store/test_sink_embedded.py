"""The store on the embedded engine: inserts, exact sums, idempotent retries, refusals, the path lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubenetmon.errors import PermanentStoreError
from kubenetmon.records import AttributedRow, Direction
from kubenetmon.store.columns import ColumnBatch
from kubenetmon.store.dsn import parse_dsn
from kubenetmon.store.schema import SORTING_KEY, TableName, create_statements, migration_statements
from kubenetmon.store.sink import ClickHouseStore
from tests.clickhouse_http.process import child_env
from tests.store.expected import sums, value_key
from tests.store.rowgen import generate

SEED_QUERY = """SELECT localPod, remotePod, connectionClass, formatReadableSize(sum(bytes)) FROM default.network_flows_0 WHERE date = today() AND intervalStartTime > NOW() - INTERVAL 10 MINUTES AND direction = 'out' GROUP BY localPod, remotePod, connectionClass ORDER BY sum(bytes) DESC;"""  # noqa: E501 - the seed README's query, verbatim
SEED_DDL = (Path(__file__).parent / "fixtures" / "seed_network_flows_0.sql").read_text()
DETAIL = "intervalStartTime, direction, localPod, remotePod, localPort, remotePort, observationPoint"


def _detail(r: AttributedRow) -> tuple[object, ...]:
    return (
        r.bucket_start,
        r.direction.value,
        r.local.pod,
        r.remote.pod,
        r.local_port,
        r.remote_port,
        r.observation_point,
    )


def test_inserts_are_encoded_with_the_rust_codec(embedded: ClickHouseStore) -> None:
    assert embedded.codec == "rust"


def test_rows_read_back_with_exact_sums_after_merges(embedded: ClickHouseStore, bucket: int) -> None:
    rows = generate(seed=1, count=6000, start=bucket, polls=3)
    for part in range(3):
        batch = ColumnBatch.from_rows(rows[part::3], [f"part-{part}"])
        embedded.insert(batch, batch.token())
    embedded.command("OPTIMIZE TABLE default.network_flows_0 FINAL")
    stored = embedded.query(
        f"SELECT {DETAIL}, bytes, packets FROM default.network_flows_0 ORDER BY {', '.join(SORTING_KEY)}"
    ).rows
    expected = sums(rows, _detail)
    got: dict[tuple[object, ...], list[int]] = {}
    for row in stored:
        key = (int(row[0].timestamp()), *row[1:7])
        total = got.setdefault(key, [0, 0])
        total[0] += row[7]
        total[1] += row[8]
    assert got == expected
    assert len(stored) == len({value_key(row) for row in rows})


def test_the_seed_readme_query_runs_unchanged(embedded: ClickHouseStore, bucket: int) -> None:
    rows = generate(seed=2, count=2000, start=bucket, buckets=1)
    batch = ColumnBatch.from_rows(rows, ["seed"])
    embedded.insert(batch, batch.token())
    result = embedded.query(SEED_QUERY.rstrip(";")).rows
    expected = sums(
        (r for r in rows if r.direction is Direction.OUT),
        lambda r: (r.local.pod, r.remote.pod, r.connection_class.value),
    )
    readable = {
        key: embedded.query("SELECT formatReadableSize({n:UInt64})", {"n": total[0]}).rows[0][0]
        for key, total in expected.items()
    }
    assert {(r[0], r[1], r[2]): r[3] for r in result} == readable
    order = [expected[(r[0], r[1], r[2])][0] for r in result]
    assert order == sorted(order, reverse=True)


def test_a_retried_batch_with_the_same_token_is_stored_once(embedded: ClickHouseStore, bucket: int) -> None:
    rows = generate(seed=3, count=3000, start=bucket)
    batch = ColumnBatch.from_rows(rows, ["agent-1/epoch/7"])
    embedded.insert(batch, batch.token())
    embedded.insert(batch, batch.token())
    total = sum(row.bytes for row in rows)
    assert embedded.query("SELECT sum(bytes) FROM default.network_flows_0").rows == [(total,)]
    embedded.insert(batch, "a-different-token")
    assert embedded.query("SELECT sum(bytes) FROM default.network_flows_0").rows == [(2 * total,)]


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[ClickHouseStore]:
    """A store whose table does not exist yet, for tests that create an existing table first."""
    store = ClickHouseStore(parse_dsn(f"chdb://{tmp_path}/engine?database=legacy"))
    store.command("CREATE DATABASE legacy")
    yield store
    store.close()


def test_a_seed_table_is_refused_with_a_migration_that_works(bare: ClickHouseStore, bucket: int) -> None:
    bare.command(SEED_DDL.format(database="legacy").split("\n", 1)[1])
    bare.command(
        "INSERT INTO legacy.network_flows_0 "
        "(date, intervalStartTime, direction, localPod, remotePod, bytes, packets) "
        f"VALUES (toDate({bucket}), {bucket}, 'out', 'a', 'b', 1000, 3)"
    )
    with pytest.raises(PermanentStoreError) as refused:
        bare.ensure_schema()
    message = str(refused.value)
    assert "cannot extend ORDER BY" in message
    statements = migration_statements(TableName("legacy"))
    assert all(statement in message for statement in statements)
    for statement in statements:
        bare.command(statement)
    bare.ensure_schema()
    assert bare.query(
        "SELECT localPod, bytes, packets, countOnce, toString(localIPv6) FROM legacy.network_flows_0"
    ).rows == [("a", 1000, 3, True, "::ffff:0.0.0.0")]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda ddl: ddl.replace("`bytes` UInt64", "`bytes` UInt32"), "bytes is UInt32, expected UInt64"),
        (lambda ddl: ddl.replace("SummingMergeTree((bytes, packets))", "MergeTree"), "engine is MergeTree"),
        (
            lambda ddl: ddl.replace(", observationPoint, countOnce)", ")"),
            "ORDER BY lacks observationPoint, countOnce",
        ),
    ],
    ids=["wrong-type", "wrong-engine", "key-too-short"],
)
def test_an_incompatible_table_is_refused_naming_the_problem(
    bare: ClickHouseStore, edit: Callable[[str], str], expected: str
) -> None:
    bare.command(edit(create_statements(TableName("legacy"))[1]))
    with pytest.raises(PermanentStoreError, match=expected):
        bare.ensure_schema()


HOLDER = textwrap.dedent(
    """
    import sys
    from kubenetmon.store.dsn import parse_dsn
    from kubenetmon.store.sink import ClickHouseStore
    store = ClickHouseStore(parse_dsn("chdb://" + sys.argv[1]))
    store.ensure_schema()
    print("holding", flush=True)
    sys.stdin.read()
    store.close()
    """
)


def test_a_taken_embedded_path_fails_fast_naming_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "engine"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        store = ClickHouseStore(parse_dsn(f"chdb://{path}"))
        with pytest.raises(PermanentStoreError) as taken:
            store.ensure_schema()
        assert f"embedded store {path} is in use by another process (PID {holder.pid}:" in str(taken.value)
    finally:
        holder.communicate("", timeout=30)
    with ClickHouseStore(parse_dsn(f"chdb://{path}")) as store:
        store.ensure_schema()


def test_one_process_cannot_host_a_second_engine_path(embedded: ClickHouseStore, tmp_path: Path) -> None:
    other = ClickHouseStore(parse_dsn(f"chdb://{tmp_path}/other"))
    with pytest.raises(PermanentStoreError, match="this process already hosts the embedded engine at"):
        other.ensure_schema()
