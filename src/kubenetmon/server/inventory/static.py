"""The static inventory: a YAML file describing what Kubernetes does not know, or a whole lab cluster.

It attributes databases on VMs, VPC subnets per zone, NAT gateways and other hosts (`external`), and can
describe nodes, pods and Services outright, which is how the local demo runs without an API server.
The format is documented, with an example, in docs/static-inventory.yaml.

The file is re-read when its modification time, size or inode changes (`reload_if_changed`, or `watch`
in a task). A file that does not parse or validate is rejected with every problem listed (file, path in
the document, what is wrong); the previous good content stays in use and the rejection is counted in
`kubenetmon_server_static_inventory_reloads_total{outcome}`. Endpoint objects are shared: one per node,
pod and external entry, and an entry that did not change keeps its object across reloads.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml
from prometheus_client import Counter, Gauge

from kubenetmon.errors import InventoryError
from kubenetmon.records import Endpoint, EndpointKind
from kubenetmon.server.cloud.ranges import PrefixTable

log = logging.getLogger(__name__)

RELOADS = Counter(
    "kubenetmon_server_static_inventory_reloads_total",
    "Static inventory file loads by outcome (ok, invalid, unreadable).",
    ["outcome"],
)
ENTRIES = Gauge(
    "kubenetmon_server_static_inventory_entries", "Entries in the static inventory in use.", ["kind"]
)

_APP_LABELS = ("app.kubernetes.io/name", "k8s-app", "app")
# libyaml's safe loader is about ten times faster on a 50,000-pod file; same semantics as yaml.safe_load.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

T = TypeVar("T")
_PROTOCOLS = frozenset({"tcp", "udp", "sctp"})


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    zone: str
    region: str
    cloud: str
    instance_id: str
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PodSpec:
    namespace: str
    name: str
    node: str
    ips: tuple[str, ...]
    labels: dict[str, str]
    app: str
    workload: str
    workload_kind: str


@dataclass(frozen=True, slots=True)
class PortSpec:
    port: int
    target_port: int
    node_port: int
    protocol: str


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    namespace: str
    name: str
    ips: tuple[str, ...]
    ports: tuple[PortSpec, ...]
    backends: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExternalSpec:
    cidr: str
    name: str
    zone: str
    region: str
    cloud: str
    cloud_service: str
    instance_id: str
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InventoryDocument:
    """A validated inventory file; top-level cluster, cloud and region are defaults for every entry."""

    cluster: str
    cloud: str
    region: str
    nodes: tuple[NodeSpec, ...]
    pods: tuple[PodSpec, ...]
    services: tuple[ServiceSpec, ...]
    external: tuple[ExternalSpec, ...]


class _Problems:
    """Collects every problem in a document, so one rejection names all of them."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.found.append(f"{path}: {message}")

    def mapping(
        self, value: Any, path: str, allowed: frozenset[str], required: frozenset[str]
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping, got {type(value).__name__}")
            return {}
        for key in sorted(set(value) - allowed, key=str):
            self.add(f"{path}.{key}", f"unknown key (expected one of: {', '.join(sorted(allowed))})")
        for key in sorted(required - set(value)):
            self.add(f"{path}.{key}", "required key is missing")
        return value

    def text(self, item: dict[str, Any], path: str, key: str) -> str:
        value = item.get(key, "")
        if not isinstance(value, str):
            self.add(f"{path}.{key}", f"expected text, got {value!r}")
            return ""
        return value

    def number(self, item: dict[str, Any], path: str, key: str, default: int, low: int = 1) -> int:
        value = item.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 65535:
            self.add(f"{path}.{key}", f"expected a port number {low}-65535, got {value!r}")
            return default
        return value

    def each(self, value: Any, path: str, parse: Callable[[Any, str], T | None]) -> tuple[T, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.add(path, f"expected a list, got {type(value).__name__}")
            return ()
        parsed = (parse(item, f"{path}[{index}]") for index, item in enumerate(value))
        return tuple(item for item in parsed if item is not None)

    def address(self, value: Any, path: str) -> str | None:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            self.add(path, f"{value!r} is not an IP address")
            return None

    def network(self, value: Any, path: str) -> str | None:
        try:
            return str(ipaddress.ip_network(value))
        except (TypeError, ValueError) as exc:
            self.add(path, f"{value!r} is not a CIDR network ({exc})")
            return None

    def words(self, value: Any, path: str) -> str | None:
        if isinstance(value, str) and value:
            return value
        self.add(path, f"expected non-empty text, got {value!r}")
        return None


def _node(p: _Problems, value: Any, path: str) -> NodeSpec:
    item = p.mapping(value, path, frozenset(f.name for f in fields(NodeSpec)), frozenset({"name"}))
    texts = {key: p.text(item, path, key) for key in ("name", "zone", "region", "cloud", "instance_id")}
    return NodeSpec(**texts, addresses=p.each(item.get("addresses"), f"{path}.addresses", p.address))


def _pod(p: _Problems, value: Any, path: str) -> PodSpec:
    allowed = frozenset(f.name for f in fields(PodSpec))
    item = p.mapping(value, path, allowed, frozenset({"namespace", "name"}))
    labels = item.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in [*labels, *labels.values()]):
        p.add(f"{path}.labels", "expected a mapping of text to text")
        labels = {}
    texts = {key: p.text(item, path, key) for key in allowed - {"ips", "labels"}}
    return PodSpec(**texts, ips=p.each(item.get("ips"), f"{path}.ips", p.address), labels=labels)


def _port(p: _Problems, value: Any, path: str) -> PortSpec:
    item = p.mapping(value, path, frozenset(f.name for f in fields(PortSpec)), frozenset({"port"}))
    port = p.number(item, path, "port", 1)
    protocol = p.text(item, path, "protocol").lower() or "tcp"
    if protocol not in _PROTOCOLS:
        p.add(f"{path}.protocol", f"expected one of {sorted(_PROTOCOLS)}, got {protocol!r}")
    node_port = p.number(item, path, "node_port", 0, low=0)
    return PortSpec(port, p.number(item, path, "target_port", port), node_port, protocol)


def _service(p: _Problems, value: Any, path: str) -> ServiceSpec:
    allowed = frozenset(f.name for f in fields(ServiceSpec))
    item = p.mapping(value, path, allowed, frozenset({"namespace", "name"}))
    return ServiceSpec(
        p.text(item, path, "namespace"),
        p.text(item, path, "name"),
        p.each(item.get("ips"), f"{path}.ips", p.address),
        p.each(item.get("ports"), f"{path}.ports", lambda v, at: _port(p, v, at)),
        p.each(item.get("backends"), f"{path}.backends", p.address),
    )


def _external(p: _Problems, value: Any, path: str) -> ExternalSpec | None:
    allowed = frozenset(f.name for f in fields(ExternalSpec))
    item = p.mapping(value, path, allowed, frozenset({"cidr"}))
    cidr = p.network(item.get("cidr"), f"{path}.cidr") if "cidr" in item else None
    texts = {key: p.text(item, path, key) for key in allowed - {"cidr", "flags"}}
    flags = p.each(item.get("flags"), f"{path}.flags", p.words)
    return None if cidr is None else ExternalSpec(cidr, **texts, flags=tuple(sorted(flags)))


def validate_document(data: Any, source: str) -> InventoryDocument:
    """Check a parsed YAML document; raises InventoryError listing every problem with its path."""
    p = _Problems()
    sections = frozenset({"cluster", "cloud", "region", "nodes", "pods", "services", "external"})
    top = p.mapping({} if data is None else data, "$", sections, frozenset())
    document = InventoryDocument(
        p.text(top, "$", "cluster"),
        p.text(top, "$", "cloud"),
        p.text(top, "$", "region"),
        p.each(top.get("nodes"), "$.nodes", lambda v, at: _node(p, v, at)),
        p.each(top.get("pods"), "$.pods", lambda v, at: _pod(p, v, at)),
        p.each(top.get("services"), "$.services", lambda v, at: _service(p, v, at)),
        p.each(top.get("external"), "$.external", lambda v, at: _external(p, v, at)),
    )
    _check_references(p, document)
    if p.found:
        listed = "\n  ".join(p.found)
        raise InventoryError(f"static inventory {source} is invalid ({len(p.found)} problems):\n  {listed}")
    return document


def _check_references(p: _Problems, document: InventoryDocument) -> None:
    node_names = {node.name for node in document.nodes}
    owners: dict[str, str] = {}
    for index, node in enumerate(document.nodes):
        for address in node.addresses:
            _claim(p, owners, address, f"$.nodes[{index}]", f"node {node.name}")
    for index, pod in enumerate(document.pods):
        if pod.node and pod.node not in node_names:
            p.add(f"$.pods[{index}].node", f"no node called {pod.node!r} in $.nodes")
        for address in pod.ips:
            _claim(p, owners, address, f"$.pods[{index}]", f"pod {pod.namespace}/{pod.name}")


def _claim(p: _Problems, owners: dict[str, str], address: str, path: str, owner: str) -> None:
    if address in owners:
        p.add(path, f"address {address} is already used by {owners[address]}")
    owners[address] = owner


@dataclass(frozen=True, slots=True)
class InventoryIndex:
    """One loaded version of the file, indexed the way attribution asks."""

    by_ip: Mapping[str, Endpoint]
    nodes: Mapping[str, Endpoint]
    service_addresses: Mapping[tuple[str, int, str], str]
    """(ip, port, protocol) of a ClusterIP, LoadBalancer IP or node address + NodePort -> 'ns/name'."""
    service_backends: Mapping[tuple[str, int, str], str]
    """(backend ip, target port, protocol) -> 'ns/name'."""
    externals: PrefixTable[Endpoint]


class _Interner:
    """Hands out one Endpoint per distinct content, reusing the previous load's objects."""

    def __init__(self, previous: Mapping[tuple[object, ...], Endpoint]) -> None:
        self.previous = previous
        self.current: dict[tuple[object, ...], Endpoint] = {}

    def get(self, **values: object) -> Endpoint:
        key = tuple(values.get(f.name, "") for f in fields(Endpoint))
        endpoint = self.current.get(key) or self.previous.get(key) or Endpoint(**values)  # type: ignore[arg-type]
        self.current[key] = endpoint
        return endpoint


def build_index(document: InventoryDocument, interner: _Interner) -> InventoryIndex:
    """Index a validated document (pure apart from reusing interned objects)."""
    nodes: dict[str, Endpoint] = {}
    by_ip: dict[str, Endpoint] = {}
    for node in document.nodes:
        endpoint = interner.get(kind=EndpointKind.NODE, **_placement(document, node), node=node.name)
        nodes[node.name] = endpoint
        by_ip.update(dict.fromkeys(node.addresses, endpoint))
    node_specs = {node.name: node for node in document.nodes}
    for pod in document.pods:
        endpoint = interner.get(**_pod_fields(document, pod, node_specs.get(pod.node)))
        by_ip.update(dict.fromkeys(pod.ips, endpoint))
    addresses: dict[tuple[str, int, str], str] = {}
    backends: dict[tuple[str, int, str], str] = {}
    node_addresses = [address for node in document.nodes for address in node.addresses]
    for service in document.services:
        name = f"{service.namespace}/{service.name}"
        for port in service.ports:
            addresses.update(dict.fromkeys(((ip, port.port, port.protocol) for ip in service.ips), name))
            if port.node_port:
                node_keys = ((ip, port.node_port, port.protocol) for ip in node_addresses)
                addresses.update(dict.fromkeys(node_keys, name))
            backends.update(
                dict.fromkeys(((ip, port.target_port, port.protocol) for ip in service.backends), name)
            )
    externals = PrefixTable(
        (
            entry.cidr,
            interner.get(
                kind=EndpointKind.EXTERNAL,
                cloud=entry.cloud or document.cloud,
                region=entry.region or document.region,
                zone=entry.zone,
                app=entry.name,
                instance_id=entry.instance_id,
                cloud_service=entry.cloud_service,
                flags=entry.flags,
            ),
        )
        for entry in document.external
    )
    return InventoryIndex(by_ip, nodes, addresses, backends, externals)


def _placement(document: InventoryDocument, node: NodeSpec | None) -> dict[str, object]:
    if node is None:
        return {"cloud": document.cloud, "region": document.region, "cluster": document.cluster}
    return {
        "cloud": node.cloud or document.cloud,
        "region": node.region or document.region,
        "cluster": document.cluster,
        "zone": node.zone,
        "instance_id": node.instance_id,
    }


def _pod_fields(document: InventoryDocument, pod: PodSpec, node: NodeSpec | None) -> dict[str, object]:
    app = pod.app or next((pod.labels[label] for label in _APP_LABELS if label in pod.labels), "")
    return {
        "kind": EndpointKind.POD,
        **_placement(document, node),
        "node": pod.node,
        "namespace": pod.namespace,
        "pod": pod.name,
        "app": app,
        "workload": pod.workload,
        "workload_kind": pod.workload_kind,
    }


class StaticInventory:
    """Implements EndpointLookup, ServiceLookup and ExternalLookup (external only) from a YAML file."""

    def __init__(self, path: Path) -> None:
        """Load `path`; raises InventoryError if the first load fails (there is nothing to fall back on)."""
        self.path = path
        self._stat: tuple[int, int, int] | None = None
        self._interned: dict[tuple[object, ...], Endpoint] = {}
        self._index = self._load()

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed on disk. True if new content is in use; never raises."""
        try:
            if self._file_stat() == self._stat:
                return False
            self._index = self._load()
        except InventoryError as exc:
            log.error("%s; keeping the previous static inventory", exc)
            return False
        return True

    async def watch(self, interval_seconds: float = 5.0) -> None:
        """Poll for changes forever (run as a task)."""
        while True:
            await asyncio.sleep(interval_seconds)
            await asyncio.to_thread(self.reload_if_changed)

    def _file_stat(self) -> tuple[int, int, int]:
        try:
            stat = self.path.stat()
        except OSError as exc:
            RELOADS.labels("unreadable").inc()
            raise InventoryError(f"static inventory {self.path}: cannot read it: {exc.strerror}") from exc
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def _load(self) -> InventoryIndex:
        stat = self._file_stat()
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            RELOADS.labels("unreadable").inc()
            raise InventoryError(f"static inventory {self.path}: cannot read it: {exc}") from exc
        try:
            document = validate_document(yaml.load(text, Loader=_SAFE_LOADER), str(self.path))
        except yaml.YAMLError as exc:
            RELOADS.labels("invalid").inc()
            raise InventoryError(f"static inventory {self.path}: not valid YAML: {exc}") from exc
        except InventoryError:
            RELOADS.labels("invalid").inc()
            raise
        interner = _Interner(self._interned)
        index = build_index(document, interner)
        self._interned, self._stat = interner.current, stat
        RELOADS.labels("ok").inc()
        for kind, count in (
            ("node", len(index.nodes)),
            ("pod", len(document.pods)),
            ("service", len(document.services)),
            ("external", len(document.external)),
        ):
            ENTRIES.labels(kind).set(count)
        log.info(
            "loaded static inventory %s: %d nodes, %d pods, %d services, %d external entries",
            self.path,
            len(index.nodes),
            len(document.pods),
            len(document.services),
            len(document.external),
        )
        return index

    def endpoint_at(self, ip: str, when: float) -> Endpoint | None:
        """The pod or node with address `ip` (the file has no history, so `when` is not used)."""
        return self._index.by_ip.get(ip)

    def node(self, name: str) -> Endpoint | None:
        """The node called `name`, or None."""
        return self._index.nodes.get(name)

    def service_at(self, ip: str, port: int, proto: str, when: float) -> str | None:
        """'namespace/name' of the Service reached at `ip`:`port`, or None."""
        return self._index.service_addresses.get((ip, port, proto))

    def service_of_backend(self, ip: str, port: int, proto: str, when: float) -> str | None:
        """'namespace/name' of the Service that lists `ip`:`port` as a backend, or None."""
        return self._index.service_backends.get((ip, port, proto))

    def external(self, ip: str) -> Endpoint | None:
        """The most specific external entry containing `ip`, or None."""
        return self._index.externals.lookup(ip)
