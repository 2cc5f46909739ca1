"""The static inventory file: lookups, shared endpoints, reloads, and precise rejection of bad files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from kubenetmon.errors import InventoryError
from kubenetmon.records import EndpointKind
from kubenetmon.server.inventory.static import StaticInventory

DOCS_EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "static-inventory.yaml"
SMALL = """
cluster: lab
cloud: aws
region: us-east-1
nodes:
  - {name: node-a, zone: use1-az1, addresses: [198.18.0.1]}
pods:
  - {namespace: shop, name: web-1, node: node-a, ips: [198.18.1.10], labels: {k8s-app: web}}
external:
  - {cidr: 198.18.64.0/24, name: orders-db, zone: use1-az2}
"""


def write(path: Path, text: str) -> None:
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a new mtime even within a tick


def reloads(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("kubenetmon_server_static_inventory_reloads_total", {"outcome": outcome})
        or 0.0
    )


def test_the_documented_example_loads_and_answers_every_lookup() -> None:
    inventory = StaticInventory(DOCS_EXAMPLE)
    pod = inventory.endpoint_at("198.18.1.10", 0)
    assert pod is not None
    assert (pod.kind, pod.pod, pod.zone, pod.cluster, pod.app, pod.workload) == (
        EndpointKind.POD,
        "web-6d5ff494fb-wvs8d",
        "us-east-1a",
        "demo",
        "web",
        "web",
    )
    assert inventory.endpoint_at("fd00:db8:1::10", 0) is pod
    assert inventory.node("node-a") is inventory.endpoint_at("198.18.0.1", 0)
    assert inventory.service_at("198.19.0.10", 80, "tcp", 0) == "shop/web"
    assert inventory.service_at("198.18.0.1", 30080, "tcp", 0) == "shop/web"
    assert inventory.service_at("198.19.0.10", 80, "udp", 0) is None
    assert inventory.service_of_backend("198.18.1.10", 8080, "tcp", 0) == "shop/web"
    nat = inventory.external("198.18.100.1")
    assert nat is not None
    assert (nat.app, nat.flags, nat.region) == ("egress-nat", ("nat-gateway",), "us-east-1")
    assert inventory.external("198.18.64.77").cloud_service == "rds"  # type: ignore[union-attr]


def test_a_changed_file_is_reloaded_and_unchanged_entries_keep_their_objects(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    write(path, SMALL)
    inventory = StaticInventory(path)
    pod, node = inventory.endpoint_at("198.18.1.10", 0), inventory.node("node-a")
    write(path, SMALL.replace("use1-az2", "use1-az3"))
    assert inventory.reload_if_changed()
    assert inventory.endpoint_at("198.18.1.10", 0) is pod
    assert inventory.node("node-a") is node
    assert inventory.external("198.18.64.1").zone == "use1-az3"  # type: ignore[union-attr]
    assert not inventory.reload_if_changed()


def test_a_bad_reload_keeps_the_previous_content_and_is_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "inventory.yaml"
    write(path, SMALL)
    inventory = StaticInventory(path)
    before = reloads("invalid")
    write(path, SMALL.replace("198.18.1.10", "198.18.1.999"))
    assert not inventory.reload_if_changed()
    assert reloads("invalid") == before + 1
    assert inventory.endpoint_at("198.18.1.10", 0) is not None
    assert "$.pods[0].ips[0]: '198.18.1.999' is not an IP address" in caplog.text


def test_a_missing_file_is_counted_and_keeps_the_previous_content(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    write(path, SMALL)
    inventory = StaticInventory(path)
    path.unlink()
    before = reloads("unreadable")
    assert not inventory.reload_if_changed()
    assert reloads("unreadable") == before + 1
    assert inventory.node("node-a") is not None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("nodes: {name: a}", "$.nodes: expected a list, got dict"),
        ("nodes:\n  - {zone: z}", "$.nodes[0].name: required key is missing"),
        (
            "pods:\n  - {namespace: a, name: b, node: ghost}",
            "$.pods[0].node: no node called 'ghost' in $.nodes",
        ),
        ("pods:\n  - {namespace: a, name: b, colour: red}", "$.pods[0].colour: unknown key"),
        (
            "pods:\n  - {namespace: a, name: b, labels: {x: 1}}",
            "$.pods[0].labels: expected a mapping of text to text",
        ),
        (
            "services:\n  - {namespace: a, name: b, ports: [{port: 70000}]}",
            "$.services[0].ports[0].port: expected a port",
        ),
        (
            "services:\n  - {namespace: a, name: b, ports: [{port: 80, protocol: icmp}]}",
            "$.services[0].ports[0].protocol",
        ),
        ("external:\n  - {cidr: 10.0.0.1/8}", "$.external[0].cidr: '10.0.0.1/8' is not a CIDR network"),
        ("external:\n  - {cidr: 10.0.0.0/8, flags: ['']}", "$.external[0].flags[0]: expected non-empty text"),
        (
            "nodes:\n  - {name: a, addresses: [10.0.0.1]}\n  - {name: b, addresses: [10.0.0.1]}",
            "$.nodes[1]: address 10.0.0.1 is already used by node a",
        ),
        ("clusters: x", "$.clusters: unknown key"),
        ("[1, 2]", "$: expected a mapping, got list"),
        ("pods: [", "not valid YAML"),
    ],
)
def test_a_bad_file_is_rejected_naming_the_file_and_the_path_of_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "inventory.yaml"
    write(path, text)
    with pytest.raises(InventoryError) as caught:
        StaticInventory(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)
