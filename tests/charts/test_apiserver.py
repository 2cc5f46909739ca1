"""The charts against a real kube-apiserver 1.37 + etcd: server-side validation, a real install, and the
server ServiceAccount's rights, shown by the API's own authorizer and by running the server's informers
with that account's token.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubenetmon.server.inventory.cluster import KubeInventory, KubeInventorySettings
from kubenetmon.server.inventory.kube import Credentials
from tests.charts.crds import crd_files
from tests.charts.rbac import SERVER_NEEDS, Grant, grants
from tests.charts.rendering import EXAMPLES_DIR, Profile, objects, profiles, template
from tests.kube.control_plane import ControlPlane
from tests.kube.identity import ClientIdentity
from tests.kube.namespaces import create_namespace, delete_namespace

pytestmark = [pytest.mark.apiserver, pytest.mark.helm]


@pytest.fixture(scope="module")
def crds(kube_control_plane: ControlPlane) -> Iterator[None]:
    """The cert-manager and Prometheus Operator CRD subsets, so their kinds are known and checked."""
    args = [arg for path in crd_files() for arg in ("-f", str(path))]
    kube_control_plane.kubectl("apply", *args)
    kube_control_plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", *args)
    try:
        yield
    finally:
        kube_control_plane.kubectl("delete", "--ignore-not-found", *args)


@pytest.fixture(scope="module")
def namespace(kube_control_plane: ControlPlane) -> Iterator[str]:
    name = create_namespace(kube_control_plane, prefix="charts")
    try:
        yield name
    finally:
        delete_namespace(kube_control_plane, name)


@dataclass(frozen=True, slots=True)
class Release:
    name: str
    namespace: str
    install_output: str


def _install(control_plane: ControlPlane, profile: Profile, namespace: str, *extra: str) -> Release:
    name = f"{profile.chart.removeprefix('kubenetmon-')}-{secrets.token_hex(3)}"
    args = ["install", name, str(profile.chart_dir), "--namespace", namespace, *extra]
    if profile.values_file is not None:
        args += ["--values", str(profile.values_file)]
    return Release(name, namespace, control_plane.helm(*args).stdout)


@pytest.fixture(scope="module")
def server(kube_control_plane: ControlPlane, namespace: str, crds: None) -> Iterator[Release]:
    """kubenetmon-server installed for real with its defaults (no --wait: no controllers run here)."""
    release = _install(kube_control_plane, Profile("kubenetmon-server", None), namespace)
    try:
        yield release
    finally:
        kube_control_plane.helm("uninstall", release.name, "--namespace", namespace)


@pytest.fixture(scope="module")
def server_account(kube_control_plane: ControlPlane, server: Release) -> ClientIdentity:
    """A token of the ServiceAccount the chart created for the server."""
    return kube_control_plane.service_account(server.namespace, f"{server.name}-kubenetmon-server")


@pytest.mark.parametrize("profile", profiles(), ids=str)
def test_profile_passes_server_side_dry_run_with_strict_field_validation(
    kube_control_plane: ControlPlane, helm: Path, namespace: str, crds: None, profile: Profile
) -> None:
    manifests = template(helm, profile, release=f"dry-{secrets.token_hex(3)}", namespace=namespace)
    applied = kube_control_plane.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-o", "name", "-f", "-", stdin=manifests
    )
    expected = {f"{obj['kind']}/{obj['metadata']['name']}".lower() for obj in objects(manifests)}
    # `-o name` prints <resource>.<group>/<name>; compare kinds loosely by their singular names.
    printed = {_kind_and_name(line) for line in applied.stdout.split()}
    assert printed == expected


def test_installed_release_holds_the_rendered_objects(
    kube_control_plane: ControlPlane, server: Release
) -> None:
    deployment = kube_control_plane.request(
        "GET", f"/apis/apps/v1/namespaces/{server.namespace}/deployments/{server.name}-kubenetmon-server"
    ).ok()
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == ["server"]
    assert "/readyz" in server.install_output


def test_server_account_is_granted_exactly_what_the_informers_need(
    kube_control_plane: ControlPlane, server: Release, server_account: ClientIdentity
) -> None:
    # Every authenticated user gets a few rules (self reviews); a bare account in the same namespace
    # shows them, so what is left is what the chart grants.
    bare = kube_control_plane.service_account(server.namespace, f"bare-{secrets.token_hex(3)}")
    granted = _rules(kube_control_plane, server.namespace, server_account)
    baseline = _rules(kube_control_plane, server.namespace, bare)
    assert granted - baseline == SERVER_NEEDS


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("list", "pods", True),
        ("watch", "nodes", True),
        ("watch", "endpointslices.discovery.k8s.io", True),
        ("get", "pods", False),
        ("get", "secrets", False),
        ("list", "secrets", False),
        ("list", "configmaps", False),
        ("create", "pods", False),
        ("delete", "pods", False),
        ("patch", "nodes", False),
        ("create", "tokenreviews.authentication.k8s.io", False),
    ],
)
def test_server_account_can_do_only_its_job(
    kube_control_plane: ControlPlane,
    server_account: ClientIdentity,
    verb: str,
    resource: str,
    allowed: bool,
) -> None:
    answer = kube_control_plane.kubectl(
        "auth", "can-i", verb, resource, "--all-namespaces", kubeconfig=server_account.kubeconfig, check=False
    )
    assert answer.stdout.strip() == ("yes" if allowed else "no"), answer.stderr


async def test_server_informers_sync_with_the_chart_service_account(
    kube_control_plane: ControlPlane, server: Release, server_account: ClientIdentity
) -> None:
    node = f"charts-node-{secrets.token_hex(3)}"
    node_uid = kube_control_plane.request("POST", "/api/v1/nodes", _node(node)).ok()["metadata"]["uid"]
    try:
        pod = kube_control_plane.request(
            "POST", f"/api/v1/namespaces/{server.namespace}/pods", _pod("probe", node)
        ).ok()
        inventory = KubeInventory(
            KubeInventorySettings(credentials=Credentials(str(server_account.kubeconfig)))
        )
        await inventory.start()
        try:
            await inventory.wait_ready(60)
            state = {kind: (status.listed, status.last_error) for kind, status in inventory.status().items()}
            assert state == dict.fromkeys(["pods", "nodes", "services", "endpointslices"], (True, ""))
            assert pod["metadata"]["uid"] in inventory.known("pods")
            assert node_uid in inventory.known("nodes")
        finally:
            await inventory.stop()
    finally:
        kube_control_plane.request("DELETE", f"/api/v1/nodes/{node}").ok()


def test_install_notes_never_show_the_clickhouse_password(
    kube_control_plane: ControlPlane, namespace: str, crds: None
) -> None:
    profile = Profile("kubenetmon-server", EXAMPLES_DIR / "server-quickstart.yaml")
    password = yaml.safe_load(profile.values_file.read_text())["store"]["clickhouse"]["password"]  # type: ignore[union-attr]
    release = _install(kube_control_plane, profile, namespace)
    try:
        assert "NOTES:" in release.install_output
        assert password not in release.install_output
        assert "--ask-password" in release.install_output
    finally:
        kube_control_plane.helm("uninstall", release.name, "--namespace", namespace)


def test_agent_chart_installs(kube_control_plane: ControlPlane, namespace: str, crds: None) -> None:
    release = _install(kube_control_plane, Profile("kubenetmon-agent", None), namespace)
    try:
        daemonset = kube_control_plane.request(
            "GET", f"/apis/apps/v1/namespaces/{namespace}/daemonsets/{release.name}-kubenetmon-agent"
        ).ok()
        assert daemonset["spec"]["template"]["spec"]["hostNetwork"] is True
    finally:
        kube_control_plane.helm("uninstall", release.name, "--namespace", namespace)


def _kind_and_name(printed: str) -> str:
    resource, name = printed.split("/", 1)
    return f"{_SINGULAR.get(resource, resource.split('.')[0])}/{name}"


# `kubectl -o name` resource names -> lowercase kinds, for the kinds the charts render.
_SINGULAR = {
    "clusterrole.rbac.authorization.k8s.io": "clusterrole",
    "clusterrolebinding.rbac.authorization.k8s.io": "clusterrolebinding",
    "poddisruptionbudget.policy": "poddisruptionbudget",
    "networkpolicy.networking.k8s.io": "networkpolicy",
}


def _rules(control_plane: ControlPlane, namespace: str, identity: ClientIdentity) -> set[Grant]:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }
    status = control_plane.request(
        "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", review, identity=identity
    ).ok()["status"]
    assert status["incomplete"] is False
    return grants(status["resourceRules"])


def _node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


def _pod(name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "example.invalid/probe:1"}]},
    }
