"""Certificates for mutual TLS between agents and the server: a private CA, one server certificate and
one client certificate per node, as PEM files (what `kubenetmon certs` writes).

Keys are ECDSA P-256: small, fast to handshake, and accepted by gRPC's TLS stack. A node's certificate
carries the node name as its subject CN and as its only DNS SAN, which is what the server compares a
batch's node against (see `transport.tls.peer_identity`).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"

# Backdating covers clocks that run a little behind the machine that issued the certificate.
_BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Issuer:
    """A CA certificate and its private key, able to sign leaf certificates."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def node_cert_names(node: str) -> tuple[str, str]:
    """File names (certificate, key) of a node's client certificate."""
    return f"node-{node}.pem", f"node-{node}-key.pem"


def new_ca(common_name: str = "kubenetmon CA", days: int = 3650) -> Issuer:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issuer(cert, key)


def issue(
    issuer: Issuer, common_name: str, names: list[str], *, server: bool, days: int = 365
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate for `names` (IP addresses become IP SANs, URIs URI SANs, the rest DNS SANs).

    `server=True` makes a TLS server certificate, otherwise a TLS client certificate.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
        .sign(issuer.key, hashes.SHA256())
    )
    return cert, key


def load_or_create_ca(directory: Path, days: int = 3650) -> tuple[Issuer, bool]:
    """The CA in `directory` if both its files exist, else a new one written there; True if new."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} is not an EC private key; move it away to create a new CA")
        return Issuer(cert, key), False
    issuer = new_ca(days=days)
    write_pair(directory, CA_CERT, CA_KEY, issuer.cert, issuer.key)
    return issuer, True


def write_pair(
    directory: Path, cert_name: str, key_name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    """Write a certificate (mode 0644) and its unencrypted private key (mode 0600) as PEM."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / cert_name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Created 0600 from the start, so the key is never readable by others, not even briefly.
    fd = os.open(directory / key_name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)


def _general_name(name: str) -> x509.GeneralName:
    if "://" in name:
        return x509.UniformResourceIdentifier(name)
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
