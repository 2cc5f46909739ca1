"""Writing objects into the real test kube-apiserver, the way a kubelet and controllers would.

There is no kubelet or controller-manager, so the test plays their parts: it sets pod status (phase,
podIPs, startTime) through the /status subresource, writes EndpointSlices itself, and deletes
scheduled pods with grace period 0. Calls run in a thread so the informer under test keeps running.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from tests.kube.control_plane import ControlPlane
from tests.kube.identity import ClientIdentity

MERGE_PATCH = "application/merge-patch+json"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def unique(prefix: str) -> str:
    """A name no other test on the shared control plane uses."""
    return f"{prefix}-{secrets.token_hex(3)}"


def unique_subnet() -> str:
    """A random /24 inside 198.18.0.0/15 (the lab range), as "198.18.X" or "198.19.X"."""
    return f"198.{18 + secrets.randbelow(2)}.{secrets.randbelow(256)}"


class ClusterApi:
    """Admin access to the test cluster, plus cleanup of the cluster-scoped objects a test creates."""

    def __init__(self, control_plane: ControlPlane) -> None:
        self.control_plane = control_plane
        self._cleanup: list[str] = []

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        content_type: str = "application/json",
        identity: ClientIdentity | None = None,
    ) -> dict[str, Any]:
        response = await asyncio.to_thread(
            self.control_plane.request, method, path, body, content_type=content_type, identity=identity
        )
        return response.ok()

    async def create_node(self, manifest: dict[str, Any]) -> dict[str, Any]:
        name = manifest["metadata"]["name"]
        self._cleanup.append(f"/api/v1/nodes/{name}")
        await self.call("POST", "/api/v1/nodes", _for_create(manifest))
        return await self.call(
            "PATCH", f"/api/v1/nodes/{name}/status", {"status": manifest["status"]}, content_type=MERGE_PATCH
        )

    async def create_pod(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        await self.call("POST", f"/api/v1/namespaces/{namespace}/pods", _for_create(manifest))
        return await self.set_pod_status(namespace, manifest["metadata"]["name"], manifest["status"])

    async def set_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return await self.call(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/pods/{name}/status",
            {"status": status},
            content_type=MERGE_PATCH,
        )

    async def delete_pod(self, namespace: str, name: str) -> None:
        await self.call("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}?gracePeriodSeconds=0")

    async def create_service(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        created = await self.call("POST", f"/api/v1/namespaces/{namespace}/services", _for_create(manifest))
        if manifest["status"]["loadBalancer"]:
            created = await self.call(
                "PATCH",
                f"/api/v1/namespaces/{namespace}/services/{manifest['metadata']['name']}/status",
                {"status": manifest["status"]},
                content_type=MERGE_PATCH,
            )
        return created

    async def create_endpoint_slice(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        path = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
        return await self.call("POST", path, _for_create(manifest))

    async def versions(self, path: str) -> dict[str, str]:
        """uid -> resourceVersion of every object a fresh list of `path` returns (all pages)."""
        versions: dict[str, str] = {}
        token = ""
        while True:
            page = await self.call("GET", f"{path}?limit=500" + (f"&continue={token}" if token else ""))
            versions.update(
                {item["metadata"]["uid"]: item["metadata"]["resourceVersion"] for item in page["items"]}
            )
            token = page["metadata"].get("continue", "")
            if not token:
                return versions

    async def grant_cluster_role(
        self, name: str, rules: list[dict[str, Any]], namespace: str, account: str
    ) -> None:
        """A ClusterRole with `rules`, bound to ServiceAccount `namespace/account`; deleted on cleanup."""
        self._cleanup += [f"{RBAC}/clusterrolebindings/{name}", f"{RBAC}/clusterroles/{name}"]
        await self.call("POST", f"{RBAC}/clusterroles", {"metadata": {"name": name}, "rules": rules})
        binding = {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        }
        await self.call("POST", f"{RBAC}/clusterrolebindings", binding)

    def cleanup(self) -> None:
        for path in reversed(self._cleanup):
            self.control_plane.request("DELETE", path)


def _for_create(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as a client sends it: no server-assigned metadata, no status."""
    keep = ("name", "namespace", "labels", "annotations", "ownerReferences")
    metadata = {key: value for key, value in manifest["metadata"].items() if key in keep}
    return {key: value for key, value in manifest.items() if key != "status"} | {"metadata": metadata}


async def eventually(check: Callable[[], Any], within: float = 15.0, what: str = "condition") -> None:
    """Poll `check` (sync, or returning an awaitable) until it returns truthy; fail after `within` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.05)
