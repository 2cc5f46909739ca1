"""ctnetlink conntrack messages -> identity keys, raw counters and, on demand, full entries.

Two speeds on purpose. `scan` runs for every entry of every dump: it walks only the top-level attributes
and returns two byte strings, the flow's identity key and its raw counter attributes, so an idle flow
costs one bytes comparison and no decoding. `decode` turns one message into a `ConntrackEntry` with
formatted addresses; the agent calls it only for flows whose counters moved.

Bad input never raises: a message whose attributes overrun it, or whose required parts are missing or
mis-sized, is skipped and counted in `ParseStats`; unknown attribute types are skipped and counted too.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import NamedTuple

from kubenetmon.conntrack.netlink import ATTRS_OFFSET

NLA_TYPE_MASK = 0x3FFF
CTA_TUPLE_ORIG = 1
CTA_TUPLE_REPLY = 2
CTA_STATUS = 3
CTA_MARK = 8
CTA_COUNTERS_ORIG = 9
CTA_COUNTERS_REPLY = 10
CTA_ID = 12
CTA_ZONE = 18
CTA_TIMESTAMP = 20
CTA_TIMESTAMP_START = 1
# Every top-level type a 6.x kernel sends (CTA_UNSPEC .. CTA_SYNPROXY); others are counted as unknown.
CTA_MAX_KNOWN = 26

CTA_TUPLE_IP = 1
CTA_TUPLE_PROTO = 2
CTA_TUPLE_ZONE = 3
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_COUNTERS_PACKETS, CTA_COUNTERS_BYTES = 1, 2
# CTA_TIMESTAMP_START as the kernel puts it first in the CTA_TIMESTAMP nest (8-byte value, no padding).
_START_HEADER = struct.pack("=HH", 12, CTA_TIMESTAMP_START)

_NLA = struct.Struct("=HH")
_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")
# Both counter nests as the kernel lays them out on 64-bit hosts: nest{packets, bytes} x 2, no padding.
_COUNTERS_FAST = struct.Struct(">8xQ4xQ8xQ4xQ")
_COUNTERS_FAST_HEADERS = (
    _NLA.pack(12, CTA_COUNTERS_PACKETS),
    _NLA.pack(12, CTA_COUNTERS_BYTES),
)
NO_COUNTERS = b""


def _tuple_layout(family: int) -> tuple[struct.Struct, struct.Struct, frozenset[tuple[int, ...]], int]:
    """(header struct, value struct, accepted headers, family) of the tuple layout the kernel uses for
    port-carrying protocols: {IP {src, dst}, PROTO {num, sport, dport}}, nests flagged or not."""
    size = 4 if family == 4 else 16
    src_kind, dst_kind = (CTA_IP_V4_SRC, CTA_IP_V4_DST) if family == 4 else (CTA_IP_V6_SRC, CTA_IP_V6_DST)
    headers = struct.Struct(f"=HHHH{size}xHH{size}xHHHH4xHH4xHH4x")
    values = struct.Struct(f">8x{size}s4x{size}s8xB3x4xH2x4xH2x")
    accepted = frozenset(
        (
            4 + 2 * (4 + size),
            CTA_TUPLE_IP | flag,
            4 + size,
            src_kind,
            4 + size,
            dst_kind,
            28,
            CTA_TUPLE_PROTO | flag,
            5,
            CTA_PROTO_NUM,
            6,
            CTA_PROTO_SRC_PORT,
            6,
            CTA_PROTO_DST_PORT,
        )
        for flag in (0, 0x8000)
    )
    return headers, values, accepted, family


# Keyed by the tuple payload's length (48 for IPv4, 72 for IPv6): one unpack checks every header, one reads
# every value. Anything else (ICMP, zones inside the tuple, another layout) takes the general walk.
_TUPLE_LAYOUTS = {layout[0].size: layout for layout in (_tuple_layout(4), _tuple_layout(6))}
# The key drops the three attribute headers in front of the source address (tuple nest, IP nest, source
# attribute): they are the same for every flow of a family, and the rest still tells families apart
# (destination attribute type, lengths). 16 bytes less per key keeps a tracked IPv4 flow in a smaller
# allocator size class.
_KEY_SKIP = 12
ZERO_COUNTERS = (0, 0, 0, 0)


@dataclass(slots=True)
class ParseStats:
    """What the parser had to skip; the agent turns these into metrics and loss reports."""

    malformed_messages: int = 0
    """Messages skipped because their attributes overran them or required parts were missing or bad."""
    unknown_attributes: int = 0
    """Top-level attributes of a type this parser does not know (skipped, the entry is still used)."""
    entries_without_counters: int = 0
    """Entries created while nf_conntrack_acct was 0: the kernel never counts their bytes."""


class FlowTuple(NamedTuple):
    """One direction of a conntrack entry: addresses as text, ports 0 for port-less protocols.

    NamedTuples (here and in ConntrackEntry) because every flow whose counters moved is decoded into one,
    and a frozen dataclass costs several times more to build."""

    family: int
    """4 or 6."""
    proto: int
    src: str
    dst: str
    sport: int
    dport: int


class ConntrackEntry(NamedTuple):
    """One conntrack entry as the kernel reported it (a dump row or a DESTROY event)."""

    orig: FlowTuple
    reply: FlowTuple
    id: int
    status: int
    zone: int
    mark: int
    orig_packets: int
    orig_bytes: int
    reply_packets: int
    reply_bytes: int
    has_counters: bool
    """False when the entry carries no CTA_COUNTERS (acct was off when it was created)."""


class MalformedMessage(ValueError):
    """A message that cannot be read; `scan`/`decode` callers count it and move on."""


def scan(buf: memoryview, off: int, end: int, stats: ParseStats) -> tuple[bytes, bytes] | None:
    """(identity key, raw counters) of the conntrack message at buf[off:end], or None if malformed.

    The key is the raw CTA_TUPLE_ORIG attribute from the source address on, then which entry of that
    tuple it is, then the CTA_ZONE value: the same flow always yields the same bytes, another flow other
    bytes. "Which entry" is the low 32 bits of CTA_TIMESTAMP_START (nanoseconds) when the entry has a
    start time (nf_conntrack_timestamp=1), else the CTA_ID. The kernel derives ids from an entry's
    address, so a successor on the same tuple allocated where the old entry was gets the same id; its
    start time differs. Four bytes either way keep an IPv4 key in pymalloc's 80-byte size class.
    The counters are the raw CTA_COUNTERS_ORIG and _REPLY attributes (b"" when the entry has none);
    `counters` decodes them.
    """
    unpack = _NLA.unpack_from
    a = off + ATTRS_OFFSET
    orig0 = orig1 = ctr0 = ctr1 = rep0 = rep1 = id0 = zone0 = ts0 = ts1 = 0
    while a + 4 <= end:
        length, kind = unpack(buf, a)
        if length < 4 or a + length > end:
            stats.malformed_messages += 1
            return None
        kind &= NLA_TYPE_MASK
        if kind == CTA_TUPLE_ORIG:
            orig0, orig1 = a, a + length
        elif kind == CTA_COUNTERS_ORIG:
            ctr0, ctr1 = a, a + length
        elif kind == CTA_COUNTERS_REPLY:
            rep0, rep1 = a, a + length
        elif kind == CTA_ID:
            id0 = a
        elif kind == CTA_ZONE:
            zone0 = a
        elif kind == CTA_TIMESTAMP:
            ts0, ts1 = a, a + length
        elif kind > CTA_MAX_KNOWN:
            stats.unknown_attributes += 1
        a += (length + 3) & ~3
    if not orig0 or not id0 or orig1 - orig0 < _KEY_SKIP:
        stats.malformed_messages += 1
        return None
    instance: bytes | memoryview
    if ts0 and ts1 - ts0 >= 16 and buf[ts0 + 4 : ts0 + 8] == _START_HEADER:
        instance = buf[ts0 + 12 : ts0 + 16]
    elif ts0:
        instance = _timestamp_start(buf, ts0 + 4, ts1)[4:] or buf[id0 + 4 : id0 + 8]
    else:
        instance = buf[id0 + 4 : id0 + 8]
    zone = buf[zone0 + 4 : zone0 + 8] if zone0 else b""
    key = b"".join((buf[orig0 + _KEY_SKIP : orig1], instance, zone))
    if not ctr0 or not rep0:
        stats.entries_without_counters += 1
        return key, NO_COUNTERS
    if ctr1 == rep0:
        return key, buf[ctr0:rep1].tobytes()
    return key, b"".join((buf[ctr0:ctr1], buf[rep0:rep1]))


def _timestamp_start(buf: memoryview, a: int, end: int) -> bytes:
    """The raw CTA_TIMESTAMP_START value in the nest body buf[a:end] laid out otherwise (e.g. after a
    padding attribute); b"" when it has none or is malformed (the key then goes without it)."""
    try:
        for kind, start, stop in _attributes(buf, a, end):
            if kind == CTA_TIMESTAMP_START and stop - start == 8:
                return buf[start:stop].tobytes()
    except MalformedMessage:
        pass
    return b""


def counters(raw: bytes) -> tuple[int, int, int, int]:
    """(orig packets, orig bytes, reply packets, reply bytes) from the raw counters `scan` returned."""
    if not raw:
        return ZERO_COUNTERS
    if (
        len(raw) == 56
        and raw[4:8] == _COUNTERS_FAST_HEADERS[0]
        and raw[16:20] == _COUNTERS_FAST_HEADERS[1]
        and raw[32:36] == _COUNTERS_FAST_HEADERS[0]
        and raw[44:48] == _COUNTERS_FAST_HEADERS[1]
    ):
        op, ob, rp, rb = _COUNTERS_FAST.unpack(raw)
        return op, ob, rp, rb
    view = memoryview(raw)
    result = [0, 0, 0, 0]
    a = 0
    while a + 4 <= len(raw):
        length, kind = _NLA.unpack_from(view, a)
        if length < 4 or a + length > len(raw):
            raise MalformedMessage("counter attribute overruns its message")
        base = 0 if kind & NLA_TYPE_MASK == CTA_COUNTERS_ORIG else 2
        packets, octets = _counter_pair(view, a + 4, a + length)
        result[base], result[base + 1] = packets, octets
        a += (length + 3) & ~3
    return result[0], result[1], result[2], result[3]


def _counter_pair(buf: memoryview, a: int, end: int) -> tuple[int, int]:
    packets = octets = 0
    for kind, start, stop in _attributes(buf, a, end):
        if kind == CTA_COUNTERS_PACKETS:
            packets = _u64(buf, start, stop)
        elif kind == CTA_COUNTERS_BYTES:
            octets = _u64(buf, start, stop)
    return packets, octets


def decode(buf: memoryview, off: int, end: int) -> ConntrackEntry:
    """The full entry of the conntrack message at buf[off:end]; raises MalformedMessage if it cannot."""
    orig = reply = None
    cid = status = zone = mark = 0
    counter_parts: list[memoryview] = []
    unpack = _NLA.unpack_from
    a = off + ATTRS_OFFSET
    while a + 4 <= end:
        length, kind = unpack(buf, a)
        stop = a + length
        if length < 4 or stop > end:
            raise MalformedMessage(f"attribute at offset {a} claims {length} bytes of {end - a}")
        kind &= NLA_TYPE_MASK
        if kind == CTA_TUPLE_ORIG:
            orig = _tuple(buf, a + 4, stop)
        elif kind == CTA_TUPLE_REPLY:
            reply = _tuple(buf, a + 4, stop)
        elif kind == CTA_STATUS:
            status = _u32(buf, a + 4, stop)
        elif kind == CTA_MARK:
            mark = _u32(buf, a + 4, stop)
        elif kind == CTA_ID:
            cid = _u32(buf, a + 4, stop)
        elif kind == CTA_ZONE:
            zone = _u16(buf, a + 4, stop)
        elif kind in (CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY):
            counter_parts.append(buf[a:stop])
        a += (length + 3) & ~3
    if orig is None or reply is None:
        raise MalformedMessage("conntrack message lacks its original or reply tuple")
    counts = counters(b"".join(counter_parts))
    return ConntrackEntry(orig, reply, cid, status, zone, mark, *counts, bool(counter_parts))


def _attributes(buf: memoryview, a: int, end: int) -> list[tuple[int, int, int]]:
    """(type, payload start, payload end) of each attribute in buf[a:end]; raises if one overruns."""
    found = []
    while a + 4 <= end:
        length, kind = _NLA.unpack_from(buf, a)
        if length < 4 or a + length > end:
            raise MalformedMessage(f"attribute at offset {a} claims {length} bytes of {end - a}")
        found.append((kind & NLA_TYPE_MASK, a + 4, a + length))
        a += (length + 3) & ~3
    return found


def _tuple(buf: memoryview, a: int, end: int) -> FlowTuple:
    layout = _TUPLE_LAYOUTS.get(end - a)
    if layout is not None and layout[0].unpack_from(buf, a) in layout[2]:
        src, dst, proto, sport, dport = layout[1].unpack_from(buf, a)
        return FlowTuple(layout[3], proto, _ip_text(src), _ip_text(dst), sport, dport)
    return _tuple_any_layout(buf, a, end)


def _tuple_any_layout(buf: memoryview, a: int, end: int) -> FlowTuple:
    src = dst = b""
    proto = sport = dport = 0
    unpack = _NLA.unpack_from
    while a + 4 <= end:
        length, kind = unpack(buf, a)
        stop = a + length
        if length < 4 or stop > end:
            raise MalformedMessage(f"tuple attribute at offset {a} claims {length} bytes of {end - a}")
        kind &= NLA_TYPE_MASK
        inner = a + 4
        while kind in (CTA_TUPLE_IP, CTA_TUPLE_PROTO) and inner + 4 <= stop:
            size, what = unpack(buf, inner)
            if size < 4 or inner + size > stop:
                raise MalformedMessage(f"tuple member at offset {inner} claims {size} bytes")
            what &= NLA_TYPE_MASK
            if kind == CTA_TUPLE_IP:
                if what in (CTA_IP_V4_SRC, CTA_IP_V6_SRC):
                    src = bytes(buf[inner + 4 : inner + size])
                elif what in (CTA_IP_V4_DST, CTA_IP_V6_DST):
                    dst = bytes(buf[inner + 4 : inner + size])
            elif what == CTA_PROTO_NUM:
                proto = _u8(buf, inner + 4, inner + size)
            elif what == CTA_PROTO_SRC_PORT:
                sport = _u16(buf, inner + 4, inner + size)
            elif what == CTA_PROTO_DST_PORT:
                dport = _u16(buf, inner + 4, inner + size)
            inner += (size + 3) & ~3
        a += (length + 3) & ~3
    if len(src) not in (4, 16) or len(dst) != len(src):
        raise MalformedMessage(f"tuple addresses of {len(src)} and {len(dst)} bytes")
    family = 4 if len(src) == 4 else 6
    return FlowTuple(family, proto, _ip_text(src), _ip_text(dst), sport, dport)


def _ip_text(raw: bytes) -> str:
    """The address as `str(ipaddress.ip_address(...))` spells it, via the much faster inet_ntop."""
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    text = socket.inet_ntop(socket.AF_INET6, raw)
    # glibc writes IPv4-mapped/-compatible addresses dotted; Python 3.11's ipaddress writes them in hex.
    return text if "." not in text else str(ipaddress.IPv6Address(raw))


def _u8(buf: memoryview, start: int, stop: int) -> int:
    if stop - start < 1:
        raise MalformedMessage("u8 attribute is empty")
    return buf[start]


def _u16(buf: memoryview, start: int, stop: int) -> int:
    return _unsigned(_BE16, buf, start, stop)


def _u32(buf: memoryview, start: int, stop: int) -> int:
    return _unsigned(_BE32, buf, start, stop)


def _u64(buf: memoryview, start: int, stop: int) -> int:
    return _unsigned(_BE64, buf, start, stop)


def _unsigned(layout: struct.Struct, buf: memoryview, start: int, stop: int) -> int:
    if stop - start < layout.size:
        raise MalformedMessage(f"attribute of {stop - start} bytes where {layout.size} are needed")
    return int(layout.unpack_from(buf, start)[0])
