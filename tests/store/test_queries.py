"""Report queries against rows whose answers are computed here, independently, from the same rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pytest

from kubenetmon.records import AttributedRow, BillingClass, Direction
from kubenetmon.store import queries
from kubenetmon.store.columns import ColumnBatch
from kubenetmon.store.queries import Window
from kubenetmon.store.sink import ClickHouseStore
from tests.store.expected import name, roles, sender_receiver, sums
from tests.store.rowgen import generate

LIMIT = 10_000


@dataclass(frozen=True)
class Flows:
    store: ClickHouseStore
    window: Window
    rows: list[AttributedRow]
    """The rows inside the window."""


@pytest.fixture
def flows(embedded: ClickHouseStore, bucket: int) -> Flows:
    """Rows in a 10-minute window, plus rows an hour earlier that every report must leave out."""
    inside = generate(seed=31, count=8000, start=bucket - 540, buckets=10, polls=2)
    outside = generate(seed=32, count=2000, start=bucket - 3600, buckets=5)
    for part, rows in enumerate((inside, outside)):
        batch = ColumnBatch.from_rows(rows, [f"part-{part}"])
        embedded.insert(batch, batch.token())
    return Flows(embedded, Window(bucket - 540, bucket + 60), inside)


def test_cross_zone_talkers_are_the_cross_zone_bytes_counted_once(flows: Flows) -> None:
    store, window, rows = flows.store, flows.window, flows.rows
    expected = sums(
        (r for r in rows if r.count_once and r.billing_class is BillingClass.CROSS_ZONE), sender_receiver
    )
    report = queries.cross_zone_talkers(store, window, limit=LIMIT)
    assert {tuple(r[:4]): [r[4], r[5]] for r in report.rows} == expected
    assert [r[4] for r in report.rows] == sorted((r[4] for r in report.rows), reverse=True)
    assert len(queries.cross_zone_talkers(store, window, limit=3).rows) == 3


def test_cloud_service_traffic_is_split_by_direction(flows: Flows) -> None:
    store, window, rows = flows.store, flows.window, flows.rows
    expected: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        if r.count_once and r.remote.cloud_service:
            key = (name(r.local, r.local_ip), r.remote.cloud, r.remote.region, r.remote.cloud_service)
            expected[key][0 if r.direction is Direction.OUT else 1] += r.bytes
    report = queries.cloud_services(store, window, limit=LIMIT)
    assert {tuple(r[:4]): [r[4], r[5]] for r in report.rows} == expected


def test_roles_tell_inbound_only_workloads_from_openers(flows: Flows) -> None:
    store, window, rows = flows.store, flows.window, flows.rows
    expected = roles(rows)
    report = queries.connection_roles(store, window)
    assert {r[0]: tuple(r[1:5]) for r in report.rows} == expected
    behaviours = {r[0]: r[5] for r in report.rows}
    for who, (opens, accepts, _, _) in expected.items():
        assert behaviours[who] == {
            (True, True): "opens and accepts", (True, False): "opens only", (False, True): "accepts only"
        }[(opens > 0, accepts > 0)]  # fmt: skip
    assert {"accepts only", "opens and accepts"} <= set(behaviours.values())


def test_zone_matrix_holds_every_byte_once(flows: Flows) -> None:
    store, window, rows = flows.store, flows.window, flows.rows
    expected = sums(
        (r for r in rows if r.count_once), lambda r: (sender_receiver(r)[1], sender_receiver(r)[3])
    )
    report = queries.zone_matrix(store, window)
    zones = report.columns[1:]
    got = {
        (row[0], to): value for row in report.rows for to, value in zip(zones, row[1:], strict=True) if value
    }
    outside = "(outside)"
    assert got == {(f or outside, t or outside): total[0] for (f, t), total in expected.items()}
    assert sum(got.values()) == sum(r.bytes for r in rows if r.count_once)


def test_every_report_is_registered_under_its_name() -> None:
    assert list(queries.REPORTS) == ["cross-zone", "cloud-services", "roles", "zone-matrix"]


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="ends"):
        Window(100, 100)
