"""The store over HTTP, through the ClickHouse test endpoint: same inserts, clear errors, retries that
neither lose nor duplicate rows."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from kubenetmon.errors import PermanentStoreError, TransientStoreError
from kubenetmon.records import AttributedRow
from kubenetmon.store.columns import ColumnBatch
from kubenetmon.store.dsn import parse_dsn
from kubenetmon.store.sink import ClickHouseStore, RetryPolicy
from tests.clickhouse_http.process import EndpointProcess
from tests.store.conftest import FAST_RETRIES
from tests.store.rowgen import generate


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _totals(store: ClickHouseStore) -> tuple[object, ...]:
    table = store.settings.name.qualified
    return store.query(f"SELECT count(), sum(bytes), sum(packets) FROM {table}").rows[0]


def _expected(rows: list[AttributedRow]) -> tuple[int, int, int]:
    return len(rows), sum(r.bytes for r in rows), sum(r.packets for r in rows)


def test_remote_inserts_read_back_exactly(remote: ClickHouseStore, bucket: int) -> None:
    rows = generate(seed=11, count=20_000, start=bucket)
    batch = ColumnBatch.from_rows(rows, ["remote"])
    remote.insert(batch, batch.token())
    assert remote.codec == "rust"
    assert _totals(remote) == _expected(rows)


def test_an_engine_error_surfaces_as_a_clear_permanent_error(remote: ClickHouseStore) -> None:
    before = _metric("kubenetmon_store_errors_total", kind="permanent", operation="query")
    with pytest.raises(PermanentStoreError, match=r"Code: 60\. DB::Exception: Unknown table.*UNKNOWN_TABLE"):
        remote.query("SELECT * FROM no_such_table")
    assert _metric("kubenetmon_store_errors_total", kind="permanent", operation="query") == before + 1


def test_an_incompatible_remote_table_is_refused(endpoint: EndpointProcess) -> None:
    with ClickHouseStore(parse_dsn(f"{endpoint.url}/legacy_remote")) as store:
        store.command("CREATE DATABASE legacy_remote")
        store.command(
            "CREATE TABLE legacy_remote.network_flows_0 (date Date) ENGINE = MergeTree ORDER BY date"
        )
        with pytest.raises(PermanentStoreError, match="missing seed columns: intervalStartTime"):
            store.ensure_schema()


@pytest.fixture
def private_endpoint(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[EndpointProcess]:
    """An endpoint this test may stop, restart or tell to lose responses (`indirect` param: drops)."""
    drops = getattr(request, "param", 0)
    with EndpointProcess(tmp_path / "engine", drop_insert_responses=drops) as process:
        yield process


@pytest.fixture
def private_store(private_endpoint: EndpointProcess) -> Iterator[ClickHouseStore]:
    with ClickHouseStore(parse_dsn(f"{private_endpoint.url}/flows"), FAST_RETRIES) as store:
        store.ensure_schema()
        yield store


def test_an_outage_is_retried_without_loss_or_duplication(
    private_endpoint: EndpointProcess, private_store: ClickHouseStore, bucket: int
) -> None:
    store = private_store
    rows = generate(seed=12, count=5000, start=bucket)
    batch = ColumnBatch.from_rows(rows, ["outage"])
    retries_before = _metric("kubenetmon_store_insert_retries_total")
    private_endpoint.stop()
    outcome: list[BaseException | None] = []
    inserter = threading.Thread(target=lambda: outcome.append(_insert(store, batch)))
    inserter.start()
    deadline = time.monotonic() + 30
    while (
        _metric("kubenetmon_store_insert_retries_total") < retries_before + 2 and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    private_endpoint.start()
    inserter.join(timeout=60)
    assert outcome == [None]
    assert _totals(store) == _expected(rows)


def _insert(store: ClickHouseStore, batch: ColumnBatch) -> BaseException | None:
    try:
        store.insert(batch, batch.token())
    except BaseException as exc:
        return exc
    return None


@pytest.mark.parametrize("private_endpoint", [3], indirect=True)
def test_lost_insert_responses_are_retried_and_deduplicated(
    private_store: ClickHouseStore, bucket: int
) -> None:
    """The first 3 inserts commit but their answers are lost; every retry carries the same token."""
    store = private_store
    rows = generate(seed=13, count=4000, start=bucket)
    batch = ColumnBatch.from_rows(rows, ["lost"])
    retries_before = _metric("kubenetmon_store_insert_retries_total")
    store.insert(batch, batch.token())
    assert _metric("kubenetmon_store_insert_retries_total") > retries_before
    assert _totals(store) == _expected(rows)


def test_giving_up_raises_a_transient_error_and_counts_the_rows(tmp_path: Path, bucket: int) -> None:
    with EndpointProcess(tmp_path / "engine") as process:
        store = ClickHouseStore(parse_dsn(f"{process.url}/flows"), RetryPolicy(attempts=3, first_delay=0.01))
        store.ensure_schema()
    failed_before = _metric("kubenetmon_store_rows_total", outcome="failed")
    batch = ColumnBatch.from_rows(generate(seed=14, count=100, start=bucket), ["down"])
    with pytest.raises(TransientStoreError, match="gave up after 3 attempts"):
        store.insert(batch, batch.token())
    assert _metric("kubenetmon_store_rows_total", outcome="failed") == failed_before + 100
    store.close()


def test_the_password_stays_out_of_errors_and_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with EndpointProcess(tmp_path / "engine") as process:
        url = process.url
    store = ClickHouseStore(
        parse_dsn(url.replace("//", "//ingest:hunter2@") + "/db"), RetryPolicy(attempts=2)
    )
    with pytest.raises(TransientStoreError) as failed:
        store.ensure_schema()
    assert "ingest:***@" in str(failed.value)
    assert "hunter2" not in str(failed.value) and "hunter2" not in caplog.text
    assert "hunter2" not in repr(store)
