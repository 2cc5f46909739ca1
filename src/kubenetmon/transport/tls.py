"""Mutual TLS for the agent <-> server stream, and the peer identity the server derives from it.

Both sides present a certificate and verify the other's against a CA bundle; plaintext needs an explicit
`insecure=True` (the client and the service log a warning when they use it).

Identity rule: a batch claiming node N is accepted only from a client certificate that lists N as a DNS
subject alternative name; a certificate without any DNS SAN is matched by its subject common name
instead (the RFC 6125 order). `kubenetmon certs` puts the node name in both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID

from kubenetmon.errors import SettingsError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Certificate files for one side of the connection (PEM), or an explicit opt-out."""

    cert: Path | None = None
    """This side's certificate chain (`--tls-cert`)."""
    key: Path | None = None
    """This side's private key (`--tls-key`)."""
    ca: Path | None = None
    """CA bundle the other side's certificate must chain to (`--tls-ca`)."""
    insecure: bool = False
    """Plaintext, unauthenticated. For local experiments only; the server then trusts claimed node names."""
    server_name: str = ""
    """Client only: the name to expect in the server's certificate when it differs from the host in the
    target address (e.g. connecting by IP to a certificate issued for a DNS name)."""

    def problems(self) -> list[str]:
        """Every reason these settings cannot work, as sentences naming the setting; empty when fine."""
        if self.insecure:
            return []
        found = []
        for name, path in (("--tls-cert", self.cert), ("--tls-key", self.key), ("--tls-ca", self.ca)):
            if path is None:
                found.append(f"{name} is required (or pass --insecure to run without TLS)")
            elif not path.is_file():
                found.append(f"{name} {path} is not a readable file")
        return found

    def validated(self) -> TlsSettings:
        """These settings, or SettingsError listing every problem at once."""
        problems = self.problems()
        if problems:
            raise SettingsError("; ".join(problems))
        return self


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """Who is on the other end of a stream, as established by TLS."""

    address: str
    """gRPC's peer string, e.g. ipv4:10.0.0.7:43122."""
    names: frozenset[str]
    """Node names the client certificate vouches for (DNS SANs, else the CN); empty when insecure."""
    authenticated: bool
    """False only on an insecure server, where any claimed node name is believed."""
    pods: frozenset[PodIdentity] = frozenset()
    """Pods the certificate vouches for through SPIFFE URI SANs (cert-manager's CSI driver issues
    these per agent pod); which node such a pod may report for is the server's to decide."""

    def may_report_for(self, node: str) -> bool:
        """Whether a batch claiming `node` may come from this peer, judging by node names alone."""
        return not self.authenticated or node in self.names

    def describe(self) -> str:
        """What the certificate vouches for, for messages."""
        named = sorted(self.names) + [f"pod {p.namespace}/{p.name} ({p.trust_domain})" for p in self.pods]
        return ", ".join(named) or "no name"


@dataclass(frozen=True, slots=True)
class PodIdentity:
    """A pod named by a URI SAN of the form spiffe://<trust domain>/ns/<namespace>/pod/<name>."""

    trust_domain: str
    namespace: str
    name: str


def server_credentials(settings: TlsSettings) -> grpc.ServerCredentials | None:
    """Credentials requiring a client certificate signed by the CA; None (plaintext) when insecure.

    The files are watched: a renewed certificate, key or CA bundle (cert-manager, a rotated Secret) is
    used from the next TLS handshake on, without a restart."""
    if settings.insecure:
        return None
    settings.validated()
    assert settings.cert and settings.key and settings.ca
    files = _ServerCertificateFiles(settings.cert, settings.key, settings.ca)
    # grpc-stubs declare the fetcher's result non-optional; gRPC documents None as "unchanged".
    fetch = cast(Callable[[], grpc.ServerCertificateConfiguration], files.fetch_if_changed)
    return grpc.dynamic_ssl_server_credentials(files.load(), fetch, require_client_authentication=True)


class _ServerCertificateFiles:
    """The server's certificate, key and client CA bundle, reloaded when any of the files changes."""

    def __init__(self, cert: Path, key: Path, ca: Path) -> None:
        self._paths = (cert, key, ca)
        self._stamp = self._stat()

    def load(self) -> grpc.ServerCertificateConfiguration:
        cert, key, ca = (path.read_bytes() for path in self._paths)
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def fetch_if_changed(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before each handshake: a new configuration, or None to keep the current one."""
        try:
            stamp = self._stat()
            if stamp == self._stamp:
                return None
            configuration = self.load()
        except OSError as exc:  # mid-rotation: keep serving with what we have
            log.warning("cannot reload TLS files (%s); keeping the current ones", exc)
            return None
        self._stamp = stamp
        log.info("reloaded the TLS certificate, key and CA bundle from %s", ", ".join(map(str, self._paths)))
        return configuration

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        # A Kubernetes Secret volume swaps a symlink, so the inode changes even if mtime and size do not.
        stats = [path.stat() for path in self._paths]
        return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)


def channel_credentials(settings: TlsSettings) -> grpc.ChannelCredentials | None:
    """Client credentials presenting our certificate and verifying the server's; None when insecure."""
    if settings.insecure:
        return None
    settings.validated()
    assert settings.cert and settings.key and settings.ca
    return grpc.ssl_channel_credentials(
        root_certificates=settings.ca.read_bytes(),
        private_key=settings.key.read_bytes(),
        certificate_chain=settings.cert.read_bytes(),
    )


def channel_options(settings: TlsSettings) -> list[tuple[str, str]]:
    """Channel options the TLS settings imply."""
    if settings.server_name and not settings.insecure:
        return [("grpc.ssl_target_name_override", settings.server_name)]
    return []


def peer_identity(auth_context: Mapping[str, Iterable[bytes]], address: str) -> PeerIdentity:
    """The identity gRPC established for a call (its `auth_context()`), per the module's rule."""
    pem = next(iter(auth_context.get("x509_pem_cert", ())), None)
    if pem is None:
        return PeerIdentity(address=address, names=frozenset(), authenticated=False)
    return PeerIdentity(
        address=address, names=certificate_names(pem), authenticated=True, pods=certificate_pods(pem)
    )


def certificate_names(pem: bytes) -> frozenset[str]:
    """The DNS SANs of a PEM certificate, or its subject CN if it has no DNS SAN."""
    certificate = x509.load_pem_x509_certificate(pem)
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns_names = extension.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns_names = []
    if dns_names:
        return frozenset(dns_names)
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return frozenset(str(attribute.value) for attribute in common_names)


def certificate_pods(pem: bytes) -> frozenset[PodIdentity]:
    """The pods a PEM certificate names in SPIFFE URI SANs (spiffe://domain/ns/NAMESPACE/pod/NAME)."""
    certificate = x509.load_pem_x509_certificate(pem)
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return frozenset()
    pods = set()
    for uri in extension.value.get_values_for_type(x509.UniformResourceIdentifier):
        scheme, _, rest = uri.partition("://")
        parts = rest.split("/")
        if scheme == "spiffe" and len(parts) == 5 and parts[1] == "ns" and parts[3] == "pod" and all(parts):
            pods.add(PodIdentity(trust_domain=parts[0], namespace=parts[2], name=parts[4]))
    return frozenset(pods)
