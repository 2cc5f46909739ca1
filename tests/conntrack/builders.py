"""Build ctnetlink conntrack messages byte by byte, independently of the parser under test."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from kubenetmon.conntrack import parse
from kubenetmon.conntrack.dump import Sighting

CT_NEW = (1 << 8) | 0
CT_DELETE = (1 << 8) | 2
NESTED = 0x8000


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    body = struct.pack("=HH", 4 + len(payload), kind) + payload
    return body + b"\0" * (-len(body) % 4)


def nest(kind: int, *children: bytes) -> bytes:
    return attr(kind | NESTED, b"".join(children))


@dataclass(frozen=True)
class Tuple:
    src: str
    dst: str
    sport: int
    dport: int
    proto: int = 6

    def encode(self, kind: int) -> bytes:
        src, dst = ipaddress.ip_address(self.src), ipaddress.ip_address(self.dst)
        ip_kinds = (1, 2) if src.version == 4 else (3, 4)
        return nest(
            kind,
            nest(1, attr(ip_kinds[0], src.packed), attr(ip_kinds[1], dst.packed)),
            nest(
                2,
                attr(1, bytes([self.proto])),
                attr(2, struct.pack(">H", self.sport)),
                attr(3, struct.pack(">H", self.dport)),
            ),
        )

    def reversed(self) -> Tuple:
        return Tuple(self.dst, self.src, self.dport, self.sport, self.proto)


def counters(kind: int, packets: int, octets: int) -> bytes:
    return nest(kind, attr(1, struct.pack(">Q", packets)), attr(2, struct.pack(">Q", octets)))


def message(
    orig: Tuple,
    counts: tuple[int, int, int, int] | None = (0, 0, 0, 0),
    *,
    ct_id: int = 1,
    zone: int | None = None,
    reply: Tuple | None = None,
    status: int = 0x8,
    mark: int = 0,
    msg_type: int = CT_NEW,
    extra: bytes = b"",
) -> bytes:
    """A conntrack message laid out like the kernel's (orig, reply, zone, status, counters, mark, id)."""
    reply = reply or orig.reversed()
    attrs = [orig.encode(1), reply.encode(2)]
    if zone is not None:
        attrs.append(attr(18, struct.pack(">H", zone)))
    attrs.append(attr(3, struct.pack(">I", status)))
    if counts is not None:
        attrs += [counters(9, counts[0], counts[1]), counters(10, counts[2], counts[3])]
    attrs += [attr(8, struct.pack(">I", mark)), attr(12, struct.pack(">I", ct_id)), extra]
    body = struct.pack("=BBH", 2, 0, 0) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), msg_type, 0x2, 1, 0) + body


def sighting(raw_message: bytes) -> Sighting:
    """What the dump reader or the event listener yields for this message."""
    view = memoryview(raw_message)
    found = parse.scan(view, 0, len(raw_message), parse.ParseStats())
    assert found is not None
    return found[0], found[1], view
