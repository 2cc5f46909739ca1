"""The two sides of the accuracy comparison, in one shape: bytes per flow direction.

`stored_bytes` reads what the server stored (one entry per observation point, flow direction, count-once
flag and attribution), named by sender and receiver instead of local and remote. `truth_bytes` reads
the lab's nftables counters per node. Both keep TCP and UDP only: the truth also counts packets
conntrack never tracks (IPv6 neighbour discovery, MLD), which no agent can report.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import NamedTuple

from kubenetmon.lab import GroundTruth
from kubenetmon.records import PROTO_NUMBERS
from kubenetmon.store.queries import Queryable

METERED_PROTOCOLS = frozenset({6, 17})


class FlowKey(NamedTuple):
    """One direction of one flow: bytes from (src, sport) to (dst, dport), real endpoints (no VIPs)."""

    proto: int
    src: str
    sport: int
    dst: str
    dport: int

    @property
    def pair(self) -> PairKey:
        """The ordered address pair the flow belongs to."""
        return PairKey(self.proto, self.src, self.dst)


class PairKey(NamedTuple):
    """Sender and receiver addresses and the protocol: every flow direction between two endpoints."""

    proto: int
    sender: str
    receiver: str


class Facts(NamedTuple):
    """What attribution says about one side of a flow (empty text: not known / not applicable)."""

    namespace: str = ""
    pod: str = ""
    workload: str = ""
    workload_kind: str = ""
    zone: str = ""
    region: str = ""
    cloud: str = ""
    cloud_service: str = ""


@dataclass(frozen=True, slots=True)
class StoredBytes:
    """Bytes the store holds for one flow direction, as seen at one observation point."""

    observation_point: str
    flow: FlowKey
    count_once: bool
    billing_class: str
    sender: Facts
    receiver: Facts
    bytes: int
    packets: int


def normal_ip(text: str) -> str:
    """One spelling per address: IPv4-mapped IPv6 (how the IPv6 columns hold IPv4) becomes IPv4."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _side(side: str, cloud_service: bool) -> str:
    service = f"{side}CloudService" if cloud_service else "''"
    return (
        f"{side}Namespace, {side}Pod, {side}Workload, {side}WorkloadKind, {side}AvailabilityZone, "
        f"{side}Region, {side}Cloud, {service}"
    )


STORED_BYTES_SQL = f"""
SELECT observationPoint, direction, countOnce, proto, billingClass,
       toString(localIPv6), localPort, toString(remoteIPv6), remotePort,
       {_side("local", False)}, {_side("remote", True)},
       sum(bytes), sum(packets)
FROM {{db:Identifier}}.{{tbl:Identifier}}
WHERE proto IN ('tcp', 'udp')
GROUP BY ALL
"""


def stored_bytes(store: Queryable) -> list[StoredBytes]:
    """Everything in the store's flow table (summed over time buckets), per flow direction."""
    name = store.settings.name
    result = store.query(STORED_BYTES_SQL, {"db": name.database, "tbl": name.table})
    return [_stored(row) for row in result.rows]


def _stored(row: tuple[object, ...]) -> StoredBytes:
    point, direction, once, proto, billing, local_ip, local_port, remote_ip, remote_port = row[:9]
    local, remote = Facts(*map(str, row[9:17])), Facts(*map(str, row[17:25]))
    local_end = (normal_ip(str(local_ip)), int(str(local_port)))
    remote_end = (normal_ip(str(remote_ip)), int(str(remote_port)))
    outgoing = direction == "out"
    (src, sport), (dst, dport) = (local_end, remote_end) if outgoing else (remote_end, local_end)
    return StoredBytes(
        observation_point=str(point),
        flow=FlowKey(PROTO_NUMBERS[str(proto)], src, sport, dst, dport),
        count_once=bool(once),
        billing_class=str(billing),
        sender=local if outgoing else remote,
        receiver=remote if outgoing else local,
        bytes=int(str(row[25])),
        packets=int(str(row[26])),
    )


NodeFlow = tuple[str, FlowKey]
"""(node, flow direction): where bytes were counted."""


def truth_bytes(truth: GroundTruth) -> dict[NodeFlow, int]:
    """Bytes each node's truth counters saw per TCP/UDP flow direction, summed over its hooks.

    A packet passes either forward or input/output at one node (loopback is counted at output only), so
    the sum is what that node's conntrack saw, whichever way the traffic touched the node.
    """
    counted: dict[NodeFlow, int] = {}
    for record in truth.records:
        if record.proto in METERED_PROTOCOLS and record.bytes:
            key = (record.node, FlowKey(record.proto, record.src, record.sport, record.dst, record.dport))
            counted[key] = counted.get(key, 0) + record.bytes
    return counted
