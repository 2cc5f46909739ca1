"""On the demo lab, the ground truth agrees with conntrack through a two-backend ClusterIP."""

from __future__ import annotations

import pytest

from kubenetmon.lab import FlowTruth, Lab, traffic
from kubenetmon.lab.ranges import Family
from tests.lab.conntrack_table import entry_for

pytestmark = pytest.mark.kernel

FRONTEND_B1 = "shop/frontend-6c8d9f7b4-t5j8l"


@pytest.mark.parametrize("family", [pytest.param(4, id="ipv4"), pytest.param(6, id="ipv6")])
def test_vip_flows_to_the_local_and_the_remote_backend_match_conntrack(demo_lab: Lab, family: Family) -> None:
    (service,) = demo_lab.topology.services
    by_backend = {}
    for _ in range(64):
        result = traffic.tcp_transfer(demo_lab, FRONTEND_B1, service, family=family, up=200_000, down=20_000)
        by_backend.setdefault(result.server[0], result)
        if len(by_backend) == 2:
            break
    assert len(by_backend) == 2
    truth = demo_lab.ground_truth(["node-b1"], settle=0.05)
    for result in by_backend.values():
        entry = entry_for(demo_lab, "node-b1", 6, result.client)
        assert (entry.orig.dst, entry.reply.src) == (service.vip(family), result.server[0])
        counted = FlowTruth(entry.orig_packets, entry.orig_bytes, entry.reply_packets, entry.reply_bytes)
        assert truth.flow("node-b1", 6, result.client, result.server) == counted
