"""Which flows are reported: loopback never; protocols, networks and zones as configured."""

from __future__ import annotations

import pytest

from kubenetmon.agent.filters import flow_filter
from kubenetmon.conntrack.parse import ConntrackEntry, FlowTuple


def entry(src: str, dst: str, proto: int = 6, zone: int = 0) -> ConntrackEntry:
    family = 6 if ":" in src else 4
    orig = FlowTuple(family, proto, src, dst, 1000, 80)
    reply = FlowTuple(family, proto, dst, src, 80, 1000)
    return ConntrackEntry(orig, reply, 1, 0, zone, 0, 1, 100, 0, 0, True)


@pytest.mark.parametrize(
    ("src", "dst"), [("127.0.0.1", "127.0.0.1"), ("127.5.6.7", "198.18.1.1"), ("::1", "::1")]
)
def test_loopback_is_never_reported(src: str, dst: str) -> None:
    assert flow_filter()(entry(src, dst)) == "loopback"


def test_other_traffic_is_reported_by_default() -> None:
    assert flow_filter()(entry("198.18.1.10", "198.18.2.10")) is None
    assert flow_filter()(entry("fd00:db8:1::10", "fd00:db8:2::10")) is None


def test_configured_protocols_networks_and_zones_are_skipped() -> None:
    skip = flow_filter(
        ignore_protocols=[1], ignore_cidrs=["198.19.0.0/16", "fd00:db8:ff::/48"], ignore_zones=[9]
    )
    assert skip(entry("198.18.1.10", "198.18.2.10", proto=1)) == "protocol"
    assert skip(entry("198.18.1.10", "198.19.0.10")) == "cidr"
    assert skip(entry("fd00:db8:ff::1", "fd00:db8:2::10")) == "cidr"
    assert skip(entry("198.18.1.10", "198.18.2.10", zone=9)) == "zone"
    assert skip(entry("198.18.1.10", "198.18.2.10")) is None
