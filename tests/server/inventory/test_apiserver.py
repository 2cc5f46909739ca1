"""The inventory against a real kube-apiserver + etcd: what it knows matches what the API holds.

Objects are written through the API as a kubelet and controllers would (see cluster_api.py); the
inventory runs with real credentials: the admin kubeconfig, a ServiceAccount with exactly the
chart's ClusterRole, and the in-cluster service account files.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from kubenetmon.errors import InventoryError
from kubenetmon.records import EndpointKind, rfc3339
from kubenetmon.server.inventory import metrics
from kubenetmon.server.inventory.cluster import KubeInventory, KubeInventorySettings
from kubenetmon.server.inventory.index import ClusterIdentity
from kubenetmon.server.inventory.kube import Credentials
from kubenetmon.server.inventory.watch import WatchSettings
from tests.kube.control_plane import ControlPlane
from tests.server.inventory import manifests
from tests.server.inventory.cluster_api import ClusterApi, eventually, unique, unique_subnet

pytestmark = pytest.mark.apiserver

CHART_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["pods", "nodes", "services"], "verbs": ["list", "watch"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
]
FAST = WatchSettings(read_timeout=75, backoff_initial=0.2, backoff_max=2)


class ShiftedClock:
    """Wall-clock time, plus an offset a test can move forward to expire the grace period."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def cluster(kube_control_plane: ControlPlane) -> Iterator[ClusterApi]:
    api = ClusterApi(kube_control_plane)
    yield api
    api.cleanup()


def admin(control_plane: ControlPlane) -> Credentials:
    return Credentials(kubeconfig=str(control_plane.kubeconfig))


def make_inventory(
    credentials: Credentials, *, clock: ShiftedClock | None = None, **settings: Any
) -> KubeInventory:
    settings.setdefault("watch", FAST)
    return KubeInventory(
        KubeInventorySettings(credentials=credentials, **settings), clock=clock or ShiftedClock()
    )


@asynccontextmanager
async def started(inventory: KubeInventory, ready_within: float = 30) -> AsyncIterator[KubeInventory]:
    await inventory.start()
    try:
        await inventory.wait_ready(ready_within)
        yield inventory
    finally:
        await inventory.stop()


@asynccontextmanager
async def running(
    credentials: Credentials, *, clock: ShiftedClock | None = None, ready_within: float = 30, **settings: Any
) -> AsyncIterator[KubeInventory]:
    async with started(make_inventory(credentials, clock=clock, **settings), ready_within) as inventory:
        yield inventory


def ago(seconds: float) -> str:
    return rfc3339(time.time() - seconds)


def pod_at(inventory: KubeInventory, ip: str, when: float) -> str | None:
    endpoint = inventory.index.endpoint_at(ip, when)
    return endpoint.pod if endpoint is not None else None


async def test_objects_written_through_the_api_resolve_through_the_inventory(
    kube_control_plane: ControlPlane, kube_namespace: str, cluster: ClusterApi
) -> None:
    net, ns, node_name = unique_subnet(), kube_namespace, unique("node")
    await cluster.create_node(
        manifests.node(
            node_name,
            internal=(f"{net}.1",),
            external=(f"{net}.2",),
            zone="us-west-2a",
            region="us-west-2",
            provider_id="aws:///us-west-2a/i-0feedc0de",
        )
    )
    await cluster.create_pod(
        ns,
        manifests.pod(
            "checkout-5f7c9d-abcde",
            ns,
            node=node_name,
            ips=(f"{net}.10",),
            labels={"app.kubernetes.io/name": "checkout", "pod-template-hash": "5f7c9d"},
            owner=("ReplicaSet", "checkout-5f7c9d"),
        ),
    )
    identity = ClusterIdentity(cluster="test", cloud="aws")
    async with running(admin(kube_control_plane), identity=identity) as inventory:
        # Listed before the inventory started:
        endpoint = inventory.index.endpoint_at(f"{net}.10", time.time())
        assert endpoint is not None and endpoint.kind is EndpointKind.POD
        assert (endpoint.namespace, endpoint.pod, endpoint.node) == (ns, "checkout-5f7c9d-abcde", node_name)
        assert (endpoint.workload, endpoint.workload_kind, endpoint.app) == (
            "checkout",
            "Deployment",
            "checkout",
        )
        assert (endpoint.zone, endpoint.region, endpoint.cloud) == ("us-west-2a", "us-west-2", "aws")
        assert (endpoint.instance_id, endpoint.cluster) == ("i-0feedc0de", "test")
        node = inventory.index.node(node_name)
        assert node is not None and node.kind is EndpointKind.NODE
        assert inventory.index.endpoint_at(f"{net}.1", 0) is node
        assert inventory.index.endpoint_at(f"{net}.2", 0) is node

        # Written while the inventory watches:
        await cluster.create_pod(
            ns, manifests.pod("db-0", ns, node=node_name, ips=(f"{net}.11",), owner=("StatefulSet", "db"))
        )
        service = await cluster.create_service(
            ns, manifests.service("web", ns, type_="NodePort", ports=(("TCP", 80, 0), ("UDP", 53, 0)))
        )
        cluster_ip = service["spec"]["clusterIP"]
        node_port = service["spec"]["ports"][0]["nodePort"]
        await cluster.create_endpoint_slice(
            ns, manifests.endpoint_slice("web-1", "web", ns, ready=(f"{net}.10",), not_ready=(f"{net}.11",))
        )
        await eventually(lambda: pod_at(inventory, f"{net}.11", time.time()) == "db-0", what="db-0")
        db = inventory.index.endpoint_at(f"{net}.11", time.time())
        assert db is not None and (db.workload, db.workload_kind, db.zone) == (
            "db",
            "StatefulSet",
            "us-west-2a",
        )
        await eventually(
            lambda: inventory.index.service_of_backend(f"{net}.10", 8080, "tcp", 0), what="slice"
        )
        assert inventory.index.service_at(cluster_ip, 80, "tcp", 0) == f"{ns}/web"
        assert inventory.index.service_at(cluster_ip, 53, "udp", 0) == f"{ns}/web"
        assert inventory.index.service_at(f"{net}.1", node_port, "tcp", 0) == f"{ns}/web"
        assert inventory.index.service_at(f"{net}.10", node_port, "tcp", 0) is None
        assert inventory.index.service_of_backend(f"{net}.10", 8080, "tcp", 0) == f"{ns}/web"
        assert inventory.index.service_of_backend(f"{net}.11", 8080, "tcp", 0) is None


async def test_a_reused_pod_ip_maps_to_the_pod_that_held_it_at_the_flows_time(
    kube_control_plane: ControlPlane, kube_namespace: str, cluster: ClusterApi
) -> None:
    ip, ns = f"{unique_subnet()}.20", kube_namespace
    during_old = time.time() - 30
    async with running(admin(kube_control_plane)) as inventory:
        old = await cluster.create_pod(ns, manifests.pod("old", ns, ips=(ip,), started=ago(60)))
        await eventually(lambda: pod_at(inventory, ip, time.time()) == "old", what="old pod")
        await cluster.delete_pod(ns, "old")
        await eventually(lambda: old["metadata"]["uid"] not in inventory.known("pods"), what="deletion")
        await cluster.create_pod(ns, manifests.pod("new", ns, ips=(ip,), started=ago(0)))
        await eventually(lambda: pod_at(inventory, ip, time.time() + 1) == "new", what="new pod")
        assert pod_at(inventory, ip, during_old) == "old"
        assert inventory.index.counts()["reused_addresses"] >= 1


async def test_a_completed_pod_does_not_shadow_the_running_pod_that_reuses_its_ip(
    kube_control_plane: ControlPlane, kube_namespace: str, cluster: ClusterApi
) -> None:
    ip, ns = f"{unique_subnet()}.21", kube_namespace
    async with running(admin(kube_control_plane)) as inventory:
        await cluster.create_pod(
            ns, manifests.pod("job-x", ns, ips=(ip,), started=ago(120), owner=("Job", "job-x"))
        )
        await cluster.set_pod_status(ns, "job-x", {"phase": "Succeeded"})
        await cluster.create_pod(ns, manifests.pod("web", ns, ips=(ip,), started=ago(10)))
        await eventually(lambda: pod_at(inventory, ip, time.time()) == "web", what="running pod")
        assert pod_at(inventory, ip, time.time() - 100) == "job-x"


async def test_a_deleted_pod_resolves_for_the_grace_period_then_is_forgotten(
    kube_control_plane: ControlPlane, kube_namespace: str, cluster: ClusterApi
) -> None:
    ip, ns, clock = f"{unique_subnet()}.30", kube_namespace, ShiftedClock()
    async with running(admin(kube_control_plane), clock=clock, deletion_grace=120) as inventory:
        created = await cluster.create_pod(ns, manifests.pod("short-lived", ns, ips=(ip,)))
        uid = created["metadata"]["uid"]
        await eventually(lambda: uid in inventory.known("pods"), what="pod")
        await cluster.delete_pod(ns, "short-lived")
        await eventually(lambda: uid not in inventory.known("pods"), what="deletion")
        clock.offset = 119
        inventory.index.prune()
        assert pod_at(inventory, ip, clock()) == "short-lived"
        clock.offset = 121
        inventory.index.prune()
        assert inventory.index.endpoint_at(ip, clock()) is None
        assert inventory.index.pod(uid) is None


class Deliveries:
    """Records every pod upsert and delete the index receives, to prove none is repeated or missed."""

    def __init__(self, inventory: KubeInventory) -> None:
        self.upserts: list[tuple[str, str]] = []
        self.deletes: list[str] = []
        index = inventory.index
        upsert, delete = index.upsert_pod, index.delete_pod
        versions = inventory.known

        def record_upsert(pod: Any) -> None:
            upsert(pod)
            self.upserts.append((pod.uid, versions("pods").get(pod.uid, "")))

        def record_delete(uid: str) -> None:
            delete(uid)
            self.deletes.append(uid)

        index.upsert_pod = record_upsert  # type: ignore[method-assign]
        index.delete_pod = record_delete  # type: ignore[method-assign]


async def _pods_match_a_fresh_list(inventory: KubeInventory, cluster: ClusterApi) -> bool:
    return inventory.known("pods") == await cluster.versions("/api/v1/pods")


async def test_the_watch_survives_an_apiserver_restart_without_losing_or_repeating_objects(
    kube_control_plane: ControlPlane, kube_namespace: str, cluster: ClusterApi
) -> None:
    ns, net = kube_namespace, unique_subnet()
    inventory = make_inventory(admin(kube_control_plane))
    deliveries = Deliveries(inventory)
    async with started(inventory):
        p1 = await cluster.create_pod(ns, manifests.pod("p1", ns, ips=(f"{net}.1",)))
        await cluster.create_pod(ns, manifests.pod("p2", ns, ips=(f"{net}.2",)))
        await eventually(lambda: _pods_match_a_fresh_list(inventory, cluster), what="initial pods")

        await asyncio.to_thread(kube_control_plane.restart_apiserver)
        await cluster.delete_pod(ns, "p1")
        await cluster.set_pod_status(ns, "p2", {"phase": "Succeeded"})
        await cluster.create_pod(ns, manifests.pod("p3", ns, ips=(f"{net}.3",)))

        await eventually(lambda: _pods_match_a_fresh_list(inventory, cluster), what="pods after restart")
        assert pod_at(inventory, f"{net}.3", time.time()) == "p3"
        p2 = inventory.index.endpoint_at(f"{net}.2", time.time())
        assert p2 is not None and p2.pod == "p2"
        assert deliveries.deletes.count(p1["metadata"]["uid"]) == 1
        assert len(deliveries.upserts) == len(set(deliveries.upserts)), (
            "an unchanged object was delivered twice"
        )
        assert all(status.listed for status in inventory.status().values())


async def test_a_forced_410_relists_and_delivers_what_was_missed(
    kube_control_plane: ControlPlane, kube_namespace: str, cluster: ClusterApi
) -> None:
    ns, net = kube_namespace, unique_subnet()
    # A slow first retry leaves time to change things while the informer is disconnected.
    watch = WatchSettings(read_timeout=75, backoff_initial=4, backoff_max=4)
    inventory = make_inventory(admin(kube_control_plane), watch=watch)
    deliveries = Deliveries(inventory)
    async with started(inventory):
        p1 = await cluster.create_pod(ns, manifests.pod("p1", ns, ips=(f"{net}.1",)))
        await eventually(lambda: p1["metadata"]["uid"] in inventory.known("pods"), what="p1")
        lists_before = inventory.status()["pods"].lists

        await asyncio.to_thread(kube_control_plane.expire_resource_versions)
        await cluster.delete_pod(ns, "p1")
        p2 = await cluster.create_pod(ns, manifests.pod("p2", ns, ips=(f"{net}.2",)))

        await eventually(
            lambda: _pods_match_a_fresh_list(inventory, cluster), within=60, what="relisted pods"
        )
        assert inventory.status()["pods"].lists > lists_before
        assert deliveries.deletes.count(p1["metadata"]["uid"]) == 1
        assert p2["metadata"]["uid"] in {uid for uid, _ in deliveries.upserts}
        assert len(deliveries.upserts) == len(set(deliveries.upserts)), (
            "an unchanged object was delivered twice"
        )
        assert pod_at(inventory, f"{net}.2", time.time()) == "p2"
        assert pod_at(inventory, f"{net}.1", time.time()) == "p1"  # deleted, still in its grace period


async def test_a_server_side_watch_timeout_resumes_without_relisting(
    kube_control_plane: ControlPlane, kube_namespace: str, cluster: ClusterApi
) -> None:
    ns, ip = kube_namespace, f"{unique_subnet()}.5"
    watch = WatchSettings(watch_timeout=1, read_timeout=75, backoff_initial=0.2)
    async with running(admin(kube_control_plane), watch=watch) as inventory:
        await asyncio.sleep(3)
        await cluster.create_pod(ns, manifests.pod("late", ns, ips=(ip,)))
        await eventually(lambda: pod_at(inventory, ip, time.time()) == "late", what="pod after reconnects")
        assert {kind: status.lists for kind, status in inventory.status().items()} == {
            "pods": 1,
            "nodes": 1,
            "services": 1,
            "endpointslices": 1,
        }


@pytest.mark.slow
async def test_bookmarks_keep_a_quiet_watch_alive_within_the_read_timeout(
    kube_control_plane: ControlPlane, kube_namespace: str, cluster: ClusterApi
) -> None:
    """The API server sends a bookmark about once a minute on a quiet watch, once its pod cache has
    progressed past the watch's resourceVersion (here: a write to another kind, then a consistent
    list, which makes it ask etcd for progress). A read timeout above that (90 s by default, 70 s
    here) then never fires."""
    bookmarks = metrics.EVENTS.labels("pods", "BOOKMARK")
    stalls = metrics.ERRORS.labels("pods", "WatchStalled")
    before_bookmarks, before_stalls = bookmarks._value.get(), stalls._value.get()
    watch = WatchSettings(watch_timeout=300, read_timeout=70)
    async with running(admin(kube_control_plane), watch=watch) as inventory:
        listed_at = inventory.status()["pods"].resource_version
        config_map = {"metadata": {"name": "progress"}}
        await cluster.call("POST", f"/api/v1/namespaces/{kube_namespace}/configmaps", config_map)
        await cluster.versions("/api/v1/pods")
        await eventually(lambda: bookmarks._value.get() > before_bookmarks, within=80, what="a bookmark")
        assert stalls._value.get() == before_stalls
        assert inventory.status()["pods"].resource_version != listed_at
        assert inventory.status()["pods"].lists == 1


async def test_a_silent_watch_is_replaced_from_the_same_resource_version_without_relisting(
    kube_control_plane: ControlPlane, kube_namespace: str, cluster: ClusterApi
) -> None:
    ip = f"{unique_subnet()}.8"
    stalls = metrics.ERRORS.labels("pods", "WatchStalled")
    before = stalls._value.get()
    async with running(admin(kube_control_plane), watch=WatchSettings(read_timeout=1)) as inventory:
        await eventually(lambda: stalls._value.get() >= before + 2, what="two silent watches replaced")
        await cluster.create_pod(kube_namespace, manifests.pod("after-silence", kube_namespace, ips=(ip,)))
        await eventually(lambda: pod_at(inventory, ip, time.time()) == "after-silence", what="the pod")
        assert inventory.status()["pods"].lists == 1


async def test_a_service_account_with_only_list_and_watch_runs_the_inventory(
    kube_control_plane: ControlPlane, kube_namespace: str, cluster: ClusterApi
) -> None:
    account, ip = unique("kubenetmon"), f"{unique_subnet()}.7"
    await cluster.grant_cluster_role(unique("kt-inventory"), CHART_RULES, kube_namespace, account)
    kubeconfig = kube_control_plane.service_account_kubeconfig(kube_namespace, account)
    async with running(Credentials(kubeconfig=str(kubeconfig))) as inventory:
        await cluster.create_pod(kube_namespace, manifests.pod("seen", kube_namespace, ips=(ip,)))
        await eventually(lambda: pod_at(inventory, ip, time.time()) == "seen", what="pod")


async def test_without_endpointslice_permission_readiness_fails_naming_the_permission(
    kube_control_plane: ControlPlane, kube_namespace: str, cluster: ClusterApi
) -> None:
    account = unique("kubenetmon")
    await cluster.grant_cluster_role(unique("kt-inventory"), CHART_RULES[:1], kube_namespace, account)
    kubeconfig = kube_control_plane.service_account_kubeconfig(kube_namespace, account)
    with pytest.raises(InventoryError) as raised:
        async with running(Credentials(kubeconfig=str(kubeconfig)), ready_within=5):
            pass
    message = str(raised.value)
    assert 'Missing permission: verb "list" on endpointslices in API group "discovery.k8s.io"' in message
    assert f"system:serviceaccount:{kube_namespace}:{account}" in message  # the API server's own words


async def test_without_watch_permission_the_error_names_the_watch_verb(
    kube_control_plane: ControlPlane, kube_namespace: str, cluster: ClusterApi
) -> None:
    account = unique("kubenetmon")
    rules = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["nodes", "services"], "verbs": ["list", "watch"]},
        CHART_RULES[1],
    ]
    await cluster.grant_cluster_role(unique("kt-inventory"), rules, kube_namespace, account)
    kubeconfig = kube_control_plane.service_account_kubeconfig(kube_namespace, account)
    async with running(Credentials(kubeconfig=str(kubeconfig))) as inventory:
        await eventually(lambda: inventory.status()["pods"].last_error, what="a watch error")
        assert 'Missing permission: verb "watch" on pods in API group "" (core)' in (
            inventory.status()["pods"].last_error
        )
        # Listed once, so still ready; the failing watch shows in the status text and a metric instead.
        assert inventory.ready
        (failing,) = inventory.failing()
        assert failing.startswith("pods: failing for ") and 'verb "watch" on pods' in failing
        await eventually(
            lambda: (
                (REGISTRY.get_sample_value("kubenetmon_inventory_failing_seconds", {"kind": "pods"}) or 0)
                > 0.5
            ),
            what="the failing-seconds gauge to grow",
        )


async def test_in_cluster_credentials_come_from_the_service_account_files(
    kube_control_plane: ControlPlane, kube_namespace: str, cluster: ClusterApi, tmp_path: Path
) -> None:
    account = unique("kubenetmon")
    await cluster.grant_cluster_role(unique("kt-inventory"), CHART_RULES, kube_namespace, account)
    identity = kube_control_plane.service_account(kube_namespace, account)
    assert identity.token is not None
    (tmp_path / "token").write_text(identity.token)
    (tmp_path / "ca.crt").write_bytes(identity.ca_file.read_bytes())
    host, _, port = kube_control_plane.server.removeprefix("https://").rpartition(":")
    credentials = Credentials(
        service_account_dir=str(tmp_path),
        environ={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port},
    )
    async with running(credentials) as inventory:
        assert inventory.ready


async def test_kubeconfig_is_found_through_the_environment_without_a_flag(
    kube_control_plane: ControlPlane,
) -> None:
    credentials = Credentials(environ={"KUBECONFIG": str(kube_control_plane.kubeconfig)})
    async with running(credentials) as inventory:
        assert inventory.ready
