"""AgentSettings: every knob of the agent, validated once; CLI flags map 1:1 onto these fields."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from kubenetmon.conntrack import netns
from kubenetmon.errors import SettingsError
from kubenetmon.records import proto_number

MIN_EVENT_BUFFER = 64 * 1024


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """The agent's configuration. Construction validates every field and reports all problems at once."""

    node_name: str = ""
    """Name stamped on every record; empty means the hostname (the chart passes spec.nodeName)."""
    interval: float = 5.0
    """Seconds per interval; boundaries fall on wall-clock multiples of it (UTC)."""
    netns: str | None = None
    """Read the conntrack table of this named namespace (/run/netns/NAME) instead of our own."""
    metrics_port: int = 0
    """Port for /metrics and /healthz; 0 turns the HTTP endpoint off."""
    metrics_host: str = "0.0.0.0"  # a DaemonSet is scraped over the node IP
    """Address the metrics endpoint listens on."""
    configure_sysctls: bool = True
    """Set nf_conntrack_acct, _events and _timestamp to 1 at start when they are not (needs CAP_NET_ADMIN)."""
    ignore_protocols: tuple[str, ...] = ()
    """Protocols (names or numbers) never reported, e.g. ('icmp',). Loopback is always skipped."""
    ignore_cidrs: tuple[str, ...] = ()
    """Flows whose original source or destination lies in one of these networks are not reported."""
    ignore_zones: tuple[int, ...] = ()
    """Conntrack zones whose flows are not reported."""
    destroy_grace: float = 120.0
    """Seconds a flow missing from a dump waits for its DESTROY before it counts as lost.

    The kernel sends DESTROY when garbage collection reaps an expired entry, up to ~60 s after dumps
    stopped listing it, hence two minutes."""
    event_buffer_bytes: int = 16 * 1024 * 1024
    """Receive buffer of the DESTROY socket; it absorbs event bursts while a dump runs."""
    state_dir: Path | None = None
    """If set, counters are saved here on graceful shutdown so a restarted agent continues exactly."""
    drain_timeout: float = 10.0
    """Seconds the sink may take to deliver its last batches on shutdown."""

    def __post_init__(self) -> None:
        problems = [*self._interval_problems(), *self._filter_problems(), *self._io_problems()]
        if problems:
            raise SettingsError("invalid agent settings: " + "; ".join(problems))

    @property
    def node(self) -> str:
        """The node name records carry."""
        return self.node_name or socket.gethostname()

    @property
    def ignored_protocol_numbers(self) -> frozenset[int]:
        """`ignore_protocols` as IP protocol numbers."""
        return frozenset(proto_number(name) for name in self.ignore_protocols)

    def _interval_problems(self) -> list[str]:
        problems = []
        if not 0.05 <= self.interval <= 3600:
            problems.append(f"--interval must be between 0.05 and 3600 seconds, got {self.interval}")
        if self.destroy_grace <= 0:
            problems.append(f"--destroy-grace must be positive, got {self.destroy_grace}")
        if self.drain_timeout < 0:
            problems.append(f"--drain-timeout must not be negative, got {self.drain_timeout}")
        return problems

    def _filter_problems(self) -> list[str]:
        problems = []
        for name in self.ignore_protocols:
            try:
                proto_number(name)
            except ValueError as exc:
                problems.append(f"--ignore-protocol: {exc}")
        for cidr in self.ignore_cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                problems.append(f"--ignore-cidr {cidr!r} is not an IPv4 or IPv6 network")
        problems += [
            f"--ignore-zone {z} is not in 0..65535" for z in self.ignore_zones if not 0 <= z <= 65535
        ]
        return problems

    def _io_problems(self) -> list[str]:
        problems = []
        if not 0 <= self.metrics_port <= 65535:
            problems.append(f"--metrics-port must be 0 (off) or a TCP port, got {self.metrics_port}")
        if self.event_buffer_bytes < MIN_EVENT_BUFFER:
            problems.append(f"--event-buffer-bytes must be at least {MIN_EVENT_BUFFER}")
        if self.netns is not None:
            try:
                path = netns.netns_path(self.netns)
            except Exception as exc:
                problems.append(f"--netns: {exc}")
            else:
                if not path.exists():
                    problems.append(f"--netns {self.netns!r}: {path} does not exist (see `ip netns list`)")
        if self.state_dir is not None and self.state_dir.exists() and not self.state_dir.is_dir():
            problems.append(f"--state-dir {self.state_dir} exists and is not a directory")
        return problems
