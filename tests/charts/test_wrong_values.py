"""Wrong values stop `helm install` with a message that names the value and what is wrong with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.charts.rendering import HelmError, Profile, template

pytestmark = pytest.mark.helm

AGENT = Profile("kubenetmon-agent", None)
SERVER = Profile("kubenetmon-server", None)


def _error(helm: Path, profile: Profile, values: dict[str, Any]) -> str:
    with pytest.raises(HelmError) as failure:
        template(helm, profile, values)
    return str(failure.value)


def test_a_value_of_the_wrong_type_names_the_value_and_both_types(helm: Path) -> None:
    message = _error(helm, SERVER, {"metrics": {"port": "8883/tcp"}})
    assert "at '/metrics/port': got string, want integer" in message


def test_a_misspelt_top_level_key_is_rejected(helm: Path) -> None:
    message = _error(helm, SERVER, {"replicaCont": 3})
    assert "additional properties 'replicaCont' not allowed" in message


def test_a_misspelt_nested_key_is_rejected(helm: Path) -> None:
    message = _error(helm, AGENT, {"tls": {"certManagerCsi": {"issuerName": "ca"}}})
    assert "at '/tls': additional properties 'certManagerCsi' not allowed" in message


def test_the_clickhouse_store_requires_a_host(helm: Path) -> None:
    message = _error(helm, SERVER, {"store": {"type": "clickhouse"}})
    assert "at '/store/clickhouse/host': minLength: got 0, want 1" in message


def test_the_embedded_store_refuses_more_than_one_replica(helm: Path) -> None:
    message = _error(helm, SERVER, {"replicaCount": 2})
    assert "replicaCount is 2 but store.type=embedded needs exactly 1" in message


def test_tls_without_a_certificate_source_says_how_to_provide_one(helm: Path) -> None:
    message = _error(helm, SERVER, {"tls": {"certManager": {"enabled": False}}})
    assert "set tls.certManager.enabled=true, or tls.existingSecret" in message


def test_an_existing_issuer_must_be_named(helm: Path) -> None:
    message = _error(helm, SERVER, {"tls": {"certManager": {"createIssuer": False}}})
    assert "needs tls.certManager.issuerRef.name" in message


def test_an_unknown_agent_tls_mode_lists_the_valid_ones(helm: Path) -> None:
    message = _error(helm, AGENT, {"tls": {"mode": "mtls"}})
    assert "at '/tls/mode': value must be one of 'certManagerCSI', 'hostPath', 'disabled'" in message


def test_a_malformed_network_is_rejected(helm: Path) -> None:
    message = _error(helm, AGENT, {"config": {"ignoreCidr": ["10.0.0.0"]}})
    assert "at '/config/ignoreCidr/0': '10.0.0.0' does not match pattern" in message


def test_an_unknown_dsn_parameter_is_rejected(helm: Path) -> None:
    values = {"store": {"type": "clickhouse", "clickhouse": {"host": "ch", "params": {"tabel": "x"}}}}
    message = _error(helm, SERVER, values)
    assert "at '/store/clickhouse/params': additional properties 'tabel' not allowed" in message


def test_a_write_ahead_log_claim_refuses_more_than_one_replica(helm: Path) -> None:
    values = {"replicaCount": 2, "store": {"type": "clickhouse", "clickhouse": {"host": "ch"}}}
    message = _error(helm, SERVER, {**values, "wal": {"persistence": {"enabled": True}}})
    assert "replicaCount is 2 but wal.persistence.enabled needs exactly 1" in message


def test_no_kubernetes_api_needs_a_static_inventory(helm: Path) -> None:
    message = _error(helm, SERVER, {"kubernetes": {"enabled": False}})
    assert "kubernetes.enabled=false needs inventory.enabled=true" in message


def test_the_server_grace_period_must_cover_its_shutdown_steps(helm: Path) -> None:
    message = _error(helm, SERVER, {"config": {"shutdownGrace": 30}})
    assert (
        "terminationGracePeriodSeconds (75) must be at least three times config.shutdownGrace (30)" in message
    )


def test_the_agent_grace_period_must_cover_its_drain(helm: Path) -> None:
    message = _error(helm, AGENT, {"config": {"drainTimeout": 30}})
    assert "terminationGracePeriodSeconds (30) must exceed config.drainTimeout (30)" in message


def test_a_cloud_ranges_url_must_name_its_provider(helm: Path) -> None:
    message = _error(helm, SERVER, {"config": {"cloudRangesUrl": ["https://mirror.example.com/aws.json"]}})
    assert (
        "at '/config/cloudRangesUrl/0': 'https://mirror.example.com/aws.json' does not match pattern"
        in message
    )
