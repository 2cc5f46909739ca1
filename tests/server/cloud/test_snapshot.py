"""The bundled snapshot loads, is labelled, and knows well-known real prefixes."""

from __future__ import annotations

import pytest

from kubenetmon.server.cloud.providers import Provider
from kubenetmon.server.cloud.snapshot import snapshot_manifest, startup_entries
from kubenetmon.server.cloud.table import CloudRangeTable


@pytest.fixture(scope="module")
def table() -> CloudRangeTable:
    return CloudRangeTable(startup_entries(None))


def test_every_provider_has_a_labelled_snapshot_file() -> None:
    manifest = snapshot_manifest()
    files = manifest["files"]
    assert isinstance(files, dict)
    assert set(files) == {p.value for p in Provider}
    assert all(entry["source"] and entry["fidelity"] for entry in files.values())


@pytest.mark.parametrize(
    ("ip", "cloud", "region", "service"),
    [
        ("52.216.8.1", "aws", "us-east-1", "s3"),  # S3 us-east-1, also listed as AMAZON
        ("8.8.8.8", "gcp", "global", "googleservice"),  # goog.json only
        ("34.80.0.1", "gcp", "asia-east1", "googlecloud"),  # cloud.json, inside goog.json's 34.64.0.0/10
        ("20.60.0.1", "azure", "eastus", "storage"),  # Storage.EastUS and AzureCloud.eastus
    ],
)
def test_well_known_addresses_resolve_as_published(
    table: CloudRangeTable, ip: str, cloud: str, region: str, service: str
) -> None:
    found = table.lookup(ip)
    assert found is not None
    assert (found.cloud, found.region, found.cloud_service) == (cloud, region, service)


def test_the_snapshot_is_large_enough_to_be_the_real_thing(table: CloudRangeTable) -> None:
    assert table.prefix_counts[Provider.AWS] > 10_000
    assert table.prefix_counts[Provider.AZURE] > 50_000
    assert table.lookup("1.1.1.1") is None
