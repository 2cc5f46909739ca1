"""Initial sync of the Kubernetes inventory from a real kube-apiserver holding many pods.

Run: PYTHONPATH=src:. python -m benchmarks.inventory_apiserver [--pods 50000] [--nodes 5000] [--services 5000]

Starts its own etcd + kube-apiserver (the test binaries, see scripts/build-test-binaries.sh), fills it
through the API with bounded concurrency (pods are created, then given podIPs through /status, as a
kubelet would), then starts `KubeInventory` with the admin kubeconfig and measures the time until
ready, the memory retained (tracemalloc, then RSS growth in a second sync) and, as the baseline from
the same run, how long one plain paged list of all pods takes (HTTP + JSON decode, no parsing).
Services are headless: the test cluster's service range is a /24.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from benchmarks.inventory import rss_bytes
from kubenetmon.server.inventory.cluster import KubeInventory, KubeInventorySettings
from kubenetmon.server.inventory.kube import PODS, Credentials, KubeClient
from tests.kube.binaries import find_binaries
from tests.kube.control_plane import ControlPlane
from tests.server.inventory import manifests

NAMESPACES = 20


def pod_ip(n: int) -> str:
    return f"198.{18 + n // 65_000}.{n // 250 % 256}.{n % 250 + 2}"


class Loader:
    """Writes objects into the API server as the admin, `concurrency` requests at a time."""

    def __init__(self, control_plane: ControlPlane, concurrency: int) -> None:
        self.server = control_plane.server
        self.ssl = control_plane.admin.ssl_context()
        self.limit = asyncio.Semaphore(concurrency)
        self.session: aiohttp.ClientSession | None = None

    async def call(
        self, method: str, path: str, body: dict[str, Any], content_type: str = "application/json"
    ) -> None:
        assert self.session is not None
        async with self.limit:
            for attempt in range(5):
                async with self.session.request(
                    method,
                    self.server + path,
                    data=orjson.dumps(body),
                    headers={"Content-Type": content_type},
                ) as response:
                    if response.status < 300 or response.status == 409:
                        return
                    if response.status != 429 and response.status < 500:
                        raise RuntimeError(f"{method} {path}: {response.status} {await response.text()}")
                await asyncio.sleep(0.1 * 2**attempt)
            raise RuntimeError(f"{method} {path}: still failing after 5 attempts")

    async def run(self, jobs: list[Callable[[], Awaitable[None]]], what: str) -> None:
        started = time.perf_counter()
        connector = aiohttp.TCPConnector(ssl=self.ssl, limit=0)
        async with aiohttp.ClientSession(connector=connector) as self.session:
            await asyncio.gather(*(job() for job in jobs))
        seconds = time.perf_counter() - started
        print(f"created {len(jobs):,} {what} in {seconds:.0f} s ({len(jobs) / seconds:,.0f}/s)", flush=True)


def _plain(manifest: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in manifest["metadata"].items() if k in ("name", "labels", "ownerReferences")}
    return {k: v for k, v in manifest.items() if k != "status"} | {"metadata": meta}


def jobs_for(
    loader: Loader, pods: int, nodes: int, services: int
) -> dict[str, list[Callable[[], Awaitable[None]]]]:
    def node_job(n: int) -> Callable[[], Awaitable[None]]:
        manifest = manifests.node(f"node-{n}", internal=(f"10.{n // 250}.{n % 250}.1",), zone=f"zone-{n % 3}")

        async def job() -> None:
            await loader.call("POST", "/api/v1/nodes", _plain(manifest) | {"status": manifest["status"]})

        return job

    def pod_job(n: int) -> Callable[[], Awaitable[None]]:
        namespace = f"bench-{n % NAMESPACES}"
        manifest = manifests.pod(
            f"web-6d4cf56db6-{n:06d}",
            namespace,
            node=f"node-{n % nodes}",
            ips=(pod_ip(n),),
            labels={"app.kubernetes.io/name": f"web-{n // 10}", "pod-template-hash": "6d4cf56db6"},
            owner=("ReplicaSet", "web-6d4cf56db6"),
        )
        path = f"/api/v1/namespaces/{namespace}/pods"

        async def job() -> None:
            await loader.call("POST", path, _plain(manifest))
            await loader.call(
                "PATCH",
                f"{path}/{manifest['metadata']['name']}/status",
                {"status": manifest["status"]},
                "application/merge-patch+json",
            )

        return job

    def service_job(n: int) -> Callable[[], Awaitable[None]]:
        namespace = f"bench-{n % NAMESPACES}"
        manifest = manifests.service(f"svc-{n}", namespace, cluster_ips=("None",))

        async def job() -> None:
            await loader.call("POST", f"/api/v1/namespaces/{namespace}/services", _plain(manifest))

        return job

    return {
        "nodes": [node_job(n) for n in range(nodes)],
        "pods": [pod_job(n) for n in range(pods)],
        "services": [service_job(n) for n in range(services)],
    }


async def fill(control_plane: ControlPlane, pods: int, nodes: int, services: int, concurrency: int) -> None:
    loader = Loader(control_plane, concurrency)
    namespaces = [
        lambda n=n: loader.call("POST", "/api/v1/namespaces", {"metadata": {"name": f"bench-{n}"}})
        for n in range(NAMESPACES)
    ]
    await loader.run(namespaces, "namespaces")
    for what, jobs in jobs_for(loader, pods, nodes, services).items():
        await loader.run(jobs, what)


async def plain_list(credentials: Credentials, page_size: int) -> tuple[float, int]:
    client = await KubeClient.connect(credentials)
    started, count, params = time.perf_counter(), 0, {"limit": str(page_size)}
    try:
        while True:
            page = orjson.loads(await client.list_page(PODS, params, 120))
            count += len(page["items"])
            if not page["metadata"].get("continue"):
                return time.perf_counter() - started, count
            params["continue"] = page["metadata"]["continue"]
    finally:
        await client.aclose()


async def sync(credentials: Credentials) -> tuple[KubeInventory, float]:
    inventory = KubeInventory(KubeInventorySettings(credentials=credentials))
    started = time.perf_counter()
    await inventory.start()
    await inventory.wait_ready(3600)
    seconds = time.perf_counter() - started
    await inventory.stop()  # the index keeps what was listed
    return inventory, seconds


def measure(kubeconfig: str) -> None:
    """In a fresh interpreter: RSS growth over one sync, then retained Python memory over another."""
    credentials = Credentials(kubeconfig=kubeconfig)
    gc.collect()
    rss_before = rss_bytes()
    inventory, seconds = asyncio.run(sync(credentials))
    gc.collect()
    rss_growth = rss_bytes() - rss_before
    counts = inventory.index.counts()
    print(
        f"inventory sync: {counts['pods']:,} pods, {counts['nodes']:,} nodes, "
        f"{counts['services']:,} services ready in {seconds:.1f} s; RSS growth {rss_growth / 2**20:.1f} MiB",
        flush=True,
    )
    del inventory
    gc.collect()
    tracemalloc.start()
    inventory, _ = asyncio.run(sync(credentials))
    gc.collect()
    retained, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del inventory
    per_pod = retained / max(1, counts["pods"])
    print(f"retained Python memory: {retained / 2**20:.1f} MiB, {per_pod:,.0f} B per pod")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inventory_apiserver")
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--nodes", type=int, default=5_000)
    parser.add_argument("--services", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--measure", metavar="KUBECONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        measure(args.measure)
        return 0

    with ControlPlane(find_binaries()) as control_plane:
        asyncio.run(fill(control_plane, args.pods, args.nodes, args.services, args.concurrency))
        credentials = Credentials(kubeconfig=str(control_plane.kubeconfig))
        seconds, count = asyncio.run(plain_list(credentials, 500))
        print(
            f"\nbaseline: one paged list of {count:,} pods (HTTP + orjson, no parsing): {seconds:.1f} s",
            flush=True,
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.inventory_apiserver",
                "--measure",
                str(control_plane.kubeconfig),
            ],
            check=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
