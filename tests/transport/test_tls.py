"""TLS settings say what is missing, and a client certificate vouches for the names in its DNS SANs
(or, without any, its CN)."""

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from kubenetmon.errors import SettingsError
from kubenetmon.transport import certificates
from kubenetmon.transport.tls import (
    PeerIdentity,
    PodIdentity,
    TlsSettings,
    certificate_names,
    channel_credentials,
    channel_options,
    peer_identity,
    server_credentials,
)
from tests.transport.conftest import Pki


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def test_missing_files_are_all_named_at_once(tmp_path: Path) -> None:
    settings = TlsSettings(cert=tmp_path / "nope.pem")
    assert settings.problems() == [
        f"--tls-cert {tmp_path / 'nope.pem'} is not a readable file",
        "--tls-key is required (or pass --insecure to run without TLS)",
        "--tls-ca is required (or pass --insecure to run without TLS)",
    ]
    with pytest.raises(SettingsError, match="--tls-key is required"):
        settings.validated()


def test_insecure_needs_no_files_and_makes_no_credentials() -> None:
    insecure = TlsSettings(insecure=True)
    assert insecure.problems() == []
    assert server_credentials(insecure) is None
    assert channel_credentials(insecure) is None


def test_complete_settings_make_credentials(pki: Pki) -> None:
    assert server_credentials(pki.server) is not None
    assert channel_credentials(pki.client("node-a")) is not None


def test_a_server_name_override_becomes_a_channel_option(pki: Pki) -> None:
    settings = TlsSettings(
        cert=pki.server.cert, key=pki.server.key, ca=pki.server.ca, server_name="kubenetmon"
    )
    assert channel_options(settings) == [("grpc.ssl_target_name_override", "kubenetmon")]


def test_a_node_certificate_vouches_for_its_dns_sans_not_its_cn() -> None:
    issuer = certificates.new_ca()
    cert, _ = certificates.issue(
        issuer, "common-name", ["node-a", "node-a.example", "198.18.0.5"], server=False
    )
    assert certificate_names(pem(cert)) == frozenset({"node-a", "node-a.example"})


def test_a_certificate_without_dns_sans_vouches_for_its_cn() -> None:
    issuer = certificates.new_ca()
    cert, _ = certificates.issue(issuer, "node-b", ["198.18.0.6"], server=False)
    assert certificate_names(pem(cert)) == frozenset({"node-b"})


def test_an_authenticated_peer_may_only_report_for_its_own_names() -> None:
    issuer = certificates.new_ca()
    cert, _ = certificates.issue(issuer, "node-a", ["node-a"], server=False)
    peer = peer_identity({"x509_pem_cert": [pem(cert)]}, "ipv4:127.0.0.1:5000")
    assert peer == PeerIdentity("ipv4:127.0.0.1:5000", frozenset({"node-a"}), authenticated=True)
    assert peer.may_report_for("node-a")
    assert not peer.may_report_for("node-b")


def test_a_peer_on_an_insecure_server_is_believed() -> None:
    peer = peer_identity({}, "ipv4:127.0.0.1:5000")
    assert not peer.authenticated
    assert peer.may_report_for("anything")


def test_a_spiffe_uri_san_names_a_pod_and_no_node() -> None:
    issuer = certificates.new_ca()
    uri = "spiffe://kubenetmon/ns/monitoring/pod/kubenetmon-agent-x7k2p"
    cert, _ = certificates.issue(issuer, "agent", [uri, "spiffe://other/not-a-pod"], server=False)
    peer = peer_identity({"x509_pem_cert": [pem(cert)]}, "ipv4:127.0.0.1:5000")
    assert peer.pods == frozenset({PodIdentity("kubenetmon", "monitoring", "kubenetmon-agent-x7k2p")})
    assert peer.names == frozenset({"agent"})
    assert not peer.may_report_for("node-a")
    assert "pod monitoring/kubenetmon-agent-x7k2p (kubenetmon)" in peer.describe()
