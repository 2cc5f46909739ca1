"""Ground truth: per-flow packet and byte counts from nftables, independent of conntrack.

What each counter counts. Every node netns has one dynamic nft set per (hook, family); an element is
keyed by (src ip, dst ip, IP protocol, src port, dst port), ports 0 unless the protocol is TCP, UDP or
SCTP, and carries a counter. Every packet passing the hook updates its element's counter with
`skb->len` at that hook: the L3 length, IP header + L4 header + payload, of the skb netfilter sees. That
is exactly what conntrack adds to an entry (at prerouting or output, on the same skb), so:

* UDP datagrams of S bytes count S + 28 (IPv4) or S + 48 (IPv6) each; a fragmented datagram counts
  once, reassembled. TCP under GSO/TSO counts super-packets, as conntrack does.
* `forward` sees routed and (with br_netfilter) bridged traffic through the node. Its addresses are the
  *real* endpoints: DNAT has already happened (prerouting) and SNAT has not (postrouting), while replies
  are already de-SNATed and not yet de-DNATed. For a conntrack entry that means
      orig direction  = key (orig.src, orig.sport) -> (reply.src, reply.sport)
      reply direction = key (reply.src, reply.sport) -> (orig.src, orig.sport)
  i.e. the client is the orig source, the server is the reply source (the backend behind a VIP, the
  pod's real address behind masquerade). `GroundTruth.flow` does this lookup.
* `input` sees packets delivered to the node itself (post-DNAT), except on `lo`; `output` sees packets
  the node sends, after output DNAT, including loopback, which conntrack also counts once, at output.
* Not in conntrack but here: packets conntrack leaves untracked or finds invalid (IPv6 neighbour
  discovery, MLD, IGMP, TCP segments outside the window). Not here but in conntrack: packets dropped
  after conntrack saw them and before the hook (e.g. no route). Match flows by key, not by totals.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from kubenetmon.lab.netns import LabError
from kubenetmon.lab.nft import HOOKS, TRUTH_SET_SIZE, TRUTH_TABLE

Hook = Literal["forward", "input", "output"]
Address = tuple[str, int]
"""(IP address, port); port 0 for protocols without ports."""
_Key = tuple[str, str, int, int, str, str, int, int]


@dataclass(frozen=True, slots=True)
class TruthRecord:
    """The packets and bytes one node counted for one key at one hook, since the last reset."""

    node: str
    hook: Hook
    family: int
    proto: int
    src: str
    dst: str
    sport: int
    dport: int
    packets: int
    bytes: int

    @property
    def key(self) -> _Key:
        """Everything but the counts."""
        return (self.node, self.hook, self.family, self.proto, self.src, self.dst, self.sport, self.dport)


@dataclass(frozen=True, slots=True)
class FlowTruth:
    """Both directions of one flow on one node, in conntrack's orig/reply terms."""

    orig_packets: int
    orig_bytes: int
    reply_packets: int
    reply_bytes: int


class GroundTruth:
    """A reading of the truth counters of some nodes; query it by key, or subtract an earlier reading."""

    __slots__ = ("_by_direction", "records")

    def __init__(self, records: Iterable[TruthRecord]) -> None:
        self.records: tuple[TruthRecord, ...] = tuple(records)
        # (node, proto, src, sport, dst, dport) -> [packets, bytes] over all hooks, for O(1) flow lookups.
        self._by_direction: dict[tuple[str, int, str, int, str, int], list[int]] = {}
        for r in self.records:
            counts = self._by_direction.setdefault((r.node, r.proto, r.src, r.sport, r.dst, r.dport), [0, 0])
            counts[0] += r.packets
            counts[1] += r.bytes

    def __repr__(self) -> str:
        return f"GroundTruth({len(self.records)} records)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroundTruth):
            return NotImplemented
        return set(self.records) == set(other.records)

    __hash__ = None  # type: ignore[assignment]

    def select(
        self,
        *,
        node: str | None = None,
        hook: Hook | None = None,
        family: int | None = None,
        proto: int | None = None,
        src: str | None = None,
        dst: str | None = None,
        sport: int | None = None,
        dport: int | None = None,
    ) -> list[TruthRecord]:
        """The records matching every given field (addresses in any spelling)."""
        wanted = {
            "node": node,
            "hook": hook,
            "family": family,
            "proto": proto,
            "src": _normal(src) if src is not None else None,
            "dst": _normal(dst) if dst is not None else None,
            "sport": sport,
            "dport": dport,
        }
        filters = {name: value for name, value in wanted.items() if value is not None}
        return [r for r in self.records if all(getattr(r, name) == value for name, value in filters.items())]

    def counted(self, node: str, proto: int, src: Address, dst: Address) -> tuple[int, int]:
        """(packets, bytes) `node` counted from `src` to `dst`, summed over its hooks."""
        packets, size = self._by_direction.get(
            (node, proto, _normal(src[0]), src[1], _normal(dst[0]), dst[1]), (0, 0)
        )
        return packets, size

    def flow(self, node: str, proto: int, client: Address, server: Address) -> FlowTruth:
        """Both directions between a client and the server that really answered.

        For a conntrack entry: client = (orig src, orig sport), server = (reply src, reply sport).
        """
        orig = self.counted(node, proto, client, server)
        reply = self.counted(node, proto, server, client)
        return FlowTruth(orig[0], orig[1], reply[0], reply[1])

    def total(self, node: str | None = None) -> tuple[int, int]:
        """(packets, bytes) over all records, or over one node's."""
        records = self.select(node=node)
        return sum(r.packets for r in records), sum(r.bytes for r in records)

    def since(self, earlier: GroundTruth) -> GroundTruth:
        """What was counted after `earlier` was read (records that did not change are left out)."""
        before = {record.key: record for record in earlier.records}
        changed = []
        for record in self.records:
            old = before.get(record.key)
            packets = record.packets - (old.packets if old else 0)
            size = record.bytes - (old.bytes if old else 0)
            if packets or size:
                changed.append(dataclasses.replace(record, packets=packets, bytes=size))
        return GroundTruth(changed)


@functools.lru_cache(maxsize=65536)
def _normal(address: str) -> str:
    # Cached: a reading repeats the same few pod addresses thousands of times, and parsing is slow.
    return str(ipaddress.ip_address(address))


def parse_truth(node: str, text: str, set_size: int = TRUTH_SET_SIZE) -> list[TruthRecord]:
    """Records from `nft -j -n list table inet knm_truth` output; LabError if a set is full."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabError(f"node {node}: nft printed no JSON for the truth table: {exc}") from exc
    records: list[TruthRecord] = []
    for item in document.get("nftables", []):
        declared = item.get("set")
        if not declared or declared.get("table") != TRUTH_TABLE:
            continue
        hook, _, version = declared["name"].rpartition("_v")
        if hook not in HOOKS or version not in ("4", "6"):
            continue
        elements = declared.get("elem", [])
        if len(elements) >= set_size:
            raise LabError(f"node {node}: truth set {declared['name']} is full; later flows were not counted")
        records += [_record(node, hook, int(version), element) for element in elements]
    return records


def _record(node: str, hook: str, family: int, element: dict[str, Any]) -> TruthRecord:
    body = element.get("elem", element)
    src, dst, proto, sport, dport = body["val"]["concat"]
    counter = body.get("counter") or {"packets": 0, "bytes": 0}
    return TruthRecord(
        node=node,
        hook=hook,  # type: ignore[arg-type]  # checked against HOOKS by the caller
        family=family,
        proto=int(proto),
        src=_normal(src),
        dst=_normal(dst),
        sport=int(sport),
        dport=int(dport),
        packets=int(counter["packets"]),
        bytes=int(counter["bytes"]),
    )
