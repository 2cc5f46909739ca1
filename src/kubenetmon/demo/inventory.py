"""What the server is told about the lab: a static inventory and a cloud range file, both from the topology.

The inventory describes nodes (underlay addresses), pods (both families), workloads and the ClusterIP
services, exactly as a Kubernetes API would. Externals are deliberately left out of it: the cloud-service
endpoint must be recognised through the server's real cloud-range path (an AWS `ip-ranges.json` written to
the range cache directory), and the internet endpoint must match nothing at all.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import yaml

from kubenetmon.lab import External, Topology
from kubenetmon.server.cloud.providers import Provider
from kubenetmon.server.cloud.snapshot import write_cache

CLUSTER = "demo"
CLOUD = "aws"
ENVIRONMENT = "demo"
_V4_PREFIX, _V6_PREFIX = 24, 48
"""Each cloud-service endpoint is published as the /24 and /48 holding its addresses."""


def inventory_document(topology: Topology, cluster: str = CLUSTER, cloud: str = CLOUD) -> dict[str, Any]:
    """The static inventory (docs/static-inventory.yaml format) of a lab topology."""
    nodes = [
        {"name": n.name, "zone": n.zone, "region": n.region, "addresses": [n.ipv4, n.ipv6]}
        for n in topology.nodes
    ]
    pods = []
    for pod in topology.pods:
        entry: dict[str, Any] = {
            "namespace": pod.namespace,
            "name": pod.name,
            "node": pod.node,
            "ips": [pod.ipv4, pod.ipv6],
            "labels": dict(pod.labels),
        }
        if pod.workload is not None:
            entry |= {"workload": pod.workload, "workload_kind": pod.workload_kind}
        pods.append(entry)
    services = [
        {
            "namespace": service.namespace,
            "name": service.name,
            "ips": [service.vip_v4, service.vip_v6],
            "ports": [
                {"port": service.port, "target_port": service.target_port, "protocol": protocol}
                for protocol in service.protocols
            ],
            "backends": [
                ip for key in service.backend_keys for ip in (topology.pod(key).ipv4, topology.pod(key).ipv6)
            ],
        }
        for service in topology.services
    ]
    region = topology.regions[0] if topology.regions else ""
    return {
        "cluster": cluster,
        "cloud": cloud,
        "region": region,
        "nodes": nodes,
        "pods": pods,
        "services": services,
    }


def write_inventory(path: Path, topology: Topology) -> Path:
    """Write the topology's static inventory to `path` (YAML)."""
    path.write_text(yaml.safe_dump(inventory_document(topology), sort_keys=False))
    return path


def aws_ranges_document(externals: tuple[External, ...]) -> dict[str, Any]:
    """An AWS ip-ranges.json listing the /24 and /48 of every AWS cloud-service external."""
    listed = [e for e in externals if e.kind == "cloud-service" and e.cloud == CLOUD]
    return {
        "syncToken": "1",
        "createDate": "2026-01-01-00-00-00",
        "prefixes": [
            {
                "ip_prefix": _prefix(e.ipv4, _V4_PREFIX),
                "region": e.region,
                "service": (e.service or "").upper(),
            }
            for e in listed
        ],
        "ipv6_prefixes": [
            {
                "ipv6_prefix": _prefix(e.ipv6, _V6_PREFIX),
                "region": e.region,
                "service": (e.service or "").upper(),
            }
            for e in listed
        ],
    }


def write_cloud_ranges(cache_dir: Path, topology: Topology) -> Path:
    """Put the AWS range file where the server looks for cached copies (`--cloud-ranges-cache-dir`)."""
    write_cache(cache_dir, Provider.AWS, json.dumps(aws_ranges_document(topology.externals)).encode())
    return cache_dir


def _prefix(address: str, length: int) -> str:
    return str(ipaddress.ip_network(f"{address}/{length}", strict=False))
