"""The inventory index: addresses to pods and nodes over time, addresses and ports to Services."""

from __future__ import annotations

from typing import Any

import pytest

from kubenetmon.records import EndpointKind, parse_rfc3339, rfc3339
from kubenetmon.server.attribution.lookups import EndpointLookup, ServiceLookup
from kubenetmon.server.inventory.index import ClusterIdentity, InventoryIndex
from kubenetmon.server.inventory.parse import parse_endpoint_slice, parse_node, parse_pod, parse_service
from tests.server.inventory import manifests

T0 = parse_rfc3339("2026-11-26T10:00:00Z")
GRACE = 300.0


class Clock:
    def __init__(self) -> None:
        self.now = T0 + 60

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def index(clock: Clock) -> InventoryIndex:
    return InventoryIndex(ClusterIdentity(cluster="prod", cloud="aws", region="us-west-2"), GRACE, clock)


def at(seconds: float) -> str:
    """An RFC 3339 time `seconds` after T0."""
    return rfc3339(T0 + seconds)


def add_pod(index: InventoryIndex, name: str, ip: str, **kwargs: Any) -> str:
    raw = manifests.pod(name, "shop", ips=(ip,), **kwargs)
    index.upsert_pod(parse_pod(raw))
    return str(raw["metadata"]["uid"])


def add_node(index: InventoryIndex, name: str = "node-a", **kwargs: Any) -> str:
    kwargs.setdefault("internal", ("198.18.0.1",))
    raw = manifests.node(name, **kwargs)
    index.upsert_node(parse_node(raw))
    return str(raw["metadata"]["uid"])


def test_the_index_satisfies_the_attribution_lookup_protocols(index: InventoryIndex) -> None:
    endpoints: EndpointLookup = index
    services: ServiceLookup = index
    assert endpoints.endpoint_at("198.18.9.9", T0) is None
    assert services.service_at("10.0.0.1", 80, "tcp", T0) is None


# --- pods and nodes ---


def test_a_pod_address_resolves_to_its_pod_with_node_location_and_workload(index: InventoryIndex) -> None:
    add_node(index, zone="us-west-2a", region="us-west-2", provider_id="aws:///us-west-2a/i-0abc")
    add_pod(
        index,
        "checkout-7d9f8b6c5d-x2x4q",
        "198.18.1.10",
        labels={"app": "checkout", "pod-template-hash": "7d9f8b6c5d"},
        owner=("ReplicaSet", "checkout-7d9f8b6c5d"),
    )
    endpoint = index.endpoint_at("198.18.1.10", T0 + 30)
    assert endpoint is not None
    assert endpoint.kind is EndpointKind.POD
    assert (endpoint.namespace, endpoint.pod, endpoint.node) == (
        "shop",
        "checkout-7d9f8b6c5d-x2x4q",
        "node-a",
    )
    assert (endpoint.workload, endpoint.workload_kind, endpoint.app) == ("checkout", "Deployment", "checkout")
    assert (endpoint.cloud, endpoint.region, endpoint.zone) == ("aws", "us-west-2", "us-west-2a")
    assert (endpoint.cluster, endpoint.instance_id) == ("prod", "i-0abc")


def test_a_node_address_and_name_resolve_to_the_node(index: InventoryIndex) -> None:
    add_node(
        index, internal=("198.18.0.1",), external=("203.0.113.9",), zone="z1", provider_id="gce://p/z1-x/vm"
    )
    for ip in ("198.18.0.1", "203.0.113.9"):
        endpoint = index.endpoint_at(ip, T0)
        assert endpoint is not None and endpoint.kind is EndpointKind.NODE
        assert (endpoint.node, endpoint.zone, endpoint.cloud, endpoint.instance_id) == (
            "node-a",
            "z1",
            "gcp",
            "vm",
        )
    assert index.node("node-a") is index.endpoint_at("198.18.0.1", T0)
    assert index.node("node-b") is None


def test_a_node_without_cloud_or_region_takes_the_clusters(index: InventoryIndex) -> None:
    add_node(index)
    node = index.node("node-a")
    assert node is not None and (node.cloud, node.region, node.cluster) == ("aws", "us-west-2", "prod")


def test_an_unknown_address_resolves_to_nothing(index: InventoryIndex) -> None:
    add_pod(index, "web", "198.18.1.10")
    assert index.endpoint_at("198.18.1.11", T0) is None


def test_a_pod_seen_before_its_node_gets_the_nodes_zone_when_the_node_arrives(index: InventoryIndex) -> None:
    add_pod(index, "web", "198.18.1.10")
    before = index.endpoint_at("198.18.1.10", T0)
    assert before is not None and before.zone == ""
    add_node(index, zone="zone-b")
    after = index.endpoint_at("198.18.1.10", T0)
    assert after is not None and after.zone == "zone-b"


def test_a_node_relabelled_to_another_zone_moves_its_pods(index: InventoryIndex) -> None:
    uid = add_node(index, zone="zone-a")
    add_pod(index, "web", "198.18.1.10")
    add_node(index, zone="zone-c", uid=uid)
    endpoint = index.endpoint_at("198.18.1.10", T0)
    assert endpoint is not None and endpoint.zone == "zone-c"


def test_a_node_update_that_changes_no_location_keeps_its_pods_endpoints(index: InventoryIndex) -> None:
    uid = add_node(index, zone="zone-a")
    add_pod(index, "web", "198.18.1.10")
    before = index.endpoint_at("198.18.1.10", T0)
    add_node(index, zone="zone-a", internal=("198.18.0.1", "198.18.0.2"), uid=uid)
    assert index.endpoint_at("198.18.1.10", T0) is before


def test_an_unchanged_pod_keeps_its_endpoint_object_and_a_changed_one_gets_a_new_one(
    index: InventoryIndex,
) -> None:
    raw = manifests.pod("web", "shop", ips=("198.18.1.10",), labels={"app": "v1"})
    index.upsert_pod(parse_pod(raw))
    first = index.endpoint_at("198.18.1.10", T0)
    raw["status"]["conditions"] = [{"type": "Ready", "status": "True"}]  # not a field we keep
    index.upsert_pod(parse_pod(raw))
    assert index.endpoint_at("198.18.1.10", T0) is first
    raw["metadata"]["labels"] = {"app": "v2"}
    index.upsert_pod(parse_pod(raw))
    second = index.endpoint_at("198.18.1.10", T0)
    assert second is not first and second is not None and second.app == "v2"


def test_an_unscheduled_pod_carries_the_cluster_identity_only(index: InventoryIndex) -> None:
    add_pod(index, "pending", "198.18.1.10", node="")
    endpoint = index.endpoint_at("198.18.1.10", T0)
    assert endpoint is not None and (endpoint.node, endpoint.zone, endpoint.cloud) == ("", "", "aws")


def test_a_host_network_pod_leaves_the_address_to_its_node(index: InventoryIndex) -> None:
    add_node(index, internal=("198.18.0.1",))
    add_pod(index, "kube-proxy-node-a", "198.18.0.1", host_network=True)
    endpoint = index.endpoint_at("198.18.0.1", T0)
    assert endpoint is not None and endpoint.kind is EndpointKind.NODE


def test_a_node_wins_an_address_a_pod_also_reports_whichever_came_first(index: InventoryIndex) -> None:
    add_pod(index, "odd", "198.18.0.1")
    add_node(index, internal=("198.18.0.1",))
    endpoint = index.endpoint_at("198.18.0.1", T0)
    assert endpoint is not None and endpoint.kind is EndpointKind.NODE


# --- time: reuse, deletion grace, completed pods ---


def test_a_reused_address_maps_to_the_pod_that_held_it_at_the_flows_time(
    index: InventoryIndex, clock: Clock
) -> None:
    old = add_pod(index, "old", "198.18.1.10", started=at(0))
    clock.now = T0 + 100
    index.delete_pod(old)
    clock.now = T0 + 110
    add_pod(index, "new", "198.18.1.10", started=at(105))
    assert _pod_at(index, "198.18.1.10", T0 + 50) == "old"
    assert _pod_at(index, "198.18.1.10", T0 + 102) == "old"  # a late entry of the deleted pod
    assert _pod_at(index, "198.18.1.10", T0 + 106) == "new"
    assert index.counts()["reused_addresses"] == 1


def test_a_deleted_pod_stays_resolvable_for_the_grace_period_then_is_forgotten(
    index: InventoryIndex, clock: Clock
) -> None:
    uid = add_pod(index, "gone", "198.18.1.10")
    index.delete_pod(uid)
    deleted = clock.now
    clock.now = deleted + GRACE - 1
    index.prune()
    assert _pod_at(index, "198.18.1.10", deleted + 5) == "gone"
    assert index.pod(uid) is not None
    clock.now = deleted + GRACE
    assert index.prune() >= 1
    assert index.endpoint_at("198.18.1.10", deleted + 5) is None
    assert index.pod(uid) is None
    assert index.counts()["pods"] == 0


def test_once_the_old_tenure_is_pruned_a_reused_address_is_single_again(
    index: InventoryIndex, clock: Clock
) -> None:
    old = add_pod(index, "old", "198.18.1.10", started=at(0))
    index.delete_pod(old)
    add_pod(index, "new", "198.18.1.10", started=at(70))
    assert index.counts()["reused_addresses"] == 1
    clock.now += GRACE
    index.prune()
    assert index.counts()["reused_addresses"] == 0
    assert _pod_at(index, "198.18.1.10", T0) == "new"


def test_a_completed_pod_never_shadows_a_running_pod_with_its_address(
    index: InventoryIndex, clock: Clock
) -> None:
    add_pod(index, "job-run", "198.18.1.10", phase="Succeeded", started=at(0))
    add_pod(index, "web", "198.18.1.10", started=at(30))
    assert _pod_at(index, "198.18.1.10", T0 + 45) == "web"
    assert _pod_at(index, "198.18.1.10", clock.now + 3600) == "web"


def run_job(index: InventoryIndex, clock: Clock, ip: str, completes_at: float) -> None:
    """A job pod on `ip` from T0 that we see complete at T0 + `completes_at`; its object stays."""
    raw = manifests.pod("job-run", "shop", ips=(ip,), started=at(0))
    index.upsert_pod(parse_pod(raw))
    clock.now = T0 + completes_at
    raw["status"]["phase"] = "Succeeded"
    index.upsert_pod(parse_pod(raw))


def test_a_running_pod_that_completes_hands_its_address_to_the_next_pod(
    index: InventoryIndex, clock: Clock
) -> None:
    run_job(index, clock, "198.18.1.10", completes_at=100)
    clock.now = T0 + 200
    add_pod(index, "web", "198.18.1.10", started=at(150))
    assert _pod_at(index, "198.18.1.10", T0 + 50) == "job-run"
    assert _pod_at(index, "198.18.1.10", T0 + 120) == "job-run"
    assert _pod_at(index, "198.18.1.10", T0 + 160) == "web"


def test_late_entries_of_a_deleted_pod_beat_a_job_that_completed_before_it(
    index: InventoryIndex, clock: Clock
) -> None:
    run_job(index, clock, "198.18.1.10", completes_at=100)
    old = add_pod(index, "web", "198.18.1.10", started=at(200))
    clock.now = T0 + 300
    index.delete_pod(old)
    assert _pod_at(index, "198.18.1.10", T0 + 350) == "web"
    assert _pod_at(index, "198.18.1.10", T0 + 50) == "job-run"


def test_a_completed_pod_still_in_the_api_keeps_its_tenure_past_the_grace_period(
    index: InventoryIndex, clock: Clock
) -> None:
    run_job(index, clock, "198.18.1.10", completes_at=100)
    add_pod(index, "web", "198.18.1.10", started=at(1000))
    clock.now += 10 * GRACE
    index.prune()
    assert _pod_at(index, "198.18.1.10", T0 + 30) == "job-run"
    assert _pod_at(index, "198.18.1.10", T0 + 1001) == "web"


def test_a_completed_pod_alone_on_its_address_still_answers(index: InventoryIndex) -> None:
    add_pod(index, "job-run", "198.18.1.10", phase="Succeeded")
    assert _pod_at(index, "198.18.1.10", T0 + 9999) == "job-run"


def test_a_pod_that_loses_an_address_keeps_it_for_the_grace_period(
    index: InventoryIndex, clock: Clock
) -> None:
    raw = manifests.pod("web", "shop", ips=("198.18.1.10",))
    index.upsert_pod(parse_pod(raw))
    raw["status"]["podIPs"] = [{"ip": "198.18.1.20"}]
    index.upsert_pod(parse_pod(raw))
    assert _pod_at(index, "198.18.1.10", T0) == "web"
    assert _pod_at(index, "198.18.1.20", T0) == "web"
    clock.now += GRACE
    index.prune()
    assert index.endpoint_at("198.18.1.10", T0) is None
    assert _pod_at(index, "198.18.1.20", T0) == "web"


def test_deleting_an_unknown_or_already_deleted_object_changes_nothing(index: InventoryIndex) -> None:
    uid = add_pod(index, "web", "198.18.1.10")
    index.delete_pod("no-such-uid")
    index.delete_node("no-such-uid")
    index.delete_service("no-such-uid")
    index.delete_endpoint_slice("no-such-uid")
    index.delete_pod(uid)
    index.delete_pod(uid)
    assert index.counts()["pods"] == 1


def test_a_deleted_node_keeps_name_and_addresses_for_the_grace_period(
    index: InventoryIndex, clock: Clock
) -> None:
    uid = add_node(index)
    index.delete_node(uid)
    clock.now += GRACE - 1
    index.prune()
    assert index.node("node-a") is not None and index.endpoint_at("198.18.0.1", T0) is not None
    clock.now += 1
    index.prune()
    assert index.node("node-a") is None and index.endpoint_at("198.18.0.1", T0) is None


def test_a_node_recreated_under_the_same_name_survives_the_old_ones_pruning(
    index: InventoryIndex, clock: Clock
) -> None:
    old = add_node(index, zone="zone-a")
    index.delete_node(old)
    add_node(index, zone="zone-b")
    clock.now += GRACE
    index.prune()
    node = index.node("node-a")
    assert node is not None and node.zone == "zone-b"
    assert index.endpoint_at("198.18.0.1", T0) is node


# --- services ---


def _web_service(index: InventoryIndex, **kwargs: Any) -> str:
    kwargs.setdefault("cluster_ips", ("10.0.0.10",))
    kwargs.setdefault("ports", (("TCP", 80, 30080), ("UDP", 53, 0)))
    raw = manifests.service("web", "shop", **kwargs)
    index.upsert_service(parse_service(raw))
    return str(raw["metadata"]["uid"])


def test_a_cluster_ip_and_port_resolve_to_the_service_for_that_protocol_only(index: InventoryIndex) -> None:
    _web_service(index)
    assert index.service_at("10.0.0.10", 80, "tcp", T0) == "shop/web"
    assert index.service_at("10.0.0.10", 53, "udp", T0) == "shop/web"
    assert index.service_at("10.0.0.10", 80, "udp", T0) is None
    assert index.service_at("10.0.0.10", 443, "tcp", T0) is None


def test_load_balancer_and_external_ips_resolve_to_the_service(index: InventoryIndex) -> None:
    _web_service(
        index, type_="LoadBalancer", load_balancer_ips=("203.0.113.50",), external_ips=("192.0.2.4",)
    )
    assert index.service_at("203.0.113.50", 80, "tcp", T0) == "shop/web"
    assert index.service_at("192.0.2.4", 80, "tcp", T0) == "shop/web"


def test_a_node_port_resolves_on_every_node_address_and_nowhere_else(index: InventoryIndex) -> None:
    add_node(index, internal=("198.18.0.1",), external=("203.0.113.9",))
    _web_service(index, type_="NodePort")
    assert index.service_at("198.18.0.1", 30080, "tcp", T0) == "shop/web"
    assert index.service_at("203.0.113.9", 30080, "tcp", T0) == "shop/web"
    assert index.service_at("198.18.0.1", 30080, "udp", T0) is None
    assert index.service_at("198.18.1.10", 30080, "tcp", T0) is None


def test_a_deleted_service_answers_for_the_grace_period_unless_its_address_is_reused(
    index: InventoryIndex, clock: Clock
) -> None:
    uid = _web_service(index)
    index.delete_service(uid)
    assert index.service_at("10.0.0.10", 80, "tcp", T0) == "shop/web"
    clock.now += GRACE
    index.prune()
    assert index.service_at("10.0.0.10", 80, "tcp", T0) is None
    old = _web_service(index)
    index.delete_service(old)
    index.upsert_service(parse_service(manifests.service("api", "shop", cluster_ips=("10.0.0.10",))))
    assert index.service_at("10.0.0.10", 80, "tcp", T0) == "shop/api"


# --- endpoint slices ---


def test_a_serving_backend_resolves_to_its_service_and_a_not_ready_one_does_not(
    index: InventoryIndex,
) -> None:
    raw = manifests.endpoint_slice("web-1", "web", "shop", ready=("198.18.1.10",), not_ready=("198.18.1.11",))
    index.upsert_endpoint_slice(parse_endpoint_slice(raw))
    assert index.service_of_backend("198.18.1.10", 8080, "tcp", T0) == "shop/web"
    assert index.service_of_backend("198.18.1.10", 9090, "tcp", T0) is None
    assert index.service_of_backend("198.18.1.11", 8080, "tcp", T0) is None


def test_a_backend_of_two_services_resolves_to_the_smaller_name(index: InventoryIndex) -> None:
    for service in ("web", "api"):
        raw = manifests.endpoint_slice(f"{service}-1", service, "shop", ready=("198.18.1.10",))
        index.upsert_endpoint_slice(parse_endpoint_slice(raw))
    assert index.service_of_backend("198.18.1.10", 8080, "tcp", T0) == "shop/api"


def test_a_backend_moved_between_slices_never_disappears(index: InventoryIndex, clock: Clock) -> None:
    first = manifests.endpoint_slice("web-1", "web", "shop", ready=("198.18.1.10",))
    index.upsert_endpoint_slice(parse_endpoint_slice(first))
    index.delete_endpoint_slice(str(first["metadata"]["uid"]))
    index.upsert_endpoint_slice(
        parse_endpoint_slice(manifests.endpoint_slice("web-2", "web", "shop", ready=("198.18.1.10",)))
    )
    clock.now += GRACE
    index.prune()
    assert index.service_of_backend("198.18.1.10", 8080, "tcp", T0) == "shop/web"


def test_a_backend_that_stops_serving_lingers_for_the_grace_period(
    index: InventoryIndex, clock: Clock
) -> None:
    raw = manifests.endpoint_slice("web-1", "web", "shop", ready=("198.18.1.10",))
    index.upsert_endpoint_slice(parse_endpoint_slice(raw))
    raw["endpoints"][0]["conditions"] = {"ready": False, "serving": False, "terminating": True}
    index.upsert_endpoint_slice(parse_endpoint_slice(raw))
    assert index.service_of_backend("198.18.1.10", 8080, "tcp", T0) == "shop/web"
    clock.now += GRACE
    index.prune()
    assert index.service_of_backend("198.18.1.10", 8080, "tcp", T0) is None


def _pod_at(index: InventoryIndex, ip: str, when: float) -> str:
    endpoint = index.endpoint_at(ip, when)
    assert endpoint is not None, f"{ip} resolved to nothing at {when}"
    return endpoint.pod


def test_an_existing_pod_is_placed_on_its_node_by_name_and_a_deleted_one_is_not(
    index: InventoryIndex,
) -> None:
    add_node(index)
    uid = add_pod(index, "agent-x7k2p", "198.18.1.20", node="node-a")
    assert index.node_of_pod("shop", "agent-x7k2p") == "node-a"
    assert index.node_of_pod("shop", "someone-else") is None
    index.delete_pod(uid)
    assert index.node_of_pod("shop", "agent-x7k2p") is None
