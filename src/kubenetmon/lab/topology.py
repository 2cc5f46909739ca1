"""What a lab looks like: zones, regions, nodes, pods, ClusterIP services and external endpoints.

Plain frozen dataclasses, validated on construction, so a wrong topology fails before any namespace
exists. Every address is checked against `ranges`: lab hosts only in 198.18.0.0/15 and fd00:db8::/32,
VIPs in 198.19.0.0/16 and fd00:db8:ffff::/64, externals only in documentation ranges.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from kubenetmon.lab import ranges
from kubenetmon.lab.ranges import Family

CniStyle = Literal["bridge", "routed"]
"""bridge: pods on a cbr0 bridge (kubenet-like); routed: /32 veths, one route per pod (calico-like)."""
ExternalKind = Literal["cloud-service", "internet"]
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "bare"})
PROTOCOLS = frozenset({"tcp", "udp"})

_T = TypeVar("_T")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _check_name(value: str, what: str) -> None:
    if not _NAME.match(value):
        raise ValueError(f"{what}: {value!r} is not a DNS label (a-z, 0-9 and '-', at most 63 characters)")


@dataclass(frozen=True, slots=True)
class Node:
    """A Kubernetes node: its own network namespace, holding the conntrack table the agent reads."""

    name: str
    zone: str
    region: str
    cni: CniStyle
    pod_cidr_v4: str
    pod_cidr_v6: str
    ipv4: str
    """Underlay (InternalIP) address in 198.18.0.0/24; 198.18.0.1 is the router."""
    ipv6: str
    """Underlay address in fd00:db8::/64; fd00:db8::1 is the router."""

    def __post_init__(self) -> None:
        _check_name(self.name, "node name")
        if self.cni not in ("bridge", "routed"):
            raise ValueError(f"node {self.name}: cni {self.cni!r} must be 'bridge' or 'routed'")
        what = f"node {self.name}"
        object.__setattr__(self, "pod_cidr_v4", ranges.lab_network(self.pod_cidr_v4, 4, f"{what} pod CIDR"))
        object.__setattr__(self, "pod_cidr_v6", ranges.lab_network(self.pod_cidr_v6, 6, f"{what} pod CIDR"))
        object.__setattr__(self, "ipv4", ranges.lab_address(self.ipv4, 4, f"{what} address"))
        object.__setattr__(self, "ipv6", ranges.lab_address(self.ipv6, 6, f"{what} address"))
        ranges.require_within(self.ipv4, ranges.UNDERLAY_V4, f"{what} address")
        ranges.require_within(self.ipv6, ranges.UNDERLAY_V6, f"{what} address")
        if self.ipv4 == str(ranges.ROUTER_V4) or self.ipv6 == str(ranges.ROUTER_V6):
            raise ValueError(f"{what}: {ranges.ROUTER_V4} and {ranges.ROUTER_V6} belong to the router")
        for cidr in (self.pod_cidr_v4, self.pod_cidr_v6):
            network = ipaddress.ip_network(cidr)
            if any(network.overlaps(other) for other in _RESERVED):
                raise ValueError(f"{what}: pod CIDR {cidr} overlaps the underlay or the service range")

    def ip(self, family: Family) -> str:
        """The node's underlay address of one family."""
        return self.ipv4 if family == 4 else self.ipv6

    def gateway(self, family: Family) -> str:
        """The pods' next hop: the first address of the pod CIDR, held by the node (cbr0 or each veth)."""
        cidr = self.pod_cidr_v4 if family == 4 else self.pod_cidr_v6
        return str(ipaddress.ip_network(cidr).network_address + 1)

    def pod_ip(self, family: Family, host: int) -> str:
        """Address number `host` of the pod CIDR (host 1 is the gateway), for building topologies."""
        cidr = self.pod_cidr_v4 if family == 4 else self.pod_cidr_v6
        return str(ipaddress.ip_network(cidr).network_address + host)


_RESERVED = (ranges.UNDERLAY_V4, ranges.UNDERLAY_V6, ranges.SERVICE_V4, ranges.SERVICE_V6)


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod: one network namespace with `eth0`, attached to its node's CNI."""

    namespace: str
    name: str
    node: str
    ipv4: str
    ipv6: str
    workload: str | None = None
    """Owning workload's name (the Deployment, StatefulSet, ...); None for a bare pod."""
    workload_kind: str = "bare"
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _check_name(self.namespace, "pod namespace")
        _check_name(self.name, "pod name")
        what = f"pod {self.key}"
        object.__setattr__(self, "ipv4", ranges.lab_address(self.ipv4, 4, f"{what} address"))
        object.__setattr__(self, "ipv6", ranges.lab_address(self.ipv6, 6, f"{what} address"))
        object.__setattr__(self, "labels", dict(self.labels))
        if self.workload_kind not in WORKLOAD_KINDS:
            raise ValueError(
                f"{what}: workload kind {self.workload_kind!r} is not one of {sorted(WORKLOAD_KINDS)}"
            )
        if (self.workload is None) != (self.workload_kind == "bare"):
            raise ValueError(f"{what}: a bare pod has no workload name, any other kind needs one")

    @property
    def key(self) -> str:
        """`namespace/name`, the pod's unique name in a topology."""
        return f"{self.namespace}/{self.name}"

    @property
    def app(self) -> str | None:
        """The `app` label, if any."""
        return self.labels.get("app")

    def ip(self, family: Family) -> str:
        """The pod's address of one family."""
        return self.ipv4 if family == 4 else self.ipv6


@dataclass(frozen=True, slots=True)
class ClusterIPService:
    """A ClusterIP service, emulated by DNAT in every node: VIP:port -> one backend pod's IP:target_port."""

    namespace: str
    name: str
    vip_v4: str
    vip_v6: str
    port: int
    target_port: int
    backends: tuple[str, ...]
    """Names of backend pods in the service's namespace."""
    protocols: tuple[str, ...] = ("tcp", "udp")

    def __post_init__(self) -> None:
        _check_name(self.namespace, "service namespace")
        _check_name(self.name, "service name")
        what = f"service {self.key}"
        object.__setattr__(self, "vip_v4", ranges.lab_address(self.vip_v4, 4, f"{what} VIP"))
        object.__setattr__(self, "vip_v6", ranges.lab_address(self.vip_v6, 6, f"{what} VIP"))
        ranges.require_within(self.vip_v4, ranges.SERVICE_V4, f"{what} VIP")
        ranges.require_within(self.vip_v6, ranges.SERVICE_V6, f"{what} VIP")
        object.__setattr__(self, "backends", tuple(self.backends))
        object.__setattr__(self, "protocols", tuple(self.protocols))
        for port in (self.port, self.target_port):
            if not 0 < port < 65536:
                raise ValueError(f"{what}: port {port} is not in 1-65535")
        if not self.backends:
            raise ValueError(f"{what}: needs at least one backend pod")
        if not self.protocols or not set(self.protocols) <= PROTOCOLS:
            raise ValueError(f"{what}: protocols {self.protocols} must be a non-empty subset of tcp, udp")

    @property
    def key(self) -> str:
        """`namespace/name`."""
        return f"{self.namespace}/{self.name}"

    def vip(self, family: Family) -> str:
        """The VIP of one family."""
        return self.vip_v4 if family == 4 else self.vip_v6

    @property
    def backend_keys(self) -> tuple[str, ...]:
        """The backends as pod keys (`namespace/name`)."""
        return tuple(f"{self.namespace}/{name}" for name in self.backends)


@dataclass(frozen=True, slots=True)
class External:
    """A host outside the cluster, reached through the router: a cloud service or an internet host."""

    name: str
    kind: ExternalKind
    ipv4: str
    ipv6: str
    region: str | None = None
    cloud: str | None = None
    """Cloud provider whose ranges hold the address, e.g. 'aws'."""
    service: str | None = None
    """Cloud service name, e.g. 's3'."""
    masquerade: bool = False
    """Nodes SNAT pod traffic to this host to their own underlay address, as clusters do for egress."""

    def __post_init__(self) -> None:
        _check_name(self.name, "external name")
        if self.kind not in ("cloud-service", "internet"):
            raise ValueError(
                f"external {self.name}: kind {self.kind!r} must be 'cloud-service' or 'internet'"
            )
        what = f"external {self.name}"
        object.__setattr__(self, "ipv4", ranges.external_address(self.ipv4, 4, f"{what} address"))
        object.__setattr__(self, "ipv6", ranges.external_address(self.ipv6, 6, f"{what} address"))

    def ip(self, family: Family) -> str:
        """The host's address of one family."""
        return self.ipv4 if family == 4 else self.ipv6


@dataclass(frozen=True, slots=True)
class Topology:
    """A whole lab. Construct it directly, or take `Topology.demo()` / `Topology.two_nodes()`."""

    name: str
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]
    services: tuple[ClusterIPService, ...] = ()
    externals: tuple[External, ...] = ()

    def __post_init__(self) -> None:
        for attr in ("nodes", "pods", "services", "externals"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        _check_name(self.name, "topology name")
        _validate(self)

    @property
    def zones(self) -> tuple[str, ...]:
        """Distinct zones, in node order."""
        return tuple(dict.fromkeys(node.zone for node in self.nodes))

    @property
    def regions(self) -> tuple[str, ...]:
        """Distinct regions of the nodes, in node order."""
        return tuple(dict.fromkeys(node.region for node in self.nodes))

    def node(self, name: str) -> Node:
        """The node called `name`; KeyError names the known ones."""
        return _find(self.nodes, name, lambda node: node.name, "node")

    def pod(self, key: str) -> Pod:
        """The pod `namespace/name`."""
        return _find(self.pods, key, lambda pod: pod.key, "pod")

    def service(self, key: str) -> ClusterIPService:
        """The service `namespace/name`."""
        return _find(self.services, key, lambda service: service.key, "service")

    def external(self, name: str) -> External:
        """The external endpoint called `name`."""
        return _find(self.externals, name, lambda external: external.name, "external")

    def pods_on(self, node: str) -> tuple[Pod, ...]:
        """The pods scheduled on `node`, in topology order."""
        return tuple(pod for pod in self.pods if pod.node == node)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form; `from_dict` reverses it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Topology:
        """Inverse of `to_dict`."""
        return cls(
            name=data["name"],
            nodes=tuple(Node(**item) for item in data["nodes"]),
            pods=tuple(Pod(**item) for item in data["pods"]),
            services=tuple(ClusterIPService(**item) for item in data.get("services", ())),
            externals=tuple(External(**item) for item in data.get("externals", ())),
        )

    @classmethod
    def demo(cls) -> Topology:
        """The standard demo: 2 zones, 3 nodes, 10 pods in 3 namespaces, one service, S3 and the internet."""
        from kubenetmon.lab.catalog import demo_topology  # noqa: PLC0415 - catalog imports this module

        return demo_topology()

    @classmethod
    def two_nodes(cls) -> Topology:
        """A minimal lab for focused tests: a bridge node and a routed node with two pods each."""
        from kubenetmon.lab.catalog import two_nodes_topology  # noqa: PLC0415 - catalog imports this module

        return two_nodes_topology()


def _find(items: Sequence[_T], key: str, key_of: Callable[[_T], str], what: str) -> _T:
    for item in items:
        if key_of(item) == key:
            return item
    known = ", ".join(key_of(item) for item in items) or "none"
    raise KeyError(f"no {what} {key!r} in this topology (known: {known})")


def _validate(topology: Topology) -> None:
    _unique([node.name for node in topology.nodes], "node name")
    _unique([pod.key for pod in topology.pods], "pod")
    _unique([service.key for service in topology.services], "service")
    _unique(["router", *(n.name for n in topology.nodes), *(e.name for e in topology.externals)], "host name")
    _unique(_all_addresses(topology), "address")
    cidrs = [ipaddress.ip_network(n.pod_cidr_v4) for n in topology.nodes]
    cidrs += [ipaddress.ip_network(n.pod_cidr_v6) for n in topology.nodes]
    for i, first in enumerate(cidrs):
        for second in cidrs[i + 1 :]:
            if first.overlaps(second):
                raise ValueError(f"pod CIDRs {first} and {second} overlap")
    nodes = {node.name: node for node in topology.nodes}
    for pod in topology.pods:
        node = nodes.get(pod.node)
        if node is None:
            raise ValueError(f"pod {pod.key}: node {pod.node!r} is not in the topology")
        for family in (4, 6):
            cidr = ipaddress.ip_network(node.pod_cidr_v4 if family == 4 else node.pod_cidr_v6)
            ranges.require_within(pod.ip(family), cidr, f"pod {pod.key} address")
            if pod.ip(family) == node.gateway(family):
                raise ValueError(f"pod {pod.key}: {pod.ip(family)} is node {node.name}'s gateway address")
    pods = {pod.key for pod in topology.pods}
    for service in topology.services:
        for backend in service.backend_keys:
            if backend not in pods:
                raise ValueError(f"service {service.key}: backend pod {backend} is not in the topology")


def _all_addresses(topology: Topology) -> list[str]:
    addresses = [a for n in topology.nodes for a in (n.ipv4, n.ipv6, n.gateway(4), n.gateway(6))]
    addresses += [a for p in topology.pods for a in (p.ipv4, p.ipv6)]
    addresses += [a for s in topology.services for a in (s.vip_v4, s.vip_v6)]
    addresses += [a for e in topology.externals for a in (e.ipv4, e.ipv6)]
    return addresses


def _unique(values: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r} in the topology")
        seen.add(value)
