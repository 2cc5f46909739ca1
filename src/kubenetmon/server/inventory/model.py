"""The slim shape of the Kubernetes objects attribution needs, and nothing more.

A full Pod object is 5-20 KB of JSON; these keep the few hundred bytes that name an address's owner,
so 50,000 pods fit in tens of megabytes. Instances are immutable and compared by value: the index
rebuilds a pod's `Endpoint` only when its model actually changed, which filters out the frequent
status updates (conditions, restarts) that touch none of these fields.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPLETED_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod as attribution sees it: who it is, where it runs, which addresses it holds."""

    uid: str
    namespace: str
    name: str
    node: str
    """spec.nodeName; empty while unscheduled."""
    ips: tuple[str, ...]
    """status.podIPs in canonical text form (IPv6 compressed), empty until the sandbox has an address."""
    phase: str
    host_network: bool
    """A host-network pod reports its node's address as its own; the index leaves that address to the node."""
    owner_kind: str
    """Kind of the controlling ownerReference, empty for a bare pod."""
    owner_name: str
    workload: str
    """The top-level controller as far as the pod itself reveals it (see `workload.workload_of`)."""
    workload_kind: str
    app: str
    """app.kubernetes.io/name, else app, else k8s-app; empty when none is set."""
    started: float
    """Epoch seconds the pod began holding its addresses: status.startTime, else creationTimestamp."""

    @property
    def completed(self) -> bool:
        """True once every container has stopped for good (Succeeded or Failed); its IP may be reused."""
        return self.phase in COMPLETED_PHASES


@dataclass(frozen=True, slots=True)
class Node:
    """A node: its location, its machine and its addresses."""

    uid: str
    name: str
    zone: str
    region: str
    cloud: str
    """From spec.providerID's scheme (aws, gcp, azure), else the configured default."""
    instance_id: str
    """The machine behind the node (i-0abc..., a GCE or Azure VM name), from spec.providerID."""
    internal_ips: tuple[str, ...]
    external_ips: tuple[str, ...]

    @property
    def ips(self) -> tuple[str, ...]:
        """Every address the node answers on, internal first."""
        return self.internal_ips + self.external_ips


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One entry of spec.ports."""

    proto: str
    """Lower-case IP protocol name as in `records.proto_name` ("tcp", "udp", "sctp")."""
    port: int
    node_port: int
    """0 when the Service allocates none (ClusterIP services, or allocateLoadBalancerNodePorts=false)."""
    target_port: int | str
    """A number, or a named container port; kept for completeness of the port mapping."""


@dataclass(frozen=True, slots=True)
class Service:
    """A Service: the addresses and ports clients use to reach it."""

    uid: str
    namespace: str
    name: str
    type: str
    cluster_ips: tuple[str, ...]
    """spec.clusterIPs without "None" (headless services have none)."""
    ports: tuple[ServicePort, ...]
    load_balancer_ips: tuple[str, ...]
    """status.loadBalancer.ingress[].ip; hostname-only ingress entries have no address to match."""
    external_ips: tuple[str, ...]

    @property
    def key(self) -> str:
        """'namespace/name', the form lookups return."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class SlicePort:
    """One entry of an EndpointSlice's ports: the port a backend listens on."""

    proto: str
    port: int


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    """The serving backends of one slice of a Service."""

    uid: str
    namespace: str
    name: str
    service: str
    """'namespace/name' from the kubernetes.io/service-name label; empty for slices no Service owns."""
    addresses: tuple[str, ...]
    """Addresses of endpoints that take traffic: ready, or terminating but still serving (their
    established connections keep flowing through the Service's NAT until they close)."""
    ports: tuple[SlicePort, ...]
