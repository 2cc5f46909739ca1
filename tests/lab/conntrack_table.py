"""Reads a lab node's conntrack table with the Debian `conntrack` tool: an oracle independent of our code."""

from __future__ import annotations

from dataclasses import dataclass

from kubenetmon.lab import Lab

PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132}


@dataclass(frozen=True)
class Tuple:
    src: str
    dst: str
    sport: int
    dport: int


@dataclass(frozen=True)
class CtEntry:
    proto: int
    orig: Tuple
    reply: Tuple
    orig_packets: int
    orig_bytes: int
    reply_packets: int
    reply_bytes: int
    line: str


def conntrack_entries(lab: Lab, node: str) -> list[CtEntry]:
    """Every entry of `node`'s table, both families (`conntrack -L` lists both)."""
    listing = lab.run(node, ["conntrack", "-L"]).stdout
    return [entry for line in listing.splitlines() if (entry := _parse(line)) is not None]


def _parse(line: str) -> CtEntry | None:
    words = line.split()
    if len(words) < 2 or not words[1].isdigit():
        return None
    fields: list[dict[str, str]] = [{}, {}]
    side = -1
    for word in words:
        key, _, value = word.partition("=")
        if key == "src":
            side += 1
        if side in (0, 1) and value:
            fields[side].setdefault(key, value)
    orig, reply = fields
    return CtEntry(
        proto=int(words[1]),
        orig=Tuple(orig["src"], orig["dst"], int(orig.get("sport", 0)), int(orig.get("dport", 0))),
        reply=Tuple(reply["src"], reply["dst"], int(reply.get("sport", 0)), int(reply.get("dport", 0))),
        orig_packets=int(orig.get("packets", -1)),
        orig_bytes=int(orig.get("bytes", -1)),
        reply_packets=int(reply.get("packets", -1)),
        reply_bytes=int(reply.get("bytes", -1)),
        line=line,
    )


def entry_for(lab: Lab, node: str, proto: int, client: tuple[str, int]) -> CtEntry:
    """The one entry of `node` whose orig source is `client` (ip, port)."""
    matches = [
        e for e in conntrack_entries(lab, node) if e.proto == proto and (e.orig.src, e.orig.sport) == client
    ]
    assert len(matches) == 1, f"expected one {proto} entry from {client} on {node}, got {matches}"
    return matches[0]
