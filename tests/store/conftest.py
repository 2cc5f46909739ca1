"""Fixtures for the store tests: an embedded engine per test, the HTTP test endpoint per module.

chDB hosts one engine directory per process, but a closed store releases it, so each test opens its own
temporary directory and closes it at teardown; the endpoint runs its engine in a subprocess.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubenetmon.store.dsn import parse_dsn
from kubenetmon.store.sink import ClickHouseStore, RetryPolicy
from tests.clickhouse_http.process import EndpointProcess

FAST_RETRIES = RetryPolicy(attempts=30, first_delay=0.05, max_delay=0.5)


@pytest.fixture
def bucket() -> int:
    """A recent minute bucket, inside today (UTC) and within the seed query's last 10 minutes."""
    now = int(time.time())
    return max(now // 60 * 60 - 300, now // 86400 * 86400)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[ClickHouseStore]:
    """A store on a fresh embedded engine (database `default`), schema created."""
    store = ClickHouseStore(parse_dsn(f"chdb://{tmp_path}/engine"))
    store.ensure_schema()
    yield store
    store.close()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndpointProcess]:
    """The ClickHouse HTTP test endpoint, shared by a module's tests (each uses its own database)."""
    with EndpointProcess(tmp_path_factory.mktemp("endpoint") / "engine") as process:
        yield process


@pytest.fixture
def remote(endpoint: EndpointProcess) -> Iterator[ClickHouseStore]:
    """A store over HTTP on the shared endpoint, in a database of its own."""
    store = ClickHouseStore(parse_dsn(f"{endpoint.url}/t{uuid.uuid4().hex[:12]}"), FAST_RETRIES)
    store.ensure_schema()
    yield store
    store.close()
