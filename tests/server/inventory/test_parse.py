"""Raw API JSON -> the slim model: what is kept, how it is normalised, what is rejected."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from kubenetmon.records import parse_rfc3339
from kubenetmon.server.inventory.model import ServicePort, SlicePort
from kubenetmon.server.inventory.parse import (
    MalformedObject,
    parse_endpoint_slice,
    parse_node,
    parse_pod,
    parse_service,
)
from tests.server.inventory import manifests


def test_a_pod_keeps_identity_placement_addresses_and_workload() -> None:
    raw = manifests.pod(
        "checkout-7d9f8b6c5d-x2x4q",
        "shop",
        node="node-a",
        ips=("198.18.1.10", "fd00:db8:0:0::a"),
        labels={"app.kubernetes.io/name": "checkout", "pod-template-hash": "7d9f8b6c5d"},
        owner=("ReplicaSet", "checkout-7d9f8b6c5d"),
        uid="u-1",
    )
    pod = parse_pod(orjson.loads(orjson.dumps(raw)))
    assert (pod.uid, pod.namespace, pod.name, pod.node) == (
        "u-1",
        "shop",
        "checkout-7d9f8b6c5d-x2x4q",
        "node-a",
    )
    assert pod.ips == ("198.18.1.10", "fd00:db8::a")
    assert (pod.owner_kind, pod.owner_name) == ("ReplicaSet", "checkout-7d9f8b6c5d")
    assert (pod.workload, pod.workload_kind, pod.app) == ("checkout", "Deployment", "checkout")
    assert pod.phase == "Running" and not pod.completed and not pod.host_network
    assert pod.started == parse_rfc3339("2026-11-26T10:00:01Z")


def test_a_pod_with_only_the_legacy_pod_ip_field_keeps_that_address() -> None:
    raw = manifests.pod("p", ips=())
    raw["status"]["podIP"] = "198.18.1.11"
    assert parse_pod(raw).ips == ("198.18.1.11",)


def test_a_pending_pod_without_start_time_starts_at_its_creation() -> None:
    raw = manifests.pod("p", phase="Pending")
    del raw["status"]["startTime"]
    pod = parse_pod(raw)
    assert pod.ips == () and pod.started == parse_rfc3339("2026-11-26T10:00:00Z")


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_succeeded_and_failed_pods_are_completed(phase: str) -> None:
    assert parse_pod(manifests.pod("p", phase=phase)).completed


def test_a_host_network_pod_is_marked() -> None:
    assert parse_pod(manifests.pod("p", host_network=True, ips=("198.18.0.1",))).host_network


def test_the_controller_owner_wins_over_other_owner_references() -> None:
    raw = manifests.pod("web-0")
    raw["metadata"]["ownerReferences"] = [
        {"kind": "ConfigMap", "name": "not-a-controller"},
        {"kind": "StatefulSet", "name": "web", "controller": True},
    ]
    pod = parse_pod(raw)
    assert (pod.workload, pod.workload_kind) == ("web", "StatefulSet")


def test_repeated_strings_are_shared_between_pods() -> None:
    first = parse_pod(orjson.loads(orjson.dumps(manifests.pod("a", "team-namespace", node="node-shared"))))
    second = parse_pod(orjson.loads(orjson.dumps(manifests.pod("b", "team-namespace", node="node-shared"))))
    assert first.namespace is second.namespace and first.node is second.node


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda raw: raw.pop("metadata"), "metadata"),
        (lambda raw: raw["metadata"].pop("uid"), "metadata.uid"),
        (lambda raw: raw["status"].update(podIPs=[{"ip": "not-an-ip"}]), "status.podIPs[].ip"),
        (lambda raw: raw["status"].update(startTime="yesterday"), "status.startTime"),
        (lambda raw: raw["metadata"].update(ownerReferences=[42]), "unexpected shape"),
    ],
)
def test_a_malformed_pod_is_rejected_naming_the_field(mutate: Any, field: str) -> None:
    raw = manifests.pod("p", ips=("198.18.1.1",))
    mutate(raw)
    with pytest.raises(MalformedObject, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_pod(raw)


def test_a_node_keeps_zone_region_machine_and_addresses() -> None:
    raw = manifests.node(
        "node-a",
        internal=("198.18.0.1",),
        external=("203.0.113.7",),
        zone="us-west-2a",
        region="us-west-2",
        provider_id="aws:///us-west-2a/i-0abc",
    )
    node = parse_node(raw)
    assert (node.name, node.zone, node.region, node.cloud, node.instance_id) == (
        "node-a",
        "us-west-2a",
        "us-west-2",
        "aws",
        "i-0abc",
    )
    assert node.internal_ips == ("198.18.0.1",) and node.external_ips == ("203.0.113.7",)
    assert node.ips == ("198.18.0.1", "203.0.113.7")


def test_a_node_with_only_deprecated_labels_still_has_a_zone_and_region() -> None:
    node = parse_node(manifests.node("n", zone="zone-b", region="region-1", legacy_labels=True))
    assert (node.zone, node.region) == ("zone-b", "region-1")


def test_a_node_without_labels_takes_zone_and_region_from_its_provider_id() -> None:
    node = parse_node(manifests.node("n", provider_id="gce://proj/europe-west1-b/n"))
    assert (node.cloud, node.zone, node.region) == ("gcp", "europe-west1-b", "europe-west1")


def test_a_node_of_an_unknown_provider_takes_the_configured_cloud() -> None:
    node = parse_node(manifests.node("n", provider_id="kind://docker/kind/n"), default_cloud="onprem")
    assert (node.cloud, node.instance_id) == ("onprem", "n")


def test_a_service_keeps_its_addresses_and_port_mapping() -> None:
    raw = manifests.service(
        "web",
        "shop",
        cluster_ips=("10.0.0.10", "fd00:db8:10::a"),
        ports=(("TCP", 80, 30080), ("UDP", 53, 0)),
        type_="LoadBalancer",
        load_balancer_ips=("203.0.113.50",),
        external_ips=("192.0.2.4",),
    )
    raw["status"]["loadBalancer"]["ingress"].append({"hostname": "lb.example.invalid"})
    service = parse_service(raw)
    assert service.key == "shop/web" and service.type == "LoadBalancer"
    assert service.cluster_ips == ("10.0.0.10", "fd00:db8:10::a")
    assert service.ports == (ServicePort("tcp", 80, 30080, 8080), ServicePort("udp", 53, 0, 8053))
    assert service.load_balancer_ips == ("203.0.113.50",)
    assert service.external_ips == ("192.0.2.4",)


def test_a_headless_service_has_no_cluster_ip() -> None:
    raw = manifests.service("db", cluster_ips=("None",))
    assert parse_service(raw).cluster_ips == ()


def test_a_service_port_without_protocol_is_tcp() -> None:
    raw = manifests.service("web", cluster_ips=("10.0.0.1",))
    del raw["spec"]["ports"][0]["protocol"]
    assert parse_service(raw).ports[0].proto == "tcp"


def test_an_endpoint_slice_keeps_serving_backends_only() -> None:
    raw = manifests.endpoint_slice(
        "web-abc",
        "web",
        "shop",
        ready=("198.18.1.1",),
        not_ready=("198.18.1.2",),
        terminating_serving=("198.18.1.3",),
        ports=(("TCP", 8080), ("UDP", 5353)),
    )
    raw["endpoints"].append({"addresses": ["198.18.1.4"]})  # readiness unknown counts as ready
    endpoint_slice = parse_endpoint_slice(raw)
    assert endpoint_slice.service == "shop/web"
    assert endpoint_slice.addresses == ("198.18.1.1", "198.18.1.3", "198.18.1.4")
    assert endpoint_slice.ports == (SlicePort("tcp", 8080), SlicePort("udp", 5353))


def test_an_fqdn_slice_has_no_addresses() -> None:
    raw = manifests.endpoint_slice("ext", "ext", address_type="FQDN")
    raw["endpoints"] = [{"addresses": ["db.example.invalid"], "conditions": {"ready": True}}]
    assert parse_endpoint_slice(raw).addresses == ()


def test_a_slice_that_no_service_owns_names_no_service() -> None:
    raw = manifests.endpoint_slice("custom", "x", ready=("198.18.1.1",))
    del raw["metadata"]["labels"]
    assert parse_endpoint_slice(raw).service == ""


def test_a_slice_port_without_a_number_is_skipped() -> None:
    raw = manifests.endpoint_slice("s", "svc", ready=("198.18.1.1",))
    raw["ports"].append({"name": "all"})
    assert parse_endpoint_slice(raw).ports == (SlicePort("tcp", 8080),)
