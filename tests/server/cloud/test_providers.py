"""Vendor file parsers: duplicate rules, normalisation, and precise rejection of wrong shapes."""

from __future__ import annotations

import json

import pytest

from kubenetmon.server.cloud.providers import Provider, RangeEntry, RangeFileError, parse
from kubenetmon.server.cloud.table import CloudRangeTable
from tests.server.cloud.fixtures import AWS, AZURE, GCP, GOOG, dump


def by_prefix(provider: Provider, document: object) -> dict[str, RangeEntry]:
    return {entry.prefix: entry for entry in parse(provider, dump(document))}


def test_aws_prefers_data_services_then_named_services_then_amazon_then_ec2() -> None:
    entries = by_prefix(Provider.AWS, AWS)
    assert entries["198.51.100.0/24"] == RangeEntry("198.51.100.0/24", "aws", "us-east-1", "s3")
    assert entries["203.0.113.0/24"].service == "amazon"
    assert entries["198.51.0.0/16"].region == "global"
    assert entries["2001:db8:2::/48"].service == "dynamodb"


def test_aws_priority_does_not_depend_on_file_order() -> None:
    reversed_doc = dict(AWS, prefixes=list(reversed(AWS["prefixes"])))  # type: ignore[call-overload]
    assert by_prefix(Provider.AWS, reversed_doc) == by_prefix(Provider.AWS, AWS)


def test_gcp_scope_is_the_region_and_service_names_are_normalised() -> None:
    entries = by_prefix(Provider.GCP, GCP)
    assert entries["192.0.2.0/25"] == RangeEntry("192.0.2.0/25", "gcp", "europe-west1", "googlecloud")
    assert entries["2001:db8:3::/48"].region == "us-central1"


def test_goog_json_entries_are_global_google_services_and_cloud_json_wins_for_identical_prefixes() -> None:
    table = CloudRangeTable(
        {Provider.GCP: parse(Provider.GCP, dump(GCP)), Provider.GOOGLE: parse(Provider.GOOGLE, dump(GOOG))}
    )
    inside, outside = table.lookup("192.0.2.1"), table.lookup("192.0.2.200")
    assert (inside.region, inside.cloud_service) == ("europe-west1", "googlecloud")  # type: ignore[union-attr]
    assert (outside.region, outside.cloud_service) == ("global", "googleservice")  # type: ignore[union-attr]


def test_azure_takes_the_region_of_a_regional_tag_and_prefers_storage_case_insensitively() -> None:
    entries = by_prefix(Provider.AZURE, AZURE)
    assert entries["2001:db8:1::/48"] == RangeEntry("2001:db8:1::/48", "azure", "westeurope", "azurestorage")
    assert entries["192.0.2.128/26"] == RangeEntry("192.0.2.128/26", "azure", "global", "azurecloud")
    assert entries["192.0.2.192/26"].service == "azuresql"


def test_azure_tags_without_system_service_are_named_by_their_tag() -> None:
    document = {
        "values": [
            {
                "name": "STORAGE.WESTEUROPE",
                "properties": {"region": "westeurope", "addressPrefixes": ["192.0.2.0/24"]},
            }
        ]
    }
    assert by_prefix(Provider.AZURE, document)["192.0.2.0/24"].service == "storage"


def test_identical_documents_build_one_shared_endpoint_per_cloud_region_and_service() -> None:
    table = CloudRangeTable({Provider.AWS: parse(Provider.AWS, dump(AWS))})
    assert table.lookup("198.51.100.1") is table.lookup("198.51.100.200")


@pytest.mark.parametrize(
    ("provider", "data", "message"),
    [
        (Provider.AWS, b"<html>oops</html>", "aws range file is not JSON"),
        (Provider.AWS, b"[]", "top level is list"),
        (Provider.AWS, json.dumps({"prefixes": {}}).encode(), "'prefixes' is missing or not a list"),
        (
            Provider.AWS,
            json.dumps({"prefixes": [{"ip_prefix": "1.2.3.0/24", "region": "x"}]}).encode(),
            "prefixes[0].service is missing",
        ),
        (
            Provider.AWS,
            json.dumps({"prefixes": [{"ip_prefix": "1.2.3.0/33", "region": "x", "service": "y"}]}).encode(),
            "prefixes[0].ip_prefix = '1.2.3.0/33' is not an IP prefix",
        ),
        (Provider.AWS, json.dumps({"prefixes": []}).encode(), "lists no prefixes"),
        (Provider.GCP, json.dumps({"prefixes": ["1.2.3.0/24"]}).encode(), "prefixes[0] is not an object"),
        (Provider.AZURE, json.dumps({"values": [{"name": "x"}]}).encode(), "values[0].properties is missing"),
    ],
)
def test_a_file_of_the_wrong_shape_is_rejected_with_where_and_what(
    provider: Provider, data: bytes, message: str
) -> None:
    with pytest.raises(RangeFileError) as caught:
        parse(provider, data)
    assert message in str(caught.value)
