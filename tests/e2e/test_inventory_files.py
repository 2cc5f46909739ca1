"""What the demo tells the server is what the server's own parsers accept, and it says what the lab is."""

from __future__ import annotations

from pathlib import Path

import yaml

from kubenetmon.demo.inventory import write_cloud_ranges, write_inventory
from kubenetmon.lab import Topology
from kubenetmon.server.cloud.providers import Provider
from kubenetmon.server.cloud.snapshot import startup_entries
from kubenetmon.server.cloud.table import CloudRangeTable
from kubenetmon.server.inventory.static import validate_document

DEMO = Topology.demo()


def test_the_inventory_lists_every_node_pod_and_service_of_the_lab(tmp_path: Path) -> None:
    path = write_inventory(tmp_path / "inventory.yaml", DEMO)
    document = validate_document(yaml.safe_load(path.read_text()), str(path))
    assert {(n.name, n.zone, n.addresses) for n in document.nodes} == {
        (n.name, n.zone, (n.ipv4, n.ipv6)) for n in DEMO.nodes
    }
    assert {(p.namespace, p.name, p.node, p.ips, p.workload) for p in document.pods} == {
        (p.namespace, p.name, p.node, (p.ipv4, p.ipv6), p.workload or "") for p in DEMO.pods
    }
    (service,) = document.services
    assert service.ips == ("198.19.0.10", "fd00:db8:ffff::10")
    assert {(port.port, port.target_port, port.protocol) for port in service.ports} == {
        (80, 8080, "tcp"),
        (80, 8080, "udp"),
    }
    assert len(service.backends) == 4


def test_the_externals_are_not_in_the_inventory(tmp_path: Path) -> None:
    document = yaml.safe_load(write_inventory(tmp_path / "inventory.yaml", DEMO).read_text())
    assert "external" not in document


def test_the_range_file_makes_the_s3_endpoint_a_cloud_service_in_its_region_and_nothing_else(
    tmp_path: Path,
) -> None:
    table = CloudRangeTable(startup_entries(write_cloud_ranges(tmp_path, DEMO)))
    s3, internet = DEMO.external("s3"), DEMO.external("internet")
    for address in (s3.ipv4, s3.ipv6):
        found = table.lookup(address)
        assert found is not None
        assert (found.cloud, found.region, found.cloud_service) == ("aws", "us-east-1", "s3")
    assert table.lookup(internet.ipv4) is None
    assert table.lookup(internet.ipv6) is None
    assert table.prefix_counts[Provider.AWS] == 2
