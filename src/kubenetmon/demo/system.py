"""The whole system on a lab: certificates, a server process, one agent process per lab node.

    with Lab(Topology.demo()) as lab, MeteredLab(lab, workdir) as system:
        system.start()
        ...traffic...
        truth = system.drain()             # daemons stopped in order, then the lab's truth counters
        verdict = system.verdict(truth)    # stored bytes against the truth (see `accuracy`)

Everything a run writes lives under one directory: certificates, the inventory, the cloud range cache,
the server's write-ahead buffer and store, the agents' spools and saved state, and every daemon's log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from kubenetmon.demo import inventory
from kubenetmon.demo.accuracy import LabDirectory, Verdict, compare
from kubenetmon.demo.observed import NodeFlow, StoredBytes, stored_bytes, truth_bytes
from kubenetmon.demo.processes import Daemon, DaemonFailed, DaemonSpec, free_port
from kubenetmon.lab import GroundTruth, Lab
from kubenetmon.store.dsn import parse_dsn
from kubenetmon.store.sink import ClickHouseStore
from kubenetmon.transport import certificates

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class SystemSettings:
    """How the daemons run; the defaults make a run short and its numbers final within seconds."""

    interval: float = 1.0
    """Agent interval, seconds."""
    flush_seconds: float = 1.0
    """Server: age of the oldest buffered row before it is inserted."""
    store_dsn: str = ""
    """Where the server stores; empty: an embedded engine in `<workdir>/store`."""
    spool_on_disk: bool = True
    """Agents keep unacknowledged batches on disk (`--spool-dir`), so a restart resends them."""
    keep_state: bool = True
    """Agents save their counters on SIGTERM (`--state-dir`) and continue from them at the next start."""
    ready_timeout: float = 120.0


@dataclass(frozen=True, slots=True)
class Layout:
    """Where one run keeps its files."""

    root: Path

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def wal(self) -> Path:
        return self.root / "wal"

    @property
    def ranges(self) -> Path:
        return self.root / "cloud-ranges"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yaml"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def agent_dir(self, node: str, what: str) -> Path:
        """`spool` or `state` directory of one node's agent."""
        return self.root / "agents" / node / what


class MeteredLab:
    """A lab with kubenetmon running on it: `start()` (or `with`), then traffic, then `stop()`."""

    def __init__(self, lab: Lab, workdir: Path, settings: SystemSettings | None = None) -> None:
        self.lab = lab
        self.layout = Layout(workdir)
        self.settings = settings or SystemSettings()
        self.store_dsn = self.settings.store_dsn or f"chdb://{self.layout.store}"
        self.grpc_port = free_port()
        self.server = Daemon(self._server_spec(free_port()))
        self.agents = {
            node.name: Daemon(self._agent_spec(node.name, free_port())) for node in lab.topology.nodes
        }

    def __enter__(self) -> MeteredLab:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def prepare(self) -> None:
        """Write certificates, the static inventory and the cloud range file."""
        issuer, _ = certificates.load_or_create_ca(self.layout.certs)
        cert, key = certificates.issue(issuer, LOOPBACK, [LOOPBACK, "localhost"], server=True)
        certificates.write_pair(
            self.layout.certs, certificates.SERVER_CERT, certificates.SERVER_KEY, cert, key
        )
        for node in self.agents:
            cert, key = certificates.issue(issuer, node, [node], server=False)
            certificates.write_pair(self.layout.certs, *certificates.node_cert_names(node), cert, key)
        inventory.write_inventory(self.layout.inventory, self.lab.topology)
        inventory.write_cloud_ranges(self.layout.ranges, self.lab.topology)

    def start_server(self) -> None:
        """Start the server and wait until it takes and stores batches (/readyz)."""
        self.server.start().wait_ready(self.settings.ready_timeout)

    def start_agents(self) -> None:
        """Start every agent, then wait until each has taken its baseline and delivered an interval."""
        for agent in self.agents.values():
            agent.start()
        for agent in self.agents.values():
            agent.wait_ready(self.settings.ready_timeout)

    def start(self) -> MeteredLab:
        """prepare, server, agents."""
        self.prepare()
        self.start_server()
        self.start_agents()
        return self

    def stop(self) -> dict[str, int | None]:
        """Agents first (each sends its last partial interval and drains its spool), then the server
        (it stores its buffer). Returns every daemon's exit status. Safe to call twice."""
        statuses = {agent.name: agent.terminate() for agent in self.agents.values()}
        statuses[self.server.name] = self.server.terminate()
        return statuses

    def drain(self) -> GroundTruth:
        """After the traffic: wait for the last packets, stop every daemon cleanly, read the truth.

        The truth is read after the agents' final dumps, so a packet that slipped in between shows as a
        loss rather than being hidden. DaemonFailed if a daemon did not exit with status 0.
        """
        self.lab.ground_truth(settle=0.1)
        statuses = self.stop()
        failed = {name: status for name, status in statuses.items() if status != 0}
        if failed:
            names = ", ".join(f"{name} (status {status})" for name, status in failed.items())
            raise DaemonFailed(f"{names} did not exit cleanly; logs in {self.layout.logs}")
        return self.lab.ground_truth()

    def stored(self) -> list[StoredBytes]:
        """What the store holds, per flow direction (the embedded engine only once the server is stopped)."""
        with ClickHouseStore(parse_dsn(self.store_dsn)) as store:
            return stored_bytes(store)

    def verdict(self, truth: GroundTruth, excused: dict[NodeFlow, int] | None = None) -> Verdict:
        """The stored bytes against `truth`; `excused` are losses the caller predicts."""
        directory = LabDirectory(self.lab.topology, inventory.CLOUD)
        return compare(directory, truth_bytes(truth), self.stored(), excused)

    def logs(self) -> list[Path]:
        """Every daemon's log file."""
        return [daemon.spec.log for daemon in (self.server, *self.agents.values())]

    def _server_spec(self, metrics_port: int) -> DaemonSpec:
        certs, layout, topology = self.layout.certs, self.layout, self.lab.topology
        args = (
            "server",
            f"--listen={LOOPBACK}:{self.grpc_port}",
            f"--tls-cert={certs / certificates.SERVER_CERT}",
            f"--tls-key={certs / certificates.SERVER_KEY}",
            f"--tls-ca={certs / certificates.CA_CERT}",
            f"--store={self.store_dsn}",
            f"--wal-dir={layout.wal}",
            "--no-kubernetes",
            f"--inventory={layout.inventory}",
            f"--cluster={inventory.CLUSTER}",
            f"--cloud={inventory.CLOUD}",
            f"--region={topology.regions[0]}",
            f"--environment={inventory.ENVIRONMENT}",
            "--cloud-ranges-refresh=0",
            f"--cloud-ranges-cache-dir={layout.ranges}",
            f"--flush-seconds={self.settings.flush_seconds}",
            f"--metrics-host={LOOPBACK}",
            f"--metrics-port={metrics_port}",
        )
        return _spec("server", args, layout.logs / "server.log", metrics_port, "/readyz")

    def _agent_spec(self, node: str, metrics_port: int) -> DaemonSpec:
        certs, layout = self.layout.certs, self.layout
        cert, key = certificates.node_cert_names(node)
        args = [
            "agent",
            f"--node-name={node}",
            f"--netns={self.lab.netns(node)}",
            f"--interval={self.settings.interval}",
            "--output=grpc",
            f"--server={LOOPBACK}:{self.grpc_port}",
            f"--tls-cert={certs / cert}",
            f"--tls-key={certs / key}",
            f"--tls-ca={certs / certificates.CA_CERT}",
            f"--metrics-host={LOOPBACK}",
            f"--metrics-port={metrics_port}",
        ]
        if self.settings.spool_on_disk:
            args.append(f"--spool-dir={layout.agent_dir(node, 'spool')}")
        if self.settings.keep_state:
            args.append(f"--state-dir={layout.agent_dir(node, 'state')}")
        return _spec(
            f"agent {node}", tuple(args), layout.logs / f"agent-{node}.log", metrics_port, "/healthz"
        )


def _spec(name: str, args: tuple[str, ...], log: Path, port: int, health: str) -> DaemonSpec:
    base = f"http://{LOOPBACK}:{port}"
    return DaemonSpec(name, args, log, base + health, base + "/metrics")
