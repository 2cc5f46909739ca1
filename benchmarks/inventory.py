"""Kubernetes inventory at scale: memory at 50,000 pods and the cost of one lookup.

Run: PYTHONPATH=src:. python -m benchmarks.inventory [--pods 50000] [--nodes 5000] [--services 5000]

Synthetic, realistically sized API JSON (a pod is ~5 KB with managedFields, probes, env, conditions,
container statuses) goes through the real path: list pages as bytes -> orjson -> parsers -> informer
-> index, driven by `KubeInventory` with an in-process client in place of HTTP. Printed:

- initial sync time, and the memory retained after it: Python allocations (tracemalloc, in a second
  pass) and process RSS growth, per pod, against two baselines measured in the same run: the raw
  JSON, and keeping the decoded objects as dicts (what a cache of full objects would hold);
- ns per lookup for endpoint_at (pod, node, reused address, miss), service_at and service_of_backend,
  against the floor: a Python function that does nothing but one dict.get on the same table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import time
import tracemalloc
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from kubenetmon.server.inventory.cluster import KubeInventory, KubeInventorySettings
from kubenetmon.server.inventory.index import InventoryIndex
from kubenetmon.server.inventory.kube import ENDPOINT_SLICES, NODES, PODS, SERVICES, ApiResource
from kubenetmon.server.inventory.parse import parse_pod
from kubenetmon.server.inventory.watch import WatchSettings

ZONES = ("us-west-2a", "us-west-2b", "us-west-2c")
NOW = time.time()


def node_ip(n: int) -> str:
    return f"10.{n // 250}.{n % 250 + 1}.1"


def pod_ip(n: int) -> str:
    return f"100.{64 + n // 65_000}.{n // 250 % 256}.{n % 250 + 2}"


def realistic_pod(n: int, nodes: int) -> dict[str, Any]:
    """A Deployment pod as an API list returns it, with the bulk real pods carry."""
    app = f"app-{n // 10 % 2000}"
    rs = f"{app}-6d4cf56db6"
    node = f"node-{n % nodes}"
    time_ = "2026-11-26T10:00:00Z"
    return {
        "metadata": {
            "name": f"{rs}-{n:05d}x",
            "namespace": f"team-{n % 50}",
            "uid": f"00000000-0000-4000-8000-{n:012d}",
            "resourceVersion": str(1000 + n),
            "creationTimestamp": time_,
            "labels": {
                "app.kubernetes.io/name": app,
                "pod-template-hash": "6d4cf56db6",
                "tier": "web",
                "version": "v1.2.3",
                "team": f"team-{n % 50}",
            },
            "annotations": {
                "kubectl.kubernetes.io/restartedAt": time_,
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": rs,
                    "controller": True,
                    "blockOwnerDeletion": True,
                    "uid": "11111111-2222-4333-8444-555555555555",
                }
            ],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": time_,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:labels": {
                                f"f:{k}": {} for k in ("app", "pod-template-hash", "tier", "version", "team")
                            }
                        },
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"main"}': {
                                    ".": {},
                                    "f:image": {},
                                    "f:env": {},
                                    "f:ports": {},
                                    "f:resources": {},
                                }
                            }
                        },
                    },
                },
                {
                    "manager": "kubelet",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": time_,
                    "fieldsType": "FieldsV1",
                    "subresource": "status",
                    "fieldsV1": {
                        "f:status": {
                            "f:conditions": {},
                            "f:containerStatuses": {},
                            "f:hostIP": {},
                            "f:podIP": {},
                            "f:podIPs": {},
                            "f:phase": {},
                            "f:startTime": {},
                        }
                    },
                },
            ],
        },
        "spec": {
            "nodeName": node,
            "serviceAccountName": "default",
            "containers": [
                {
                    "name": "main",
                    "image": f"registry.example.invalid/{app}:v1.2.3",
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": f"SETTING_{i}", "value": f"value-{i}-{n}"} for i in range(6)],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"memory": "256Mi"},
                    },
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5},
                    "volumeMounts": [
                        {
                            "name": "kube-api-access",
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "readOnly": True,
                        }
                    ],
                }
            ],
            "volumes": [
                {
                    "name": "kube-api-access",
                    "projected": {
                        "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]
                    },
                }
            ],
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
            ],
        },
        "status": {
            "phase": "Running",
            "hostIP": node_ip(n % nodes),
            "podIP": pod_ip(n),
            "podIPs": [{"ip": pod_ip(n)}],
            "startTime": time_,
            "qosClass": "Burstable",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": time_}
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "containerStatuses": [
                {
                    "name": "main",
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "image": f"registry.example.invalid/{app}:v1.2.3",
                    "imageID": "registry.example.invalid/app@sha256:" + "ab" * 32,
                    "containerID": "containerd://" + f"{n:064x}",
                    "state": {"running": {"startedAt": time_}},
                }
            ],
        },
    }


def synthetic_node(n: int) -> dict[str, Any]:
    zone = ZONES[n % 3]
    return {
        "metadata": {
            "name": f"node-{n}",
            "uid": f"10000000-0000-4000-8000-{n:012d}",
            "resourceVersion": "5",
            "labels": {
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": "us-west-2",
                "kubernetes.io/hostname": f"node-{n}",
                "node.kubernetes.io/instance-type": "m6i.xlarge",
            },
        },
        "spec": {"providerID": f"aws:///{zone}/i-{n:017x}", "podCIDR": f"100.64.{n % 256}.0/24"},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": node_ip(n)},
                {"type": "Hostname", "address": f"node-{n}"},
            ],
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-11-26T10:00:00Z"}],
        },
    }


def service_ip(n: int) -> str:
    return f"172.20.{n // 250}.{n % 250 + 1}"


def synthetic_service(n: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"svc-{n}",
            "namespace": f"team-{n % 50}",
            "uid": f"20000000-0000-4000-8000-{n:012d}",
            "resourceVersion": "6",
        },
        "spec": {
            "type": "NodePort" if n % 10 == 0 else "ClusterIP",
            "clusterIP": service_ip(n),
            "clusterIPs": [service_ip(n)],
            "selector": {"app": f"app-{n}"},
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}
                | ({"nodePort": 30000 + n // 10} if n % 10 == 0 else {})
            ],
        },
        "status": {"loadBalancer": {}},
    }


def synthetic_slice(n: int, pods: int) -> dict[str, Any]:
    members = [pod_ip(p) for p in range(n * 10, min(n * 10 + 10, pods))]
    return {
        "metadata": {
            "name": f"svc-{n}-abcde",
            "namespace": f"team-{n % 50}",
            "uid": f"30000000-0000-4000-8000-{n:012d}",
            "resourceVersion": "7",
            "labels": {"kubernetes.io/service-name": f"svc-{n}"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in members],
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
    }


class SyntheticApi:
    """A KubeClient stand-in serving list pages prepared in advance, and watches that stay silent."""

    host = "synthetic"

    def __init__(
        self, makers: Mapping[str, tuple[int, Callable[[int], dict[str, Any]]]], page_size: int
    ) -> None:
        self.pages: dict[str, list[bytes]] = {}
        for kind, (count, make) in makers.items():
            starts = range(0, count, page_size)
            self.pages[kind] = [
                orjson.dumps(
                    {
                        "metadata": {"resourceVersion": "100000"}
                        | ({"continue": str(index + 1)} if start + page_size < count else {}),
                        "items": [make(n) for n in range(start, min(count, start + page_size))],
                    }
                )
                for index, start in enumerate(starts)
            ]
        self.json_bytes = sum(len(page) for pages in self.pages.values() for page in pages)

    async def list_page(self, resource: ApiResource, params: Mapping[str, str], seconds: float) -> bytes:
        await asyncio.sleep(0)
        pages = self.pages.get(resource.plural) or [b'{"metadata": {"resourceVersion": "1"}, "items": []}']
        return pages[int(params.get("continue", "0"))]

    async def watch(
        self, resource: ApiResource, params: Mapping[str, str], read_timeout: float
    ) -> AsyncGenerator[bytes, None]:
        await asyncio.Event().wait()
        yield b""

    async def aclose(self) -> None:
        return None


async def sync(api: SyntheticApi, page_size: int) -> tuple[KubeInventory, float]:
    settings = KubeInventorySettings(watch=WatchSettings(page_size=page_size))
    inventory = KubeInventory(settings, client=api)  # type: ignore[arg-type]
    started = time.perf_counter()
    await inventory.start()
    await inventory.wait_ready(3600)
    elapsed = time.perf_counter() - started
    for task in inventory.tasks:  # keep the state, stop the tasks (the silent watches)
        task.cancel()
    await asyncio.gather(*inventory.tasks, return_exceptions=True)
    return inventory, elapsed


def rss_bytes() -> int:
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def makers(pods: int, nodes: int, services: int) -> dict[str, tuple[int, Callable[[int], dict[str, Any]]]]:
    return {
        PODS.plural: (pods, lambda n: realistic_pod(n, nodes)),
        NODES.plural: (nodes, synthetic_node),
        SERVICES.plural: (services, synthetic_service),
        ENDPOINT_SLICES.plural: (services, lambda n: synthetic_slice(n, pods)),
    }


def time_per_call(
    function: Callable[..., object], calls: Sequence[tuple[Any, ...]], repeat: int = 5
) -> float:
    """Best-of-`repeat` nanoseconds per call of `function(*args)` over `calls`."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter_ns()
        for args in calls:
            function(*args)
        best = min(best, (time.perf_counter_ns() - started) / len(calls))
    return best


def lookup_costs(index: InventoryIndex, pods: int, nodes: int, services: int) -> None:
    rng = random.Random(7)
    reused = pods // 10  # a tenth of the addresses were reused: each such pod replaced by a newer one
    for n in range(reused):
        old = realistic_pod(n, nodes)
        index.delete_pod(old["metadata"]["uid"])
        new = realistic_pod(n, nodes)
        new["metadata"]["uid"] = f"40000000-0000-4000-8000-{n:012d}"
        new["status"]["startTime"] = "2026-11-26T11:00:00Z"
        index.upsert_pod(parse_pod(new))
    sample = 200_000
    cases = {
        "endpoint_at pod": [(pod_ip(rng.randrange(reused, pods)), NOW) for _ in range(sample)],
        "endpoint_at node": [(node_ip(rng.randrange(nodes)), NOW) for _ in range(sample)],
        "endpoint_at reused": [(pod_ip(rng.randrange(reused)), NOW) for _ in range(sample)],
        "endpoint_at miss": [(f"203.0.113.{rng.randrange(256)}", NOW) for _ in range(sample)],
        "service_at cluster ip": [
            (service_ip(rng.randrange(services)), 80, "tcp", NOW) for _ in range(sample)
        ],
        "service_of_backend": [(pod_ip(rng.randrange(pods)), 8080, "tcp", NOW) for _ in range(sample)],
    }
    # The floor any lookup function pays: a Python function taking (ip, when) that only does dict.get
    # on a copy of the index's own address table (same key objects, same memory layout).
    table_get = dict(index._fixed).get

    def floor(ip: str, when: float) -> object:
        return table_get(ip)

    baseline = time_per_call(floor, cases["endpoint_at pod"])
    print(
        f"\nlookups ({sample:,} calls each, best of 5); floor (one dict.get in a function): {baseline:.0f} ns"
    )
    for name, calls in cases.items():
        function = index.endpoint_at if name.startswith("endpoint_at") else getattr(index, name.split()[0])
        cost = time_per_call(function, calls)
        print(f"  {name:24} {cost:6.0f} ns/call  ({cost / baseline:4.1f}x the floor)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.inventory", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--nodes", type=int, default=5_000)
    parser.add_argument("--services", type=int, default=5_000)
    parser.add_argument("--page-size", type=int, default=500)
    args = parser.parse_args(argv)
    sizes = makers(args.pods, args.nodes, args.services)

    api = SyntheticApi(sizes, args.page_size)
    gc.collect()
    rss_before = rss_bytes()
    inventory, seconds = asyncio.run(sync(api, args.page_size))
    gc.collect()
    rss_growth = rss_bytes() - rss_before
    counts = inventory.index.counts()
    print(
        f"inventory: {counts['pods']:,} pods, {counts['nodes']:,} nodes, {counts['services']:,} services, "
        f"{counts['endpointslices']:,} endpointslices; {api.json_bytes / 2**20:,.0f} MiB of list JSON"
    )
    print(f"initial sync: {seconds:.1f} s ({args.pods / seconds:,.0f} pods/s through orjson + parse + index)")
    print(f"RSS growth after sync: {rss_growth / 2**20:,.1f} MiB")

    lookup_costs(inventory.index, args.pods, args.nodes, args.services)
    del inventory
    gc.collect()

    tracemalloc.start()
    inventory, _ = asyncio.run(sync(api, args.page_size))
    gc.collect()
    retained, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del inventory
    per_pod = retained / args.pods
    pod_json = len(orjson.dumps(realistic_pod(1, args.nodes)))

    # Baseline: what keeping the decoded objects would cost, measured on a 5,000-pod sample.
    sample = min(args.pods, 5_000)
    tracemalloc.start()
    kept = [orjson.loads(orjson.dumps(realistic_pod(n, args.nodes))) for n in range(sample)]
    dict_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    per_dict = dict_bytes / sample
    print(
        f"\nretained Python memory after sync (tracemalloc): {retained / 2**20:,.1f} MiB in all, "
        f"{per_pod:,.0f} B per pod (nodes, services and slices included)"
    )
    print(f"  baseline raw JSON per pod:          {pod_json:7,} B  ({pod_json / per_pod:4.1f}x ours)")
    print(
        f"  baseline decoded dict per pod:      {per_dict:7,.0f} B  ({per_dict / per_pod:4.1f}x ours); "
        f"at {args.pods:,} pods {per_dict * args.pods / 2**20:,.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
