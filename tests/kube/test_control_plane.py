"""Specification of the test control plane: what other tests may rely on about the real apiserver."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.kube.binaries import MissingBinariesError, find_binaries
from tests.kube.control_plane import ControlPlane, ToolCommandError
from tests.kube.identity import ClientIdentity

pytestmark = pytest.mark.apiserver

KUBERNETES_VERSION = "v1.37.2"
HELM_VERSION = "v3.22.0"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


@pytest.fixture
def node_name(kube_control_plane: ControlPlane) -> Iterator[str]:
    """A node name that is deleted after the test (nodes are cluster-scoped, so no namespace cleans them)."""
    name = unique("node")
    yield name
    kube_control_plane.request("DELETE", f"/api/v1/nodes/{name}")


@pytest.fixture
def cluster_rbac_name(kube_control_plane: ControlPlane) -> Iterator[str]:
    """A name for a ClusterRole and ClusterRoleBinding, both deleted after the test."""
    name = unique("kt-rbac")
    yield name
    for kind in ("clusterrolebindings", "clusterroles"):
        kube_control_plane.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1/{kind}/{name}")


def test_missing_binaries_fail_with_the_build_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBENETMON_TOOLS_CACHE", str(tmp_path))

    with pytest.raises(MissingBinariesError) as missing:
        find_binaries()

    assert f"KUBENETMON_TOOLS_CACHE={tmp_path} scripts/build-test-binaries.sh" in str(missing.value)


def test_apiserver_reports_the_stamped_kubernetes_version(kube_control_plane: ControlPlane) -> None:
    version = kube_control_plane.request("GET", "/version").ok()

    assert (version["gitVersion"], version["major"], version["minor"]) == (KUBERNETES_VERSION, "1", "37")


def test_node_labels_and_pod_status_written_through_the_api_read_back(
    kube_control_plane: ControlPlane, kube_namespace: str, node_name: str
) -> None:
    zone_labels = {"topology.kubernetes.io/zone": "us-east-1a", "topology.kubernetes.io/region": "us-east-1"}
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name, "labels": zone_labels}}
    kube_control_plane.request("POST", "/api/v1/nodes", node).ok()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"nodeName": node_name, "containers": [{"name": "web", "image": "example.invalid/web:1"}]},
    }
    pod_path = f"/api/v1/namespaces/{kube_namespace}/pods/web"
    kube_control_plane.request("POST", f"/api/v1/namespaces/{kube_namespace}/pods", pod).ok()
    status = {"status": {"phase": "Running", "podIP": "198.18.0.7", "podIPs": [{"ip": "198.18.0.7"}]}}

    kube_control_plane.request(
        "PATCH", f"{pod_path}/status", status, content_type="application/merge-patch+json"
    ).ok()

    stored_pod = kube_control_plane.request("GET", pod_path).ok()
    stored_node = kube_control_plane.request("GET", f"/api/v1/nodes/{node_name}").ok()
    assert stored_pod["spec"]["nodeName"] == node_name
    assert stored_pod["status"]["phase"] == "Running"
    assert stored_pod["status"]["podIPs"] == [{"ip": "198.18.0.7"}]
    assert zone_labels.items() <= stored_node["metadata"]["labels"].items()


def test_plain_client_cert_user_is_forbidden_to_list_pods(kube_control_plane: ControlPlane) -> None:
    nobody = kube_control_plane.user(unique("nobody"), ("kubenetmon-testers",))

    response = kube_control_plane.request("GET", "/api/v1/pods", identity=nobody)

    assert response.status == 403
    assert response.body["reason"] == "Forbidden"


def test_user_bound_to_a_cluster_role_may_list_pods(
    kube_control_plane: ControlPlane, cluster_rbac_name: str
) -> None:
    reader = kube_control_plane.user(unique("reader"))
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": cluster_rbac_name},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": cluster_rbac_name},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": cluster_rbac_name,
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": reader.name}],
    }
    kube_control_plane.request("POST", f"{rbac}/clusterroles", role).ok()
    kube_control_plane.request("POST", f"{rbac}/clusterrolebindings", binding).ok()

    pods = kube_control_plane.wait_for_permission(reader, "/api/v1/pods")
    nodes = kube_control_plane.request("GET", "/api/v1/nodes", identity=reader)

    assert (pods.status, pods.body["kind"]) == (200, "PodList")
    assert nodes.status == 403


def test_service_account_kubeconfig_has_exactly_the_accounts_rbac(
    kube_control_plane: ControlPlane, kube_namespace: str
) -> None:
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{kube_namespace}"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "pod-lister"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "pod-lister"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-lister"},
        "subjects": [{"kind": "ServiceAccount", "name": "watcher", "namespace": kube_namespace}],
    }
    kube_control_plane.request("POST", f"{rbac}/roles", role).ok()
    kube_control_plane.request("POST", f"{rbac}/rolebindings", binding).ok()
    watcher = kube_control_plane.service_account(kube_namespace, "watcher")
    kube_control_plane.wait_for_permission(watcher, f"/api/v1/namespaces/{kube_namespace}/pods").ok()
    kubeconfig = watcher.kubeconfig

    whoami = kube_control_plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig)
    own_pods = kube_control_plane.kubectl("get", "pods", "-n", kube_namespace, kubeconfig=kubeconfig)
    all_pods = kube_control_plane.kubectl("get", "pods", "-A", kubeconfig=kubeconfig, check=False)
    own_secrets = kube_control_plane.kubectl(
        "get", "secrets", "-n", kube_namespace, kubeconfig=kubeconfig, check=False
    )

    username = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
    assert username == f"system:serviceaccount:{kube_namespace}:watcher"
    assert own_pods.returncode == 0
    assert all_pods.returncode != 0
    assert "Forbidden" in all_pods.stderr
    assert own_secrets.returncode != 0
    assert "Forbidden" in own_secrets.stderr


def test_objects_survive_an_apiserver_restart(kube_control_plane: ControlPlane, kube_namespace: str) -> None:
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps"
    created = kube_control_plane.request("POST", path, config_map("kept", {"answer": "42"})).ok()

    kube_control_plane.restart_apiserver()

    stored = kube_control_plane.request("GET", f"{path}/kept").ok()
    assert stored["metadata"]["uid"] == created["metadata"]["uid"]
    assert stored["data"] == {"answer": "42"}


async def open_watch(
    identity: ClientIdentity, path: str, resource_version: str
) -> tuple[int, dict[str, Any]]:
    """Start a watch; return the HTTP status and the first JSON document (error body or first event)."""
    params = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": "2"}
    timeout = aiohttp.ClientTimeout(total=30)
    async with (
        aiohttp.ClientSession(timeout=timeout, headers=identity.headers()) as session,
        session.get(identity.server + path, params=params, ssl=identity.ssl_context()) as response,
    ):
        first_line = await response.content.readline()
        status = response.status
    # aiohttp's documented graceful shutdown: an abandoned TLS stream needs a few loop turns to close,
    # or its transport is collected unclosed (a ResourceWarning, which this suite treats as an error).
    await asyncio.sleep(0.25)
    return status, json.loads(first_line) if first_line.strip() else {}


async def test_watch_from_a_resource_version_before_expiry_gets_410_gone(
    kube_control_plane: ControlPlane, kube_namespace: str
) -> None:
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps"
    old = kube_control_plane.request("POST", path, config_map("before", {})).ok()["metadata"][
        "resourceVersion"
    ]

    kube_control_plane.expire_resource_versions()

    status, first_event = await open_watch(kube_control_plane.admin, path, old)
    assert (status, first_event["type"]) == (200, "ERROR")
    assert (first_event["object"]["code"], first_event["object"]["reason"]) == (410, "Expired")


async def test_watch_from_a_resource_version_after_expiry_streams_events(
    kube_control_plane: ControlPlane, kube_namespace: str
) -> None:
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps"
    kube_control_plane.expire_resource_versions()
    current = kube_control_plane.request("GET", path).ok()["metadata"]["resourceVersion"]
    kube_control_plane.request("POST", path, config_map("after", {})).ok()

    status, first_event = await open_watch(kube_control_plane.admin, path, current)

    assert (status, first_event["type"]) == (200, "ADDED")
    assert first_event["object"]["metadata"]["name"] == "after"


def test_kubectl_talks_to_the_apiserver(kube_control_plane: ControlPlane) -> None:
    versions = json.loads(kube_control_plane.kubectl("version", "-o", "json").stdout)

    assert versions["serverVersion"]["gitVersion"] == KUBERNETES_VERSION
    assert versions["clientVersion"]["gitVersion"] == "v1.37.1"


def test_kubectl_server_side_dry_run_validates_without_persisting(
    kube_control_plane: ControlPlane, kube_namespace: str
) -> None:
    valid = json.dumps(config_map("dry", {"a": "b"}))
    invalid = json.dumps(config_map("Not_A_DNS_Name", {}))

    applied = kube_control_plane.kubectl(
        "apply", "--dry-run=server", "-n", kube_namespace, "-f", "-", stdin=valid
    )
    with pytest.raises(ToolCommandError, match="Invalid value"):
        kube_control_plane.kubectl(
            "apply", "--dry-run=server", "-n", kube_namespace, "-f", "-", stdin=invalid
        )

    assert applied.stdout.strip() == "configmap/dry created (server dry run)"
    assert (
        kube_control_plane.request("GET", f"/api/v1/namespaces/{kube_namespace}/configmaps/dry").status == 404
    )


@pytest.mark.helm
def test_helm_reports_its_stamped_version(kube_control_plane: ControlPlane) -> None:
    assert kube_control_plane.helm("version", "--short").stdout.strip() == HELM_VERSION


def write_capabilities_chart(root: Path) -> Path:
    """A chart that refuses Kubernetes < 1.37 and renders the KubeVersion helm believes in."""
    chart = root / "capabilities"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: capabilities\nversion: 0.1.0\nkubeVersion: '>=1.37.0-0'\n"
    )
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: capabilities\n"
        "data:\n  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    )
    return chart


@pytest.mark.helm
def test_helm_template_defaults_to_kubernetes_1_37(kube_control_plane: ControlPlane, tmp_path: Path) -> None:
    chart = write_capabilities_chart(tmp_path)

    rendered = kube_control_plane.helm("template", "caps", str(chart)).stdout

    assert 'kubeVersion: "v1.37.0"' in rendered


@pytest.mark.helm
def test_helm_server_dry_run_reads_the_cluster_version(
    kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path
) -> None:
    chart = write_capabilities_chart(tmp_path)

    rendered = kube_control_plane.helm(
        "install", "caps", str(chart), "-n", kube_namespace, "--dry-run=server"
    ).stdout

    assert f'kubeVersion: "{KUBERNETES_VERSION}"' in rendered


@pytest.mark.slow
def test_stopping_a_control_plane_ends_its_processes_and_removes_its_files_even_after_an_error() -> None:
    control_plane = ControlPlane(find_binaries())

    with pytest.raises(RuntimeError, match="test body failed"), control_plane:
        pids = list(control_plane.pids.values())
        raise RuntimeError("test body failed")

    assert len(pids) == 2
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert not control_plane.workdir.exists()
