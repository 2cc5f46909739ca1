"""Workload, app and machine identity, derived from a pod or node object alone."""

from __future__ import annotations

import pytest

from kubenetmon.server.inventory.workload import Owner, ProviderId, app_of, parse_provider_id, workload_of


def test_a_replicaset_named_after_its_template_hash_belongs_to_a_deployment() -> None:
    owner = Owner("ReplicaSet", "checkout-7d9f8b6c5d")
    labels = {"pod-template-hash": "7d9f8b6c5d"}
    assert workload_of("checkout-7d9f8b6c5d-x2x4q", "n1", labels, owner) == ("checkout", "Deployment")


def test_a_replicaset_whose_name_does_not_end_in_the_hash_stays_a_replicaset() -> None:
    owner = Owner("ReplicaSet", "handmade")
    assert workload_of("handmade-abcde", "n1", {"pod-template-hash": "7d9f8b6c5d"}, owner) == (
        "handmade",
        "ReplicaSet",
    )


def test_a_replicaset_without_a_template_hash_label_stays_a_replicaset() -> None:
    assert workload_of("rs-1-abc", "n1", {}, Owner("ReplicaSet", "rs-1")) == ("rs-1", "ReplicaSet")


def test_a_replicaset_named_only_by_the_hash_is_not_an_empty_deployment() -> None:
    owner = Owner("ReplicaSet", "-abc")
    assert workload_of("p", "n1", {"pod-template-hash": "abc"}, owner) == ("-abc", "ReplicaSet")


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet"])
def test_statefulset_and_daemonset_pods_belong_to_their_owner(kind: str) -> None:
    assert workload_of("db-0", "n1", {}, Owner(kind, "db")) == ("db", kind)


def test_a_job_named_by_the_cronjob_convention_belongs_to_the_cronjob() -> None:
    # CronJob "nightly-backup" scheduled at minute 29_500_000 since the epoch (2026).
    assert workload_of(
        "nightly-backup-29500000-abcde", "n1", {}, Owner("Job", "nightly-backup-29500000")
    ) == (
        "nightly-backup",
        "CronJob",
    )


@pytest.mark.parametrize("job", ["backup-2", "migrate-1234567", "report-123456789", "plainjob"])
def test_a_job_without_an_eight_digit_minute_suffix_stays_a_job(job: str) -> None:
    assert workload_of(f"{job}-xyz", "n1", {}, Owner("Job", job)) == (job, "Job")


def test_a_static_pod_is_named_without_its_node_suffix() -> None:
    owner = Owner("Node", "worker-3")
    assert workload_of("kube-proxy-worker-3", "worker-3", {}, owner) == ("kube-proxy", "StaticPod")


def test_a_static_pod_whose_name_lacks_the_node_suffix_keeps_its_name() -> None:
    assert workload_of("etcd", "worker-3", {}, Owner("Node", "worker-3")) == ("etcd", "StaticPod")


def test_an_unknown_owner_kind_is_reported_as_is() -> None:
    assert workload_of("r-1", "n1", {}, Owner("Rollout", "canary")) == ("canary", "Rollout")


def test_a_bare_pod_is_its_own_workload() -> None:
    assert workload_of("debug", "n1", {"app": "x"}, None) == ("debug", "Pod")


@pytest.mark.parametrize(
    ("labels", "app"),
    [
        ({"app.kubernetes.io/name": "web", "app": "legacy", "k8s-app": "old"}, "web"),
        ({"app": "legacy", "k8s-app": "old"}, "legacy"),
        ({"k8s-app": "kube-dns"}, "kube-dns"),
        ({"app.kubernetes.io/name": "", "app": "fallback"}, "fallback"),
        ({"tier": "backend"}, ""),
    ],
)
def test_app_prefers_the_recommended_label_then_app_then_k8s_app(labels: dict[str, str], app: str) -> None:
    assert app_of(labels) == app


@pytest.mark.parametrize(
    ("provider_id", "expected"),
    [
        (
            "aws:///us-west-2a/i-0123456789abcdef0",
            ProviderId("aws", "us-west-2a", "us-west-2", "i-0123456789abcdef0"),
        ),
        ("aws:///i-0fargate", ProviderId("aws", "", "", "i-0fargate")),
        (
            "gce://my-project/europe-west1-b/gke-pool-1-abcd",
            ProviderId("gcp", "europe-west1-b", "europe-west1", "gke-pool-1-abcd"),
        ),
        (
            "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-7",
            ProviderId("azure", "", "", "vm-7"),
        ),
        (
            "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/"
            "virtualMachineScaleSets/aks-pool/virtualMachines/3",
            ProviderId("azure", "", "", "aks-pool_3"),
        ),
        ("kind://docker/kind/kind-worker", ProviderId("", "", "", "kind-worker")),
        ("openstack:///8d2b-uuid", ProviderId("", "", "", "8d2b-uuid")),
        ("", ProviderId("", "", "", "")),
        ("garbage", ProviderId("", "", "", "")),
    ],
)
def test_provider_id_names_cloud_zone_region_and_machine(provider_id: str, expected: ProviderId) -> None:
    assert parse_provider_id(provider_id) == expected
