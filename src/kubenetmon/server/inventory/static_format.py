"""The static inventory file's format: typed entries, and validation that reports every problem at once.

`validate_document` turns the parsed YAML into an `InventoryDocument` or raises `InventoryError` listing
each problem with its path in the document (e.g. "$.pods[3].ips[0]: '1.2.3' is not an IP address").
The format is documented, with an example, in docs/static-inventory.yaml.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from kubenetmon.errors import InventoryError

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
