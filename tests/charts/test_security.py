"""What the charts grant: the agent's minimal privileges, the server's exact RBAC, and secrets kept secret."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.charts.rbac import SERVER_NEEDS, grants
from tests.charts.rendering import (
    EXAMPLES_DIR,
    Profile,
    container,
    find,
    objects,
    only,
    profiles,
    template,
)

pytestmark = pytest.mark.helm

AGENT = Profile("kubenetmon-agent", None)
SERVER = Profile("kubenetmon-server", None)


@pytest.mark.parametrize("profile", profiles("kubenetmon-agent"), ids=str)
def test_agent_keeps_only_net_admin(helm: Path, profile: Profile) -> None:
    daemonset = only(objects(template(helm, profile)), "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    security = container(daemonset, "agent")["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    assert security["privileged"] is False
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["hostNetwork"] is True
    assert "hostPID" not in pod
    assert pod["automountServiceAccountToken"] is False


def test_sysctl_init_container_has_no_capability(helm: Path) -> None:
    daemonset = only(objects(template(helm, AGENT)), "DaemonSet")
    security = container(daemonset, "conntrack-sysctls", init=True)["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["privileged"] is False
    assert security["runAsUser"] == 0


def test_agent_runs_on_every_node_by_default(helm: Path) -> None:
    daemonset = only(objects(template(helm, AGENT)), "DaemonSet")
    assert daemonset["spec"]["template"]["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_agent_node_name_comes_from_the_downward_api(helm: Path) -> None:
    daemonset = only(objects(template(helm, AGENT)), "DaemonSet")
    env = {entry["name"]: entry for entry in container(daemonset, "agent")["env"]}
    assert env["KUBENETMON_NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_agent_certificate_names_its_own_pod(helm: Path) -> None:
    daemonset = only(objects(template(helm, AGENT)), "DaemonSet")
    volumes = {volume["name"]: volume for volume in daemonset["spec"]["template"]["spec"]["volumes"]}
    attributes = volumes["tls"]["csi"]["volumeAttributes"]
    assert volumes["tls"]["csi"]["driver"] == "csi.cert-manager.io"
    assert (
        attributes["csi.cert-manager.io/uri-sans"]
        == "spiffe://kubenetmon/ns/${POD_NAMESPACE}/pod/${POD_NAME}"
    )
    assert "client auth" in attributes["csi.cert-manager.io/key-usages"]
    # The server takes a certificate's DNS names (or its CN) as node names it may report for; the pod's
    # certificate must prove only the pod.
    assert not {"csi.cert-manager.io/common-name", "csi.cert-manager.io/dns-names"} & set(attributes)


@pytest.mark.parametrize("profile", profiles("kubenetmon-server"), ids=str)
def test_server_runs_unprivileged(helm: Path, profile: Profile) -> None:
    deployment = only(objects(template(helm, profile)), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    security = container(deployment, "server")["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True


def test_server_cluster_role_is_exactly_list_and_watch_of_four_resources(helm: Path) -> None:
    role = only(objects(template(helm, SERVER)), "ClusterRole")
    assert grants(role["rules"]) == SERVER_NEEDS
    assert find(objects(template(helm, SERVER)), "Role") == []


def test_server_probes_use_the_health_endpoints(helm: Path) -> None:
    server = container(only(objects(template(helm, SERVER)), "Deployment"), "server")
    assert server["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert server["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_clickhouse_password_reaches_the_server_only_as_a_file(helm: Path) -> None:
    profile = Profile("kubenetmon-server", EXAMPLES_DIR / "server-quickstart.yaml")
    password = profile.overrides()["store"]["clickhouse"]["password"]
    manifests = template(helm, profile)
    assert password not in manifests
    secret = only(objects(manifests), "Secret")
    assert base64.b64decode(secret["data"]["password"]).decode() == password
    server = container(only(objects(manifests), "Deployment"), "server")
    env = {entry["name"]: entry.get("value") for entry in server["env"]}
    assert env["KUBENETMON_STORE_PASSWORD_FILE"] == "/etc/kubenetmon/clickhouse/password"
    assert "KUBENETMON_STORE_PASSWORD" not in env


def test_two_releases_in_one_namespace_share_no_object_names(helm: Path) -> None:
    for profile in (AGENT, SERVER):
        first, second = (
            {
                (obj["kind"], obj["metadata"]["name"])
                for obj in objects(template(helm, profile, release=release))
            }
            for release in ("alpha", "beta")
        )
        assert first.isdisjoint(second)


def test_same_release_in_two_namespaces_shares_no_cluster_object_names(helm: Path) -> None:
    cluster_kinds = {"ClusterRole", "ClusterRoleBinding"}
    first, second = (
        {
            (obj["kind"], obj["metadata"]["name"])
            for obj in objects(template(helm, SERVER, namespace=namespace))
            if obj["kind"] in cluster_kinds
        }
        for namespace in ("team-a", "team-b")
    )
    assert len(first) == 2
    assert first.isdisjoint(second)
