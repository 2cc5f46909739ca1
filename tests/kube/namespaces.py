"""Throwaway namespaces on the test control plane, and emptying them afterwards.

Without a namespace controller a deleted namespace stays Terminating forever and keeps its objects,
so cleanup deletes every namespaced collection first (pods with grace period 0, because scheduled
pods otherwise wait for a kubelet) and then the namespace, leaving an empty Terminating husk.
"""

from __future__ import annotations

import secrets

from tests.kube.control_plane import ControlPlane


def create_namespace(control_plane: ControlPlane, prefix: str = "kt") -> str:
    """Create a namespace with a unique random name starting with `prefix`; return the name."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    control_plane.request(
        "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    ).ok()
    return name


def delete_namespace(control_plane: ControlPlane, name: str) -> None:
    """Delete every object in namespace `name` right away, then the namespace itself."""
    for collection in namespaced_collections(control_plane):
        response = control_plane.request(
            "DELETE", f"{collection.format(namespace=name)}?gracePeriodSeconds=0"
        )
        # 404/405: a collection that vanished or cannot be bulk-deleted for this version.
        if response.status not in (404, 405):
            response.ok()
    control_plane.request("DELETE", f"/api/v1/namespaces/{name}").ok()


def namespaced_collections(control_plane: ControlPlane) -> list[str]:
    """URL templates (with `{namespace}`) of every namespaced resource that supports deletecollection."""
    group_versions = ["api/v1"]
    groups = control_plane.request("GET", "/apis").ok()["groups"]
    group_versions += [f"apis/{group['preferredVersion']['groupVersion']}" for group in groups]
    collections = []
    for group_version in group_versions:
        resources = control_plane.request("GET", f"/{group_version}").ok()["resources"]
        collections += [
            f"/{group_version}/namespaces/{{namespace}}/{resource['name']}"
            for resource in resources
            if resource["namespaced"]
            and "/" not in resource["name"]
            and "deletecollection" in resource["verbs"]
        ]
    return collections
