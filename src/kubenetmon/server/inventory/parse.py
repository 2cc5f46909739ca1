"""Raw API JSON (as orjson decodes it) -> the slim model. Pure functions, one per kind.

Each reads only the fields it keeps, so a 10 KB pod costs a few dictionary lookups and the dict
itself is freed with its page. Repeated strings (namespaces, node names, workloads, zones) are
interned: at 50,000 pods they would otherwise be stored 50,000 times.

A missing or mistyped field the model cannot do without raises `MalformedObject`, naming the field;
the informer skips that one object, counts it and carries on.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from kubenetmon.errors import InventoryError
from kubenetmon.records import parse_rfc3339
from kubenetmon.server.inventory.model import EndpointSlice, Node, Pod, Service, ServicePort, SlicePort
from kubenetmon.server.inventory.workload import (
    REGION_LABELS,
    ZONE_LABELS,
    Owner,
    app_of,
    first_label,
    parse_provider_id,
    workload_of,
)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_intern = sys.intern
T = TypeVar("T")
P = ParamSpec("P")


class MalformedObject(InventoryError):
    """An API object lacks a field the inventory needs, or has it in the wrong shape."""


def _strict(parse: Callable[P, T]) -> Callable[P, T]:
    """Turn any shape error deep in a parser into one `MalformedObject` that says what broke."""

    @functools.wraps(parse)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return parse(*args, **kwargs)
        except MalformedObject:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedObject(f"unexpected shape: {type(exc).__name__}: {exc}") from exc

    return wrapper


@_strict
def parse_pod(obj: Mapping[str, Any]) -> Pod:
    """A Pod object -> `Pod`."""
    meta = _dict(obj, "metadata")
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    labels: Mapping[str, str] = meta.get("labels") or {}
    name = _str(meta, "name")
    node = _intern(spec.get("nodeName") or "")
    owner = _controller(meta.get("ownerReferences") or ())
    workload, workload_kind = workload_of(name, node, labels, owner)
    started = status.get("startTime") or meta.get("creationTimestamp")
    return Pod(
        uid=_str(meta, "uid"),
        namespace=_intern(_str(meta, "namespace")),
        name=name,
        node=node,
        ips=_pod_ips(status),
        phase=_intern(status.get("phase") or "Unknown"),
        host_network=bool(spec.get("hostNetwork")),
        owner_kind=_intern(owner.kind) if owner else "",
        owner_name=_intern(owner.name) if owner else "",
        workload=_intern(workload),
        workload_kind=_intern(workload_kind),
        app=_intern(app_of(labels)),
        started=_time(started, "status.startTime") if started else 0.0,
    )


@_strict
def parse_node(obj: Mapping[str, Any], default_cloud: str = "") -> Node:
    """A Node object -> `Node`; `default_cloud` applies when spec.providerID names no known cloud."""
    meta = _dict(obj, "metadata")
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    labels: Mapping[str, str] = meta.get("labels") or {}
    provider = parse_provider_id(spec.get("providerID") or "")
    internal: list[str] = []
    external: list[str] = []
    for address in status.get("addresses") or ():
        kind = address.get("type")
        target = internal if kind == "InternalIP" else external if kind == "ExternalIP" else None
        if target is not None:
            ip = _ip(address.get("address"), "status.addresses[].address")
            if ip not in target:
                target.append(ip)
    return Node(
        uid=_str(meta, "uid"),
        name=_intern(_str(meta, "name")),
        zone=_intern(first_label(labels, ZONE_LABELS) or provider.zone),
        region=_intern(first_label(labels, REGION_LABELS) or provider.region),
        cloud=_intern(provider.cloud or default_cloud),
        instance_id=provider.instance_id,
        internal_ips=tuple(internal),
        external_ips=tuple(external),
    )


@_strict
def parse_service(obj: Mapping[str, Any]) -> Service:
    """A Service object -> `Service`."""
    meta = _dict(obj, "metadata")
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    ingress = (status.get("loadBalancer") or {}).get("ingress") or ()
    return Service(
        uid=_str(meta, "uid"),
        namespace=_intern(_str(meta, "namespace")),
        name=_str(meta, "name"),
        type=_intern(spec.get("type") or "ClusterIP"),
        cluster_ips=_ips((ip for ip in cluster_ips if ip != "None"), "spec.clusterIPs[]"),
        ports=tuple(_service_port(port) for port in spec.get("ports") or ()),
        load_balancer_ips=_ips((entry.get("ip") for entry in ingress), "status.loadBalancer.ingress[].ip"),
        external_ips=_ips(spec.get("externalIPs") or (), "spec.externalIPs[]"),
    )


@_strict
def parse_endpoint_slice(obj: Mapping[str, Any]) -> EndpointSlice:
    """A discovery.k8s.io/v1 EndpointSlice object -> `EndpointSlice` (FQDN slices keep no addresses)."""
    meta = _dict(obj, "metadata")
    namespace = _intern(_str(meta, "namespace"))
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL, "")
    addresses: list[str] = []
    if obj.get("addressType") in ("IPv4", "IPv6"):
        for endpoint in obj.get("endpoints") or ():
            if _serving(endpoint.get("conditions") or {}):
                addresses.extend(_ip(ip, "endpoints[].addresses[]") for ip in endpoint.get("addresses") or ())
    ports = tuple(
        SlicePort(proto=_proto(port.get("protocol")), port=int(port["port"]))
        for port in obj.get("ports") or ()
        if port.get("port") is not None
    )
    return EndpointSlice(
        uid=_str(meta, "uid"),
        namespace=namespace,
        name=_str(meta, "name"),
        service=_intern(f"{namespace}/{service}") if service else "",
        addresses=tuple(dict.fromkeys(addresses)),
        ports=ports,
    )


def _serving(conditions: Mapping[str, Any]) -> bool:
    # A missing "ready" means unknown, which the API says to treat as ready.
    return conditions.get("ready") is not False or conditions.get("serving") is True


def _service_port(port: Mapping[str, Any]) -> ServicePort:
    if "port" not in port:
        raise MalformedObject("spec.ports[] entry has no port")
    return ServicePort(
        proto=_proto(port.get("protocol")),
        port=int(port["port"]),
        node_port=int(port.get("nodePort") or 0),
        target_port=port.get("targetPort") or int(port["port"]),
    )


def _proto(protocol: str | None) -> str:
    return _intern((protocol or "TCP").lower())


def _controller(refs: Any) -> Owner | None:
    """The ownerReference marked controller, else the first one, else None."""
    chosen = None
    for ref in refs:
        if ref.get("controller"):
            chosen = ref
            break
        chosen = chosen or ref
    if chosen is None:
        return None
    return Owner(kind=chosen.get("kind") or "", name=chosen.get("name") or "")


def _pod_ips(status: Mapping[str, Any]) -> tuple[str, ...]:
    entries = status.get("podIPs")
    if entries:
        return _ips((entry.get("ip") for entry in entries), "status.podIPs[].ip")
    single = status.get("podIP")
    return (_ip(single, "status.podIP"),) if single else ()


def _ips(values: Any, field: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_ip(value, field) for value in values if value))


def _ip(value: Any, field: str) -> str:
    # Fast path for IPv4 (8x quicker than ipaddress): a dotted quad inet_pton accepts is already
    # canonical, since leading zeros are rejected. IPv6 needs ipaddress to compress it canonically.
    try:
        socket.inet_pton(socket.AF_INET, value)
    except (OSError, TypeError):
        pass
    else:
        return str(value)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise MalformedObject(f"{field} {value!r} is not an IP address") from exc


def _time(value: Any, field: str) -> float:
    try:
        return parse_rfc3339(str(value))
    except ValueError as exc:
        raise MalformedObject(f"{field} {value!r} is not an RFC 3339 time") from exc


def _dict(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise MalformedObject(f"object has no {key}")
    return value


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedObject(f"metadata.{key} is missing or not a string")
    return value
