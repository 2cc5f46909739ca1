"""Shared parts for transport tests: a throwaway PKI, a handler that remembers batches durably, and a
real gRPC server on loopback with mTLS."""

from __future__ import annotations

import os

# gRPC's C core logs connection events (GOAWAY, resets) to stderr at INFO; the tests provoke many.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kubenetmon.records import Batch, FlowRecord
from kubenetmon.transport import certificates
from kubenetmon.transport.client import ClientSettings
from kubenetmon.transport.service import AckDecision, FlowServer, PeerIdentity, ServiceSettings
from kubenetmon.transport.tls import TlsSettings


@dataclass(frozen=True, slots=True)
class Pki:
    directory: Path
    server: TlsSettings

    def client(self, node: str) -> TlsSettings:
        cert, key = certificates.node_cert_names(node)
        return TlsSettings(cert=self.directory / cert, key=self.directory / key, ca=self.directory / "ca.pem")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    issuer, _ = certificates.load_or_create_ca(directory)
    cert, key = certificates.issue(issuer, "kubenetmon-server", ["localhost", "127.0.0.1"], server=True)
    certificates.write_pair(directory, certificates.SERVER_CERT, certificates.SERVER_KEY, cert, key)
    for node in ("node-a", "node-b"):
        cert, key = certificates.issue(issuer, node, [node], server=False)
        certificates.write_pair(directory, *certificates.node_cert_names(node), cert, key)
    # The same node name, signed by a CA the server does not trust.
    rogue = certificates.new_ca("rogue CA")
    cert, key = certificates.issue(rogue, "node-a", ["node-a"], server=False)
    certificates.write_pair(directory, "rogue-node-a.pem", "rogue-node-a-key.pem", cert, key)
    server = TlsSettings(
        cert=directory / certificates.SERVER_CERT,
        key=directory / certificates.SERVER_KEY,
        ca=directory / certificates.CA_CERT,
    )
    return Pki(directory, server)


@dataclass
class DurableHandler:
    """Stands in for the server's write-ahead buffer: remembers batches by (node, epoch, seq), which is
    how a real handler recognises a resent batch."""

    stored: dict[tuple[str, str, int], Batch] = field(default_factory=dict)
    arrivals: list[tuple[str, str, int]] = field(default_factory=list)
    duplicates: int = 0
    block_after_storing: set[int] = field(default_factory=set)
    """Seqs for which `handle` stores the batch and then never returns (an ack lost in a crash)."""

    async def handle(self, batch: Batch, peer: PeerIdentity) -> AckDecision:
        key = (batch.node, batch.epoch, batch.seq)
        self.arrivals.append(key)
        if key in self.stored:
            self.duplicates += 1
            return AckDecision.duplicate()
        self.stored[key] = batch
        if batch.seq in self.block_after_storing:
            self.block_after_storing.discard(batch.seq)
            await asyncio.Event().wait()
        return AckDecision.accepted()

    def records(self) -> list[FlowRecord]:
        return [
            record for key in sorted(self.stored, key=lambda k: k[2]) for record in self.stored[key].records
        ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def serving(
    handler: object, tls: TlsSettings, port: int = 0, **limits: int
) -> AsyncIterator[FlowServer]:
    server = FlowServer(handler, ServiceSettings(listen=f"127.0.0.1:{port}", tls=tls, **limits))  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.stop(0)


def client_settings(pki: Pki, port: int, node: str = "node-a", **overrides: object) -> ClientSettings:
    return ClientSettings(target=f"127.0.0.1:{port}", tls=pki.client(node), **overrides)  # type: ignore[arg-type]


def make_records(node: str, count: int, offset: int = 0) -> list[FlowRecord]:
    """Distinct records: record i carries i in its source port and byte counts."""
    return [
        FlowRecord(
            node=node,
            proto=6,
            family=4,
            orig_src="198.18.1.10",
            orig_dst="198.18.2.20",
            orig_sport=10000 + (offset + i) % 50000,
            orig_dport=443,
            reply_src="198.18.2.20",
            reply_dst="198.18.1.10",
            reply_sport=443,
            reply_dport=10000 + (offset + i) % 50000,
            orig_bytes=1000 + offset + i,
            orig_packets=1 + (offset + i) % 7,
            reply_bytes=2 * (offset + i),
            reply_packets=(offset + i) % 5,
            start=1795687200.0,
            end=1795687210.0,
        )
        for i in range(count)
    ]


@pytest.fixture
def handler() -> Iterator[DurableHandler]:
    yield DurableHandler()
