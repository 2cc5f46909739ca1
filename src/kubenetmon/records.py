"""The records that cross stage boundaries, and nothing else.

Data flows through kubenetmon in one direction, and each arrow below carries exactly one of these types:

    kernel conntrack --ConntrackEntry--> agent tracker --FlowRecord--> Batch --(gRPC)--> server
    server attribution --AttributedRow--> aggregation --> store

Only the edges convert: `transport` turns a `Batch` into protobuf and back, `store` turns `AttributedRow`s
into ClickHouse columns, `agent.sinks` turns `FlowRecord`s into JSON lines.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

# IANA protocol numbers we name; anything else keeps its number as its name ("47" for GRE is named below,
# "132" for SCTP too, an unnamed protocol 253 is "253"), so no protocol is ever folded into another.
PROTO_NAMES: dict[int, str] = {
    1: "icmp",
    2: "igmp",
    6: "tcp",
    17: "udp",
    33: "dccp",
    41: "ipv6",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "icmpv6",
    112: "vrrp",
    132: "sctp",
    136: "udplite",
}
PROTO_NUMBERS: dict[str, int] = {name: number for number, name in PROTO_NAMES.items()}


def proto_name(number: int) -> str:
    """The lower-case name of an IP protocol number, or the number itself as text when it has none."""
    return PROTO_NAMES.get(number) or str(number)


def proto_number(name: str) -> int:
    """Inverse of `proto_name`."""
    number = PROTO_NUMBERS.get(name)
    if number is not None:
        return number
    if name.isdigit() and 0 <= int(name) <= 255:
        return int(name)
    raise ValueError(f"unknown IP protocol {name!r}: expected a name such as 'tcp' or a number 0-255")


def family_name(family: int) -> str:
    """'ipv4' or 'ipv6' for an IP version number."""
    if family == 4:
        return "ipv4"
    if family == 6:
        return "ipv6"
    raise ValueError(f"unknown IP family {family!r}: expected 4 or 6")


def family_number(name: str) -> int:
    """Inverse of `family_name`."""
    if name == "ipv4":
        return 4
    if name == "ipv6":
        return 6
    raise ValueError(f"unknown IP family {name!r}: expected 'ipv4' or 'ipv6'")


def rfc3339(epoch_seconds: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds, e.g. 2026-11-26T10:00:05.000Z."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_rfc3339(text: str) -> float:
    """Inverse of `rfc3339`; accepts any RFC 3339 timestamp with an explicit offset or Z."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset; RFC 3339 needs one (e.g. a trailing Z)")
    return moment.timestamp()


class FlowRecord(NamedTuple):
    """One flow's counter deltas over one agent interval, as observed on one node.

    The fields are the agent's JSON-lines keys. `orig_*` is the tuple of the packet that created the
    conntrack entry, `reply_*` the tuple the kernel expects for answers: under DNAT the reply source is the
    real backend, under SNAT the reply destination is the translated address. Byte counts are L3 bytes
    (IP header included) of the packets netfilter saw, exactly as the kernel counted them.

    A NamedTuple rather than a frozen dataclass: the server decodes hundreds of thousands per second,
    and a frozen dataclass costs eight times as much to construct (2.3 vs 0.3 us measured).
    """

    node: str
    proto: int
    """IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...)."""
    family: int
    """4 or 6."""
    orig_src: str
    orig_dst: str
    orig_sport: int
    orig_dport: int
    reply_src: str
    reply_dst: str
    reply_sport: int
    reply_dport: int
    orig_bytes: int
    orig_packets: int
    reply_bytes: int
    reply_packets: int
    start: float
    """Interval start, epoch seconds (UTC wall clock)."""
    end: float
    """Interval end, epoch seconds (UTC wall clock)."""

    def to_json_dict(self) -> dict[str, object]:
        """The record with the agent's JSON-lines keys: protocol and family by name, times in RFC 3339."""
        return {
            "node": self.node,
            "proto": proto_name(self.proto),
            "family": family_name(self.family),
            "orig_src": self.orig_src,
            "orig_dst": self.orig_dst,
            "orig_sport": self.orig_sport,
            "orig_dport": self.orig_dport,
            "reply_src": self.reply_src,
            "reply_dst": self.reply_dst,
            "reply_sport": self.reply_sport,
            "reply_dport": self.reply_dport,
            "orig_bytes": self.orig_bytes,
            "orig_packets": self.orig_packets,
            "reply_bytes": self.reply_bytes,
            "reply_packets": self.reply_packets,
            "start": rfc3339(self.start),
            "end": rfc3339(self.end),
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, object]) -> FlowRecord:
        """Inverse of `to_json_dict`; raises ValueError naming the first bad or missing key."""
        try:
            return cls(
                node=str(data["node"]),
                proto=proto_number(str(data["proto"])),
                family=family_number(str(data["family"])),
                orig_src=_ip(data["orig_src"]),
                orig_dst=_ip(data["orig_dst"]),
                orig_sport=_uint(data["orig_sport"], 0xFFFF),
                orig_dport=_uint(data["orig_dport"], 0xFFFF),
                reply_src=_ip(data["reply_src"]),
                reply_dst=_ip(data["reply_dst"]),
                reply_sport=_uint(data["reply_sport"], 0xFFFF),
                reply_dport=_uint(data["reply_dport"], 0xFFFF),
                orig_bytes=_uint(data["orig_bytes"], 2**64 - 1),
                orig_packets=_uint(data["orig_packets"], 2**64 - 1),
                reply_bytes=_uint(data["reply_bytes"], 2**64 - 1),
                reply_packets=_uint(data["reply_packets"], 2**64 - 1),
                start=parse_rfc3339(str(data["start"])),
                end=parse_rfc3339(str(data["end"])),
            )
        except KeyError as exc:
            raise ValueError(f"flow record is missing key {exc.args[0]!r}") from exc


def _ip(value: object) -> str:
    return str(ipaddress.ip_address(str(value)))


def _uint(value: object, maximum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise ValueError(f"expected an integer in 0..{maximum}, got {value!r}")
    return value


class LossReason(enum.StrEnum):
    """Why bytes or records could not be reported exactly. Every loss is counted under one of these."""

    EVENTS_OVERFLOW = "events_overflow"
    """The kernel dropped conntrack events for our socket (ENOBUFS); `count` is overflow occurrences."""
    VANISHED_WITHOUT_DESTROY = "vanished_without_destroy"
    """A flow left the table without a DESTROY event; its bytes since the last dump are unknown."""
    BASELINE_AT_START = "baseline_at_start"
    """Bytes a flow had accumulated before the agent first saw it; not attributable to any interval."""
    MALFORMED_NETLINK = "malformed_netlink"
    """A netlink message or attribute could not be parsed and was skipped."""
    SPOOL_OVERFLOW = "spool_overflow"
    """The agent's spool was full and its oldest batch was dropped."""
    COUNTER_RESET = "counter_reset"
    """A flow's counters went backwards under the same identity; treated as a new flow."""


@dataclass(frozen=True, slots=True)
class LossReport:
    """A count of something the agent could not report exactly, travelling in-band with the next batch."""

    reason: LossReason
    count: int
    """Occurrences (flows, messages, batches: see the reason)."""
    bytes: int = 0
    """Bytes known to be affected, when the agent knows them (0 when it cannot)."""
    packets: int = 0


@dataclass(frozen=True, slots=True)
class Batch:
    """What an agent hands to its sink each interval: records plus in-band loss reports.

    `epoch` identifies one agent instance's sequence space (a new random value when an agent starts
    without an on-disk spool); `seq` increases by one per batch within an epoch, so the server can
    recognise a resent batch and detect gaps.
    """

    node: str
    epoch: str
    seq: int
    records: Sequence[FlowRecord]
    losses: Sequence[LossReport] = field(default_factory=tuple)
    encoded: bytes = field(default=b"", compare=False, repr=False)
    """The wire form this batch was decoded from (set only by `transport.codec.decode_batch`), so the
    server can store what it received without encoding it again; empty for a batch built any other way.
    Not part of equality. A Batch derived from a decoded one must not copy it."""


class RecordSink(Protocol):
    """Where an agent's batches go: JSON lines on stdout, memory in tests, or the gRPC transport."""

    async def submit(self, batch: Batch) -> None:
        """Take responsibility for a batch. May wait (back-pressure); must not lose it silently."""

    async def aclose(self, timeout: float) -> None:  # noqa: ASYNC109 - a drain budget, not a cancel scope
        """Deliver or persist what is pending, waiting at most `timeout` seconds, then release resources."""


class Direction(enum.StrEnum):
    """Byte direction of a stored row, relative to its local endpoint (the seed schema's Enum)."""

    OUT = "out"
    IN = "in"


class ConnectionClass(enum.StrEnum):
    """The seed schema's `connectionClass` values, kept for compatibility."""

    INTRA_VPC = "INTRA_VPC"
    INTRA_REGION = "INTRA_REGION"
    INTER_REGION = "INTER_REGION"
    PUBLIC_INTERNET = "PUBLIC_INTERNET"
    UNKNOWN = "UNKNOWN"


class BillingClass(enum.StrEnum):
    """What a byte costs, in the terms cloud bills use."""

    SAME_ZONE = "same-zone"
    CROSS_ZONE = "cross-zone"
    CROSS_REGION = "cross-region"
    INTERNET = "internet"
    CLOUD_SERVICE = "cloud-service"
    """A cloud provider's service (S3, GCS, ...) in the local region; in another region it is cross-region."""
    UNKNOWN = "unknown"


class EndpointKind(enum.StrEnum):
    """What one side of a flow turned out to be."""

    POD = "pod"
    NODE = "node"
    """A node's own address: host-network pods, kubelet, node-local daemons."""
    SERVICE = "service"
    """A Service IP whose backend could not be seen (the reply tuple did not reveal it)."""
    EXTERNAL = "external"
    """Known from the static inventory (a VM, a database, a subnet, a NAT gateway)."""
    CLOUD = "cloud"
    """Matched a cloud provider's published IP ranges."""
    PRIVATE = "private"
    """In a configured private/VPC range, but nothing more is known."""
    INTERNET = "internet"
    """A public address that matched no cloud range and no inventory entry."""
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, eq=False)
class Endpoint:
    """What is known about one side of a flow, independent of any particular flow.

    Instances are shared: the inventory hands out one object per pod, node or range entry, so rows can
    refer to them cheaply. Equality is identity on purpose (hashing 14 strings per row would dominate
    aggregation); two equal-looking objects only mean two rows that ClickHouse sums later.
    Empty string means "not known" for every text field.
    """

    kind: EndpointKind
    cloud: str = ""
    region: str = ""
    cluster: str = ""
    cell: str = ""
    zone: str = ""
    node: str = ""
    instance_id: str = ""
    namespace: str = ""
    pod: str = ""
    app: str = ""
    workload: str = ""
    workload_kind: str = ""
    cloud_service: str = ""
    """For remote endpoints: the cloud service (s3, googlecloud, azurestorage, ...) its range belongs to."""
    flags: tuple[str, ...] = ()
    """Connection flags every row with this endpoint carries (e.g. 'nat-gateway')."""


class AttributedRow(NamedTuple):
    """One output row: bytes in one direction between a local and a remote endpoint in one time bucket.

    A NamedTuple rather than a dataclass because the server builds two per flow record on its hot path,
    and `row[:-2]` is the aggregation key (everything but the two summed counters).
    `store` maps these fields onto the `network_flows_0` columns (see `store.schema`).
    """

    bucket_start: int
    """Epoch seconds of the bucket start (the `intervalStartTime` column)."""
    bucket_seconds: int
    environment: str
    proto: str
    direction: Direction
    local: Endpoint
    remote: Endpoint
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    local_service: str
    """namespace/name of the Service through which the local pod was reached, if any."""
    remote_service: str
    """namespace/name of the Service the flow addressed (ClusterIP, NodePort, LoadBalancer), if any."""
    connection_class: ConnectionClass
    billing_class: BillingClass
    billing_reason: str
    """Short machine-readable reason for the billing class, e.g. 'pod-zones-differ'."""
    flags: tuple[str, ...]
    """Names of the connection flags that are set (e.g. 'dnat', 'snat'); stored as a Map with true values."""
    observation_point: str
    """The node whose agent saw these bytes."""
    count_once: bool
    """True on exactly one of the rows that carry a given byte across all observation points."""
    bytes: int
    packets: int
