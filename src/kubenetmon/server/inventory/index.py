"""The time-aware inventory index: address -> pod or node, address:port -> Service, name -> node.

`InventoryIndex` implements `EndpointLookup` and `ServiceLookup`. Attribution calls it a few hundred
thousand times a second, so the answers are precomputed on every change:

- `_fixed` maps an address to its one possible answer: node addresses, and pod addresses that only
  one pod held within the retention window. One dict lookup, no time check.
- `_timed` holds addresses that several pods held within the window (IP reuse), resolved per call
  by `history.holder_at`.

A host-network pod reports its node's address; the node wins every address it has, so those
flows belong to the node (the pod cannot be told apart from other host processes by address).
Deleted pods, nodes, Services and endpoints stay resolvable for `deletion_grace` seconds, then
`prune()` forgets them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from kubenetmon.records import Endpoint, EndpointKind
from kubenetmon.server.inventory.claims import ClaimTable, pop_expired
from kubenetmon.server.inventory.history import Holding, holder_at
from kubenetmon.server.inventory.model import EndpointSlice, Node, Pod, Service

ServiceKey = tuple[str, int, str]
NodePortKey = tuple[int, str]


@dataclass(frozen=True, slots=True)
class ClusterIdentity:
    """What the cluster as a whole says about every endpoint in it (from the server's settings)."""

    cluster: str = ""
    cloud: str = ""
    """Used when a node's providerID names no cloud."""
    region: str = ""
    """Used when a node's labels and providerID name no region."""


@dataclass(slots=True)
class _PodEntry:
    pod: Pod
    endpoint: Endpoint
    deleted_at: float = math.inf


@dataclass(slots=True)
class _NodeEntry:
    node: Node
    endpoint: Endpoint
    deleted_at: float = math.inf


class InventoryIndex:
    """Everything the Kubernetes API told us, arranged for attribution's questions."""

    def __init__(
        self,
        identity: ClusterIdentity | None = None,
        deletion_grace: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.identity = identity or ClusterIdentity()
        self.deletion_grace = deletion_grace
        self._clock = clock
        self._pods: dict[str, _PodEntry] = {}
        self._pods_on_node: dict[str, set[str]] = {}
        self._live_pod_by_name: dict[tuple[str, str], str] = {}
        """(namespace, name) -> uid of pods that exist in the API now (deleted ones are not here)."""
        self._holdings: dict[str, list[Holding]] = {}
        self._released: dict[tuple[str, str], float] = {}
        """(address, pod uid) -> when the pod let go of it (deleted, completed, lost it); oldest first."""
        self._deleted_pods: dict[str, float] = {}
        """uid -> deletion time, oldest first."""
        self._nodes: dict[str, _NodeEntry] = {}
        self._node_by_name: dict[str, _NodeEntry] = {}
        self._node_by_ip: dict[str, _NodeEntry] = {}
        self._deleted_nodes: dict[str, float] = {}
        self._fixed: dict[str, Endpoint] = {}
        self._timed: dict[str, list[Holding]] = {}
        self._services: dict[str, Service] = {}
        self._service_ips: ClaimTable[ServiceKey] = ClaimTable()
        self._node_ports: ClaimTable[NodePortKey] = ClaimTable()
        self._slices: dict[str, EndpointSlice] = {}
        self._backends: ClaimTable[ServiceKey] = ClaimTable()

    # --- lookups (the hot path) ---

    def endpoint_at(self, ip: str, when: float) -> Endpoint | None:
        """The pod or node that held `ip` at epoch second `when`, or None (see the module docstring)."""
        endpoint = self._fixed.get(ip)
        if endpoint is not None:
            return endpoint
        holdings = self._timed.get(ip)
        if holdings is None:
            return None
        return holder_at(holdings, when)

    def node(self, name: str) -> Endpoint | None:
        """The node called `name`, or None."""
        entry = self._node_by_name.get(name)
        return entry.endpoint if entry is not None else None

    def service_at(self, ip: str, port: int, proto: str, when: float) -> str | None:
        """'namespace/name' of the Service reached at `ip`:`port` over `proto`: a ClusterIP, LoadBalancer
        ingress IP or external IP with that port, or a NodePort on any node address. `when` is not
        consulted: a Service's addresses change rarely, and a deleted one lingers for the grace period."""
        name = self._service_ips.resolved.get((ip, port, proto))
        if name is None and ip in self._node_by_ip:
            return self._node_ports.resolved.get((port, proto))
        return name

    def service_of_backend(self, ip: str, port: int, proto: str, when: float) -> str | None:
        """'namespace/name' of the Service whose EndpointSlices list `ip`:`port` as a serving endpoint;
        the smallest name when several do. Endpoints removed from a slice linger for the grace period."""
        return self._backends.resolved.get((ip, port, proto))

    # --- inspection ---

    def pod(self, uid: str) -> Pod | None:
        """The pod with this uid (also while it lingers after deletion), or None."""
        entry = self._pods.get(uid)
        return entry.pod if entry is not None else None

    def node_of_pod(self, namespace: str, name: str) -> str | None:
        """The node a pod that exists now is scheduled on (for agent identities), or None."""
        uid = self._live_pod_by_name.get((namespace, name))
        return self._pods[uid].pod.node or None if uid is not None else None

    def counts(self) -> dict[str, int]:
        """Objects held per kind, including deleted ones still in their grace period."""
        return {
            "pods": len(self._pods),
            "nodes": len(self._nodes),
            "services": len(self._services),
            "endpointslices": len(self._slices),
            "addresses": len(self._fixed) + len(self._timed),
            "reused_addresses": len(self._timed),
        }

    # --- pods ---

    def upsert_pod(self, pod: Pod) -> None:
        """Add or update a pod; a no-op when nothing attribution uses has changed."""
        now = self._clock()
        entry = self._pods.get(pod.uid)
        if entry is not None and entry.pod == pod and entry.deleted_at == math.inf:
            return
        old_ips = entry.pod.ips if entry is not None else ()
        if entry is None:
            entry = self._pods[pod.uid] = _PodEntry(pod, self._pod_endpoint(pod))
        else:
            if entry.pod.node != pod.node:
                self._pods_on_node.get(entry.pod.node, set()).discard(pod.uid)
            entry.pod, entry.endpoint, entry.deleted_at = pod, self._pod_endpoint(pod), math.inf
            self._deleted_pods.pop(pod.uid, None)
        self._pods_on_node.setdefault(pod.node, set()).add(pod.uid)
        self._live_pod_by_name[(pod.namespace, pod.name)] = pod.uid
        indexed = () if pod.host_network else pod.ips
        for ip in old_ips:
            if ip not in indexed:
                self._release_holding(ip, pod.uid, now)
        for ip in indexed:
            self._hold(ip, entry, now)

    def delete_pod(self, uid: str) -> None:
        """The pod is gone from the API; it stays resolvable for the grace period."""
        entry = self._pods.get(uid)
        if entry is None or entry.deleted_at != math.inf:
            return
        now = self._clock()
        entry.deleted_at = self._deleted_pods[uid] = now
        if self._live_pod_by_name.get((entry.pod.namespace, entry.pod.name)) == uid:
            del self._live_pod_by_name[(entry.pod.namespace, entry.pod.name)]
        for ip in entry.pod.ips:
            self._release_holding(ip, uid, now)

    def _pod_endpoint(self, pod: Pod) -> Endpoint:
        node = self._node_by_name.get(pod.node)
        where = node.endpoint if node is not None else self._node_endpoint(None, pod.node)
        return replace(
            where,
            kind=EndpointKind.POD,
            namespace=pod.namespace,
            pod=pod.name,
            app=pod.app,
            workload=pod.workload,
            workload_kind=pod.workload_kind,
        )

    def _hold(self, ip: str, entry: _PodEntry, now: float) -> None:
        pod = entry.pod
        holdings = self._holdings.setdefault(ip, [])
        holding = next((h for h in holdings if h.uid == pod.uid), None)
        if holding is None:
            holding = Holding(pod.uid, entry.endpoint, since=pod.started or now)
            holdings.append(holding)
        holding.endpoint = entry.endpoint
        if pod.completed and not holding.completed:
            # The sandbox and its address were released when the pod completed; we see that only now.
            holding.until, holding.completed = min(holding.until, now), True
            self._released[(ip, pod.uid)] = now
        elif not pod.completed and (holding.until != math.inf or holding.completed):
            holding.until, holding.completed = math.inf, False
            self._released.pop((ip, pod.uid), None)
        self._resolve(ip)

    def _release_holding(self, ip: str, uid: str, now: float) -> None:
        for holding in self._holdings.get(ip, ()):
            if holding.uid == uid and holding.until == math.inf:
                holding.until = now
                self._released[(ip, uid)] = now
        self._resolve(ip)

    # --- nodes ---

    def upsert_node(self, node: Node) -> None:
        """Add or update a node; pods on it get new endpoints only when its location or machine changed."""
        entry = self._nodes.get(node.uid)
        if entry is not None and entry.node == node and entry.deleted_at == math.inf:
            return
        old_ips = entry.node.ips if entry is not None else ()
        endpoint = self._node_endpoint(node, node.name)
        if entry is None:
            entry = self._nodes[node.uid] = _NodeEntry(node, endpoint)
            relocated = True
        else:
            relocated = _location(entry.endpoint) != _location(endpoint)
            entry.node, entry.endpoint, entry.deleted_at = node, endpoint, math.inf
            self._deleted_nodes.pop(node.uid, None)
        self._node_by_name[node.name] = entry
        for ip in old_ips:
            if ip not in node.ips and self._node_by_ip.get(ip) is entry:
                del self._node_by_ip[ip]
                self._resolve(ip)
        for ip in node.ips:
            self._node_by_ip[ip] = entry
            self._resolve(ip)
        if relocated:
            self._rebuild_pods_on(node.name)

    def delete_node(self, uid: str) -> None:
        """The node is gone from the API; its name and addresses stay resolvable for the grace period."""
        entry = self._nodes.get(uid)
        if entry is not None and entry.deleted_at == math.inf:
            entry.deleted_at = self._deleted_nodes[uid] = self._clock()

    def _node_endpoint(self, node: Node | None, name: str) -> Endpoint:
        identity = self.identity
        if node is None:
            return Endpoint(
                EndpointKind.NODE,
                cloud=identity.cloud,
                region=identity.region,
                cluster=identity.cluster,
                node=name,
            )
        return Endpoint(
            kind=EndpointKind.NODE,
            cloud=node.cloud or identity.cloud,
            region=node.region or identity.region,
            cluster=identity.cluster,
            zone=node.zone,
            node=node.name,
            instance_id=node.instance_id,
        )

    def _rebuild_pods_on(self, node_name: str) -> None:
        for uid in self._pods_on_node.get(node_name, ()):
            entry = self._pods[uid]
            entry.endpoint = self._pod_endpoint(entry.pod)
            for ip in entry.pod.ips:
                for holding in self._holdings.get(ip, ()):
                    if holding.uid == uid:
                        holding.endpoint = entry.endpoint
                self._resolve(ip)

    # --- services and endpoint slices ---

    def upsert_service(self, service: Service) -> None:
        """Add or update a Service's addresses and ports."""
        now = self._clock()
        self._services[service.uid] = service
        addresses = service.cluster_ips + service.load_balancer_ips + service.external_ips
        keys = [(ip, port.port, port.proto) for ip in addresses for port in service.ports]
        self._service_ips.claim(service.uid, keys, service.key, now)
        node_ports = [(port.node_port, port.proto) for port in service.ports if port.node_port]
        self._node_ports.claim(service.uid, node_ports, service.key, now)

    def delete_service(self, uid: str) -> None:
        """The Service is gone; its addresses answer for the grace period unless another claims them."""
        now = self._clock()
        self._services.pop(uid, None)
        self._service_ips.release(uid, now)
        self._node_ports.release(uid, now)

    def upsert_endpoint_slice(self, endpoint_slice: EndpointSlice) -> None:
        """Add or update a slice's serving backends."""
        self._slices[endpoint_slice.uid] = endpoint_slice
        keys = (
            [(ip, port.port, port.proto) for ip in endpoint_slice.addresses for port in endpoint_slice.ports]
            if endpoint_slice.service
            else []
        )
        self._backends.claim(endpoint_slice.uid, keys, endpoint_slice.service, self._clock())

    def delete_endpoint_slice(self, uid: str) -> None:
        """The slice is gone; its backends answer for the grace period unless another slice lists them."""
        self._slices.pop(uid, None)
        self._backends.release(uid, self._clock())

    # --- resolution and pruning ---

    def _resolve(self, ip: str) -> None:
        node = self._node_by_ip.get(ip)
        holdings = self._holdings.get(ip)
        if node is not None:
            self._fixed[ip] = node.endpoint
            self._timed.pop(ip, None)
        elif not holdings:
            self._fixed.pop(ip, None)
            self._timed.pop(ip, None)
        elif len(holdings) == 1:
            self._fixed[ip] = holdings[0].endpoint
            self._timed.pop(ip, None)
        else:
            self._fixed.pop(ip, None)
            self._timed[ip] = holdings

    def prune(self) -> int:
        """Forget what was deleted or released more than `deletion_grace` seconds ago; returns how many
        objects and address tenures were forgotten."""
        horizon = self._clock() - self.deletion_grace
        forgotten = 0
        for ip, uid in pop_expired(self._released, horizon):
            entry = self._pods.get(uid)
            if entry is not None and entry.deleted_at == math.inf and ip in entry.pod.ips:
                continue  # a completed pod still in the API keeps its ended tenure until it is deleted
            self._drop_holding(ip, uid)
            forgotten += 1
        for uid in pop_expired(self._deleted_pods, horizon):
            entry = self._pods.pop(uid)
            self._pods_on_node.get(entry.pod.node, set()).discard(uid)
            for ip in entry.pod.ips:
                self._drop_holding(ip, uid)
            forgotten += 1
        for uid in pop_expired(self._deleted_nodes, horizon):
            self._forget_node(self._nodes.pop(uid))
            forgotten += 1
        for table in (self._service_ips, self._node_ports, self._backends):
            forgotten += table.prune(horizon)
        return forgotten

    def _drop_holding(self, ip: str, uid: str) -> None:
        holdings = self._holdings.get(ip)
        if holdings is None:
            return
        holdings[:] = [h for h in holdings if h.uid != uid]
        if not holdings:
            del self._holdings[ip]
        self._resolve(ip)

    def _forget_node(self, entry: _NodeEntry) -> None:
        if self._node_by_name.get(entry.node.name) is entry:
            del self._node_by_name[entry.node.name]
        for ip in entry.node.ips:
            if self._node_by_ip.get(ip) is entry:
                del self._node_by_ip[ip]
                self._resolve(ip)


def _location(endpoint: Endpoint) -> tuple[str, str, str, str, str]:
    return endpoint.cloud, endpoint.region, endpoint.cluster, endpoint.zone, endpoint.instance_id
