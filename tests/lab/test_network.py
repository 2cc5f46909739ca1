"""The demo lab's network: who reaches whom, and that nothing outside the lab is reachable."""

from __future__ import annotations

import pytest

from kubenetmon.lab import Lab, traffic
from kubenetmon.lab.netns import netns_run
from kubenetmon.lab.ranges import Family

pytestmark = pytest.mark.kernel

FAMILIES = [pytest.param(4, id="ipv4"), pytest.param(6, id="ipv6")]
FRONTEND_A1 = "shop/frontend-6c8d9f7b4-x2k4p"  # node-a1, bridge, eu-west-1a
LOADER_A1 = "batch/loader"  # node-a1
CART_A2 = "shop/cart-0"  # node-a2, routed, eu-west-1a
EXPORTER_A2 = "monitoring/node-exporter-h8d5n"  # node-a2
FRONTEND_B1 = "shop/frontend-6c8d9f7b4-t5j8l"  # node-b1, bridge, eu-west-1b


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("client", "server"),
    [(FRONTEND_A1, FRONTEND_B1), (FRONTEND_B1, CART_A2), (CART_A2, FRONTEND_A1)],
    ids=["bridge-to-bridge", "bridge-to-routed", "routed-to-bridge"],
)
def test_pods_reach_pods_on_other_nodes(demo_lab: Lab, client: str, server: str, family: Family) -> None:
    result = traffic.tcp_transfer(demo_lab, client, server, family=family, up=5000, down=7000)
    assert (result.sent, result.received) == (5000, 7000)
    assert result.server == (demo_lab.topology.pod(server).ip(family), result.dialed[1])
    assert result.seen_by_server == result.client


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("client", "server"), [(FRONTEND_A1, LOADER_A1), (CART_A2, EXPORTER_A2)], ids=["bridge", "routed"]
)
def test_pods_reach_pods_on_the_same_node(demo_lab: Lab, client: str, server: str, family: Family) -> None:
    result = traffic.udp_exchange(demo_lab, client, server, family=family, count=3, size=100)
    assert (result.datagrams_sent, result.datagrams_received) == (3, 3)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_cluster_ip_spreads_connections_over_backends_on_two_nodes(demo_lab: Lab, family: Family) -> None:
    (service,) = demo_lab.topology.services
    backends = {demo_lab.topology.pod(key).ip(family) for key in service.backend_keys}
    served: set[str] = set()
    for _ in range(64):
        result = traffic.tcp_transfer(demo_lab, FRONTEND_A1, service, family=family, up=10, down=10)
        assert result.dialed == (service.vip(family), service.port)
        served.add(result.server[0])
        if served == backends:
            break
    assert served == backends


@pytest.mark.parametrize("family", FAMILIES)
def test_the_cloud_service_sees_the_pod_address(demo_lab: Lab, family: Family) -> None:
    s3 = demo_lab.topology.external("s3")
    result = traffic.tcp_transfer(demo_lab, FRONTEND_B1, s3, family=family, up=100, down=100)
    assert result.server[0] == s3.ip(family)
    assert result.seen_by_server == result.client


@pytest.mark.parametrize("family", FAMILIES)
def test_internet_egress_is_masqueraded_to_the_node_address(demo_lab: Lab, family: Family) -> None:
    result = traffic.udp_exchange(demo_lab, FRONTEND_B1, "internet", family=family, count=2, size=10)
    assert result.seen_by_server[0] == demo_lab.topology.node("node-b1").ip(family)


@pytest.mark.parametrize("family", FAMILIES)
def test_an_external_host_reaches_a_pod(demo_lab: Lab, family: Family) -> None:
    result = traffic.tcp_transfer(demo_lab, "s3", CART_A2, family=family, up=10, down=10)
    assert result.received == 10


@pytest.mark.parametrize(
    "destination",
    ["8.8.8.8", "1.1.1.1", "10.0.0.1", "192.0.2.99", "2001:4860:4860::8888", "2001:db8:ffff::1"],
)
def test_no_lab_namespace_has_a_route_outside_the_lab(demo_lab: Lab, destination: str) -> None:
    for name in demo_lab.namespaces:
        lookup = netns_run(name, ["ip", "route", "get", destination], check=False)
        assert lookup.returncode != 0, f"{name} routes {destination}: {lookup.stdout}"
