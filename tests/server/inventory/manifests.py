"""Kubernetes objects as the API serves them (JSON dicts), for tests and benchmarks.

The same builders feed the parsers directly, the canned API server, and the real kube-apiserver
(where `metadata.uid`/`resourceVersion` are assigned by the server and ignored on create).
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

_versions = itertools.count(1)


def _meta(name: str, namespace: str | None, labels: dict[str, str] | None, uid: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "uid": uid or str(uuid.uuid4()),
        "resourceVersion": str(next(_versions)),
        "creationTimestamp": "2026-11-26T10:00:00Z",
    }
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return meta


def pod(
    name: str,
    namespace: str = "default",
    *,
    node: str = "node-a",
    ips: tuple[str, ...] = (),
    phase: str = "Running",
    labels: dict[str, str] | None = None,
    owner: tuple[str, str] | None = None,
    host_network: bool = False,
    started: str = "2026-11-26T10:00:01Z",
    uid: str | None = None,
) -> dict[str, Any]:
    """A pod; `owner` is (kind, name) of its controller."""
    meta = _meta(name, namespace, labels, uid)
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner[0],
                "name": owner[1],
                "uid": str(uuid.uuid4()),
                "controller": True,
            }
        ]
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "registry.invalid/app:1"}]}
    if node:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
    status: dict[str, Any] = {"phase": phase, "startTime": started}
    if ips:
        status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": ip} for ip in ips]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def node(
    name: str,
    *,
    internal: tuple[str, ...] = (),
    external: tuple[str, ...] = (),
    zone: str = "",
    region: str = "",
    provider_id: str = "",
    legacy_labels: bool = False,
    uid: str | None = None,
) -> dict[str, Any]:
    """A node with topology labels (the deprecated failure-domain ones when `legacy_labels`)."""
    prefix = "failure-domain.beta.kubernetes.io" if legacy_labels else "topology.kubernetes.io"
    labels = {"kubernetes.io/hostname": name}
    if zone:
        labels[f"{prefix}/zone"] = zone
    if region:
        labels[f"{prefix}/region"] = region
    addresses = [{"type": "InternalIP", "address": ip} for ip in internal]
    addresses += [{"type": "ExternalIP", "address": ip} for ip in external]
    addresses.append({"type": "Hostname", "address": name})
    spec: dict[str, Any] = {"providerID": provider_id} if provider_id else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": _meta(name, None, labels, uid),
        "spec": spec,
        "status": {"addresses": addresses},
    }


def service(
    name: str,
    namespace: str = "default",
    *,
    cluster_ips: tuple[str, ...] = (),
    ports: tuple[tuple[str, int, int], ...] = (("TCP", 80, 0),),
    type_: str = "ClusterIP",
    load_balancer_ips: tuple[str, ...] = (),
    external_ips: tuple[str, ...] = (),
    uid: str | None = None,
) -> dict[str, Any]:
    """A Service; `ports` are (protocol, port, nodePort or 0), each targeting port + 8000."""
    spec: dict[str, Any] = {
        "type": type_,
        "selector": {"app": name},
        "ports": [
            {"name": f"p{port}", "protocol": proto, "port": port, "targetPort": port + 8000}
            | ({"nodePort": node_port} if node_port else {})
            for proto, port, node_port in ports
        ],
    }
    if cluster_ips:
        spec["clusterIP"] = cluster_ips[0]
        spec["clusterIPs"] = list(cluster_ips)
    if external_ips:
        spec["externalIPs"] = list(external_ips)
    status: dict[str, Any] = {"loadBalancer": {}}
    if load_balancer_ips:
        status["loadBalancer"] = {"ingress": [{"ip": ip} for ip in load_balancer_ips]}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, namespace, None, uid),
        "spec": spec,
        "status": status,
    }


def endpoint_slice(
    name: str,
    service_name: str,
    namespace: str = "default",
    *,
    ready: tuple[str, ...] = (),
    not_ready: tuple[str, ...] = (),
    terminating_serving: tuple[str, ...] = (),
    ports: tuple[tuple[str, int], ...] = (("TCP", 8080),),
    address_type: str = "IPv4",
    uid: str | None = None,
) -> dict[str, Any]:
    """An EndpointSlice of `service_name` with endpoints in each readiness state."""
    endpoints = [{"addresses": [ip], "conditions": {"ready": True}} for ip in ready]
    endpoints += [{"addresses": [ip], "conditions": {"ready": False}} for ip in not_ready]
    endpoints += [
        {"addresses": [ip], "conditions": {"ready": False, "serving": True, "terminating": True}}
        for ip in terminating_serving
    ]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": _meta(name, namespace, {"kubernetes.io/service-name": service_name}, uid),
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": [{"name": f"p{port}", "protocol": proto, "port": port} for proto, port in ports],
    }
