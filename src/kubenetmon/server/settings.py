"""Everything the server daemon is configured with, validated once, every problem reported together.

Each part belongs to the component that uses it (transport, ingest buffer, flusher, store, attribution,
inventory, cloud ranges); this module only bundles them with the daemon's own knobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kubenetmon.errors import SettingsError
from kubenetmon.server.attribution.settings import AttributionSettings
from kubenetmon.server.cloud.refresh import RefreshSettings
from kubenetmon.server.flusher import FlusherSettings
from kubenetmon.server.ingest import IngestSettings
from kubenetmon.server.inventory.cluster import KubeInventorySettings
from kubenetmon.store.dsn import StoreSettings
from kubenetmon.transport.service import ServiceSettings


@dataclass(frozen=True, slots=True)
class AgentIdentityPolicy:
    """Which pod certificates count as agents (cert-manager CSI SPIFFE identities).

    A certificate naming a node (DNS SAN or CN) may always report for that node. One naming a pod by
    spiffe://<trust domain>/ns/<namespace>/pod/<name> may report for the node the pod runs on, as the
    Kubernetes inventory knows it, if its trust domain and namespace are the ones configured here.
    """

    trust_domain: str = "kubenetmon"
    namespaces: tuple[str, ...] = ()
    """Namespaces whose pods are agents; empty means pod identities are not accepted at all."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The whole server configuration. Build it, then call `validated()`."""

    service: ServiceSettings
    ingest: IngestSettings
    store: StoreSettings
    attribution: AttributionSettings
    flusher: FlusherSettings = field(default_factory=FlusherSettings)
    kubernetes: KubeInventorySettings | None = field(default_factory=KubeInventorySettings)
    """None runs without the Kubernetes API (static inventory only)."""
    static_inventory: Path | None = None
    static_reload_seconds: float = 5.0
    cloud_ranges: RefreshSettings = field(default_factory=RefreshSettings)
    agents: AgentIdentityPolicy = field(default_factory=AgentIdentityPolicy)
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 8883
    """/metrics, /healthz, /readyz; 0 turns the HTTP endpoint off."""
    inventory_timeout: float = 300.0
    """How long to wait for the first full sync before attributing anyway (and saying so)."""
    shutdown_grace: float = 20.0
    """On SIGTERM: how long open streams may finish their batch, and how long the store may take to
    absorb the buffer; what is left stays in the ingest buffer for the next start."""

    def validated(self) -> ServerSettings:
        """This object if every part makes sense; otherwise one SettingsError listing every problem."""
        problems = [*self.service.problems(), *self.ingest.problems()]
        try:
            self.attribution.validated()
        except SettingsError as exc:
            problems.append(str(exc))
        if self.kubernetes is None and self.static_inventory is None:
            problems.append(
                "without the Kubernetes API (--no-kubernetes) an --inventory file is needed, "
                "or no address could be attributed"
            )
        if self.static_inventory is not None and not self.static_inventory.is_file():
            problems.append(f"--inventory {self.static_inventory} is not a readable file")
        if not 0 <= self.metrics_port <= 65535:
            problems.append(f"--metrics-port {self.metrics_port} is not a port number")
        if self.shutdown_grace < 0 or self.inventory_timeout < 0 or self.static_reload_seconds <= 0:
            problems.append("durations must not be negative (and the reload interval must be positive)")
        if problems:
            raise SettingsError("invalid server settings: " + "; ".join(problems))
        return self
