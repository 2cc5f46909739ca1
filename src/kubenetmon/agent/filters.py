"""Which flows the agent reports: loopback never, plus the protocols, networks and zones configured."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from kubenetmon.agent.tracker import FlowFilter
from kubenetmon.conntrack.parse import ConntrackEntry

LOOPBACK_V6 = ipaddress.ip_address("::1")
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def flow_filter(
    ignore_protocols: Iterable[int] = (), ignore_cidrs: Iterable[str] = (), ignore_zones: Iterable[int] = ()
) -> FlowFilter:
    """A FlowFilter returning 'loopback', 'protocol', 'cidr' or 'zone' for flows not to report."""
    protocols = frozenset(ignore_protocols)
    networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in ignore_cidrs)
    zones = frozenset(ignore_zones)

    def reason_to_skip(entry: ConntrackEntry) -> str | None:
        orig = entry.orig
        if _is_loopback(orig.src) or _is_loopback(orig.dst):
            return "loopback"
        if orig.proto in protocols:
            return "protocol"
        if entry.zone in zones:
            return "zone"
        if networks and (_inside(orig.src, networks) or _inside(orig.dst, networks)):
            return "cidr"
        return None

    return reason_to_skip


def _is_loopback(address: str) -> bool:
    if address.startswith("127."):
        return True
    return ":" in address and ipaddress.ip_address(address) == LOOPBACK_V6


def _inside(address: str, networks: tuple[IpNetwork, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in networks)
