"""Classification: every decision in the documented order, and the closed reason set."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubenetmon.records import BillingClass, ConnectionClass, Endpoint, EndpointKind
from kubenetmon.server.attribution.classify import CLASSES, BillingReason, Scope, classify

HERE = Endpoint(EndpointKind.POD, cloud="aws", region="us-east-1", zone="use1-az1", node="node-a")
NOWHERE = Endpoint(EndpointKind.POD, node="node-a")


def ep(kind: EndpointKind = EndpointKind.POD, **fields: str) -> Endpoint:
    return Endpoint(kind, **fields)


CASES = [
    # (local, remote, scope, same_node) -> reason
    (HERE, ep(zone="use1-az1"), Scope.CLUSTER, True, "same-node"),
    (HERE, ep(zone="use1-az2"), Scope.CLUSTER, True, "same-node"),
    (HERE, ep(EndpointKind.PRIVATE), Scope.HOST_LOCAL, False, "host-local"),
    (HERE, ep(EndpointKind.UNKNOWN), Scope.SPECIAL, False, "special-address"),
    (HERE, ep(EndpointKind.UNKNOWN), Scope.UNKNOWN, False, "remote-unknown"),
    (HERE, ep(EndpointKind.SERVICE), Scope.SERVICE, False, "service-backend-unknown"),
    (HERE, ep(EndpointKind.INTERNET), Scope.PUBLIC, False, "public-no-range-match"),
    (
        HERE,
        ep(EndpointKind.CLOUD, cloud="gcp", region="us-east1"),
        Scope.CLOUD,
        False,
        "cloud-range-other-cloud",
    ),
    (HERE, ep(EndpointKind.CLOUD, cloud="aws", region="global"), Scope.CLOUD, False, "cloud-range-global"),
    (
        HERE,
        ep(EndpointKind.CLOUD, cloud="aws", region="us-east-1"),
        Scope.CLOUD,
        False,
        "cloud-range-same-region",
    ),
    (
        HERE,
        ep(EndpointKind.CLOUD, cloud="aws", region="eu-west-1"),
        Scope.CLOUD,
        False,
        "cloud-range-other-region",
    ),
    (
        NOWHERE,
        ep(EndpointKind.CLOUD, cloud="aws", region="us-east-1"),
        Scope.CLOUD,
        False,
        "local-placement-unknown",
    ),
    (
        ep(cloud="aws"),
        ep(EndpointKind.CLOUD, cloud="aws", region="us-east-1"),
        Scope.CLOUD,
        False,
        "local-placement-unknown",
    ),
    (HERE, ep(EndpointKind.PRIVATE), Scope.PRIVATE, False, "private-range-no-zone"),
    (HERE, ep(cloud="gcp", region="us-east1", zone="a"), Scope.CLUSTER, False, "other-cloud"),
    (HERE, ep(cloud="aws", region="us-west-2", zone="usw2-az1"), Scope.CLUSTER, False, "regions-differ"),
    (HERE, ep(EndpointKind.EXTERNAL, region="eu-west-1"), Scope.INVENTORY, False, "regions-differ"),
    (
        HERE,
        ep(EndpointKind.PRIVATE, cloud="aws", region="eu-west-1"),
        Scope.PEERED,
        False,
        "peered-range-other-region",
    ),
    (HERE, ep(EndpointKind.PRIVATE, cloud="aws", region="us-east-1"), Scope.PEERED, False, "zone-unknown"),
    (HERE, ep(EndpointKind.PRIVATE, region="us-east-1", zone="use1-az1"), Scope.PEERED, False, "zones-equal"),
    (HERE, ep(zone="use1-az1"), Scope.CLUSTER, False, "zones-equal"),
    (HERE, ep(zone="use1-az2"), Scope.CLUSTER, False, "zones-differ"),
    (HERE, ep(EndpointKind.EXTERNAL, zone="use1-az2"), Scope.INVENTORY, False, "zones-differ"),
    (HERE, ep(), Scope.CLUSTER, False, "zone-unknown"),
    (NOWHERE, ep(zone="use1-az1"), Scope.CLUSTER, False, "zone-unknown"),
]


@pytest.mark.parametrize(("local", "remote", "scope", "same_node", "reason"), CASES)
def test_classify_decides_by_the_documented_order(
    local: Endpoint, remote: Endpoint, scope: Scope, same_node: bool, reason: str
) -> None:
    assert classify(local, remote, scope, same_node) == reason


def test_every_reason_has_exactly_one_pair_of_classes_and_the_table_covers_them_all() -> None:
    assert set(CLASSES) == set(BillingReason)


def test_every_reason_is_reachable_from_the_table_of_cases() -> None:
    assert {case[-1] for case in CASES} == {reason.value for reason in BillingReason}


@pytest.mark.parametrize(
    ("reason", "connection", "billing"),
    [
        ("zones-differ", ConnectionClass.INTRA_VPC, BillingClass.CROSS_ZONE),
        ("cloud-range-same-region", ConnectionClass.INTRA_REGION, BillingClass.CLOUD_SERVICE),
        ("cloud-range-other-region", ConnectionClass.INTER_REGION, BillingClass.CROSS_REGION),
        ("public-no-range-match", ConnectionClass.PUBLIC_INTERNET, BillingClass.INTERNET),
        ("zone-unknown", ConnectionClass.INTRA_VPC, BillingClass.UNKNOWN),
    ],
)
def test_reasons_map_to_the_legacy_connection_class_and_the_billing_class(
    reason: str, connection: ConnectionClass, billing: BillingClass
) -> None:
    assert CLASSES[BillingReason(reason)] == (connection, billing)


texts = st.sampled_from(["", "a", "b"])


@given(
    local=st.builds(Endpoint, st.just(EndpointKind.POD), cloud=texts, region=texts, zone=texts),
    remote=st.builds(Endpoint, st.sampled_from(EndpointKind), cloud=texts, region=texts, zone=texts),
    scope=st.sampled_from(Scope),
)
def test_a_missing_zone_never_yields_a_zone_billing_class(
    local: Endpoint, remote: Endpoint, scope: Scope
) -> None:
    reason = classify(local, remote, scope, same_node=False)
    if not (local.zone and remote.zone):
        assert (
            CLASSES[reason][1] not in (BillingClass.SAME_ZONE, BillingClass.CROSS_ZONE)
            or reason == "host-local"
        )
