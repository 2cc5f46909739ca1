"""AttributedRow -> table columns: every field lands in its named column; tokens identify content."""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address

from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.rustcodec import _make_native_transform

from kubenetmon.records import AttributedRow, BillingClass, ConnectionClass, Direction, Endpoint, EndpointKind
from kubenetmon.store.columns import ColumnBatch
from kubenetmon.store.schema import COLUMN_NAMES, COLUMN_TYPES
from kubenetmon.store.sink import ClickHouseStore
from tests.store.rowgen import generate

LOCAL = Endpoint(
    EndpointKind.POD, "aws", "eu-1", "c1", "cell-1", "eu-1a", "node-1", "i-1", "shop", "cart-7d9", "cart",
    "cart", "Deployment",
)  # fmt: skip
REMOTE = Endpoint(EndpointKind.CLOUD, "aws", "eu-1", cloud_service="s3")


def _row(bucket: int, local_ip: str, remote_ip: str, flags: tuple[str, ...]) -> AttributedRow:
    return AttributedRow(
        bucket, 60, "prod", "tcp", Direction.IN, LOCAL, REMOTE, local_ip, 41000, remote_ip, 443,
        "shop/cart-svc", "", ConnectionClass.INTRA_REGION, BillingClass.CLOUD_SERVICE,
        "cloud-service-same-region", flags, "node-1", True, 1500, 3,
    )  # fmt: skip


def test_every_field_lands_in_its_named_column(embedded: ClickHouseStore, bucket: int) -> None:
    rows = [
        _row(bucket, "198.18.0.5", "192.0.2.9", ("dnat", "snat")),
        _row(bucket, "fd00:db8::5", "2001:db8::9", ()),
    ]
    batch = ColumnBatch.from_rows(rows, ["t"])
    embedded.insert(batch, batch.token())
    stored = embedded.query(
        "SELECT toUnixTimestamp(intervalStartTime), toString(date), intervalSeconds, environment, proto, "
        "connectionClass, connectionFlags, direction, localCloud, localRegion, localCluster, localCell, "
        "localAvailabilityZone, localNode, localInstanceID, localNamespace, localPod, localApp, localKind, "
        "localWorkload, localWorkloadKind, localService, localIPv4, localIPv6, localPort, remoteCloud, "
        "remoteRegion, remoteCloudService, remoteKind, remotePod, remoteService, remoteIPv4, remoteIPv6, "
        "remotePort, billingClass, billingReason, observationPoint, countOnce, bytes, packets "
        "FROM default.network_flows_0 ORDER BY localIPv4 DESC"
    ).rows
    common = (bucket, f"{datetime.fromtimestamp(bucket, UTC):%Y-%m-%d}", 60, "prod", "tcp", "INTRA_REGION")
    local = ("in", "aws", "eu-1", "c1", "cell-1", "eu-1a", "node-1", "i-1", "shop", "cart-7d9", "cart", "pod",
             "cart", "Deployment", "shop/cart-svc")  # fmt: skip
    tail = ("cloud-service", "cloud-service-same-region", "node-1", True, 1500, 3)
    remote = ("aws", "eu-1", "s3", "cloud", "", "")
    assert stored == [
        (*common, {"dnat": True, "snat": True}, *local, IPv4Address("198.18.0.5"),
         IPv6Address("::ffff:198.18.0.5"), 41000, *remote, IPv4Address("192.0.2.9"),
         IPv6Address("::ffff:192.0.2.9"), 443, *tail),
        (*common, {}, *local, IPv4Address("0.0.0.0"), IPv6Address("fd00:db8::5"), 41000, *remote,
         IPv4Address("0.0.0.0"), IPv6Address("2001:db8::9"), 443, *tail),
    ]  # fmt: skip


def test_tokens_are_stable_for_equal_content_and_differ_otherwise() -> None:
    rows = [_row(1_800_000_000, "198.18.0.5", "192.0.2.9", ())]
    same = ColumnBatch.from_rows(rows, ["a"]).token()
    assert ColumnBatch.from_rows(list(rows), ["a"]).token() == same
    assert ColumnBatch.from_rows(rows, ["b"]).token() != same
    assert ColumnBatch.from_rows([rows[0]._replace(bytes=1501)], ["a"]).token() != same
    assert ColumnBatch.from_rows(rows * 2, ["a"]).token() != same


def test_the_rust_codec_encodes_every_table_column_without_falling_back(bucket: int) -> None:
    """`rust_strict` raises where plain `rust` would quietly fall back to the Python codec."""
    batch = ColumnBatch.from_rows(generate(seed=5, count=2000, start=bucket), ["t"])
    types = [get_from_name(name) for name in COLUMN_TYPES]
    context = InsertContext("t", list(COLUMN_NAMES), types, batch.columns, column_oriented=True)
    strict = b"".join(_make_native_transform("rust_strict").build_insert(context))
    context = InsertContext("t", list(COLUMN_NAMES), types, batch.columns, column_oriented=True)
    assert strict == b"".join(_make_native_transform("python").build_insert(context))
