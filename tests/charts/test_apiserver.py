"""The charts against a real kube-apiserver 1.37 + etcd: server-side validation, a real install, and the
server ServiceAccount's rights, shown by the API's own authorizer and by running the server's informers
with that account's token.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml

from kubenetmon.server.inventory.cluster import KubeInventory, KubeInventorySettings
from kubenetmon.server.inventory.kube import Credentials
from tests.charts.rbac import SERVER_NEEDS, Grant, grants
from tests.charts.releases import Release, install, node_object, pod_object
from tests.charts.rendering import EXAMPLES_DIR, Profile, objects, profiles, template
from tests.kube.control_plane import ControlPlane
from tests.kube.identity import ClientIdentity

pytestmark = [pytest.mark.apiserver, pytest.mark.helm]


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
        "GET", f"/apis/apps/v1/namespaces/{server.namespace}/deployments/{server.fullname}"
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
    node_uid = kube_control_plane.request("POST", "/api/v1/nodes", node_object(node)).ok()["metadata"]["uid"]
    try:
        pod = kube_control_plane.request(
            "POST", f"/api/v1/namespaces/{server.namespace}/pods", pod_object("probe", node)
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
    release = install(kube_control_plane, profile, namespace)
    try:
        assert "NOTES:" in release.install_output
        assert password not in release.install_output
        assert "--ask-password" in release.install_output
    finally:
        kube_control_plane.helm("uninstall", release.name, "--namespace", namespace)


def test_agent_chart_installs(kube_control_plane: ControlPlane, namespace: str, crds: None) -> None:
    release = install(kube_control_plane, Profile("kubenetmon-agent", None), namespace)
    try:
        daemonset = kube_control_plane.request(
            "GET", f"/apis/apps/v1/namespaces/{namespace}/daemonsets/{release.fullname}"
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
