"""The parser on captured kernel messages, on hand-made malformed ones, and on random bytes."""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubenetmon.conntrack import netlink, parse
from kubenetmon.conntrack.parse import ParseStats
from tests.conntrack.builders import CT_DELETE, Tuple, attr, message, nest

FIXTURES = Path(__file__).parent / "fixtures"
A = Tuple("198.18.1.10", "198.18.2.10", 40000, 80)


def framed(name: str) -> list[tuple[int, memoryview, int, int]]:
    data = (FIXTURES / name).read_bytes()
    view = memoryview(data)
    return [(kind, view, off, end) for kind, _, off, end in netlink.messages(view, len(data))]


def captured_entries() -> list[parse.ConntrackEntry]:
    return [
        parse.decode(v, off, end) for kind, v, off, end in framed("dump.bin") if kind == netlink.CT_NEW_TYPE
    ]


def test_captured_dump_decodes_to_what_conntrack_tool_listed() -> None:
    expected = json.loads((FIXTURES / "expected.json").read_text())
    got = [
        {
            "proto": e.orig.proto,
            "orig_src": e.orig.src,
            "orig_dst": e.orig.dst,
            "reply_src": e.reply.src,
            "reply_dst": e.reply.dst,
            "id": e.id,
            "zone": e.zone,
            "mark": e.mark,
            "counters": [e.orig_packets, e.orig_bytes, e.reply_packets, e.reply_bytes],
        }
        for e in captured_entries()
    ]
    assert sorted(got, key=lambda row: row["id"]) == sorted(expected, key=lambda row: row["id"])


def test_captured_dump_ends_with_done() -> None:
    assert framed("dump.bin")[-1][0] == netlink.NLMSG_DONE


def test_scan_counters_agree_with_full_decode_on_captured_messages() -> None:
    stats = ParseStats()
    for kind, view, off, end in framed("dump.bin") + framed("destroy.bin"):
        if kind in (netlink.CT_NEW_TYPE, netlink.CT_DELETE_TYPE):
            entry = parse.decode(view, off, end)
            found = parse.scan(view, off, end, stats)
            assert found is not None
            assert parse.counters(found[1]) == (
                entry.orig_packets,
                entry.orig_bytes,
                entry.reply_packets,
                entry.reply_bytes,
            )
    assert stats == ParseStats()


def test_captured_destroy_has_the_key_of_the_same_flow_in_the_dump() -> None:
    stats = ParseStats()
    dumped = {parse.scan(v, o, e, stats)[0] for k, v, o, e in framed("dump.bin") if k == netlink.CT_NEW_TYPE}
    ((kind, view, off, end),) = framed("destroy.bin")
    assert kind == netlink.CT_DELETE_TYPE
    key, raw = parse.scan(view, off, end, stats)
    assert key in dumped
    assert parse.counters(raw) == (3, 1644, 0, 0)


def test_keys_differ_by_id_by_zone_and_by_tuple() -> None:
    def key(raw: bytes) -> bytes:
        return parse.scan(memoryview(raw), 0, len(raw), ParseStats())[0]

    base = key(message(A, ct_id=1))
    assert key(message(A, ct_id=1)) == base
    others = [
        key(message(A, ct_id=2)),
        key(message(A, ct_id=1, zone=3)),
        key(message(Tuple(A.src, A.dst, A.sport, 81), ct_id=1)),
    ]
    assert len({base, *others}) == 4


def timestamp(*children: bytes) -> bytes:
    return nest(20, *children)


def start(ns: int) -> bytes:
    return attr(1, struct.pack(">Q", ns))


def test_the_start_time_separates_a_flow_from_its_successor_with_the_same_id() -> None:
    def key(raw: bytes) -> bytes:
        return parse.scan(memoryview(raw), 0, len(raw), ParseStats())[0]

    first = key(message(A, ct_id=1, extra=timestamp(start(1_764_000_000_123_456_789))))
    successor = key(message(A, ct_id=1, extra=timestamp(start(1_764_000_000_123_456_790))))
    assert first != successor
    assert len(first) == len(key(message(A, ct_id=1)))  # the start time takes the id's place, not more


def test_the_key_is_the_same_in_a_dump_and_in_the_destroy_event_that_adds_the_stop_time() -> None:
    def key(raw: bytes) -> bytes:
        return parse.scan(memoryview(raw), 0, len(raw), ParseStats())[0]

    dumped = key(message(A, ct_id=1, extra=timestamp(start(1_000))))
    destroyed = key(
        message(A, ct_id=1, msg_type=CT_DELETE, extra=timestamp(start(1_000), attr(2, b"\0" * 8)))
    )
    padded = key(message(A, ct_id=1, extra=timestamp(attr(3, b""), start(1_000))))  # CTA_TIMESTAMP_PAD first
    assert dumped == destroyed == padded


def test_a_malformed_timestamp_leaves_the_entry_readable_with_a_key_without_it() -> None:
    stats = ParseStats()
    raw = message(A, (1, 100, 0, 0), ct_id=1, extra=timestamp(b"\x40\x00\x01\x00"))  # claims 64 bytes
    found = parse.scan(memoryview(raw), 0, len(raw), stats)
    plain = message(A, (1, 100, 0, 0), ct_id=1)
    assert found is not None and found[0] == parse.scan(memoryview(plain), 0, len(plain), ParseStats())[0]
    assert parse.counters(found[1]) == (1, 100, 0, 0)
    assert stats.malformed_messages == 0


def test_unknown_attributes_are_skipped_and_counted() -> None:
    raw = message(A, (1, 100, 0, 0), extra=attr(99, b"\x01\x02\x03"))
    stats = ParseStats()
    found = parse.scan(memoryview(raw), 0, len(raw), stats)
    assert found is not None and parse.counters(found[1]) == (1, 100, 0, 0)
    assert stats.unknown_attributes == 1
    assert parse.decode(memoryview(raw), 0, len(raw)).orig_bytes == 100


def test_an_entry_without_counters_is_read_as_zero_and_counted() -> None:
    raw = message(A, None)
    stats = ParseStats()
    _, counters = parse.scan(memoryview(raw), 0, len(raw), stats)
    assert parse.counters(counters) == (0, 0, 0, 0)
    assert stats.entries_without_counters == 1
    assert not parse.decode(memoryview(raw), 0, len(raw)).has_counters


@pytest.mark.parametrize("missing", [2, 10, 30, 60])
def test_a_message_cut_inside_an_attribute_is_skipped_and_counted(missing: int) -> None:
    raw = message(A, (1, 100, 0, 0))
    cut = raw[: len(raw) - missing]
    stats = ParseStats()
    assert parse.scan(memoryview(cut), 0, len(cut), stats) is None
    assert stats.malformed_messages == 1
    with pytest.raises(parse.MalformedMessage):
        parse.decode(memoryview(cut), 0, len(cut))


def test_an_attribute_claiming_more_than_its_message_is_skipped_and_counted() -> None:
    raw = bytearray(message(A, (1, 100, 0, 0)))
    raw[20:22] = (4000).to_bytes(2, "little")  # CTA_TUPLE_ORIG claims 4000 bytes
    stats = ParseStats()
    assert parse.scan(memoryview(bytes(raw)), 0, len(raw), stats) is None
    assert stats.malformed_messages == 1


def test_a_message_without_an_original_tuple_is_malformed() -> None:
    raw = message(A, (1, 100, 0, 0))
    view = memoryview(raw)
    orig_length = int.from_bytes(raw[20:22], "little")
    stripped = raw[:20] + raw[20 + orig_length :]
    stats = ParseStats()
    assert parse.scan(memoryview(stripped), 0, len(stripped), stats) is None
    assert stats.malformed_messages == 1
    assert parse.scan(view, 0, len(raw), stats) is not None


def test_mis_sized_addresses_are_malformed() -> None:
    raw = bytearray(message(A))
    raw[28:30] = (7).to_bytes(2, "little")  # CTA_IP_V4_SRC claims 3 payload bytes
    with pytest.raises(parse.MalformedMessage):
        parse.decode(memoryview(bytes(raw)), 0, len(raw))


def test_framing_rejects_a_header_longer_than_the_datagram() -> None:
    raw = message(A)
    with pytest.raises(netlink.FramingError):
        list(netlink.messages(memoryview(raw), len(raw) - 8))


def test_destroy_messages_parse_like_dump_messages() -> None:
    raw = message(A, (2, 300, 1, 60), msg_type=CT_DELETE)
    assert parse.decode(memoryview(raw), 0, len(raw)).reply_bytes == 60


@given(st.binary(max_size=400), st.integers(min_value=0, max_value=400))
def test_random_bytes_never_crash_the_scanner_or_decoder(data: bytes, cut: int) -> None:
    stats = ParseStats()
    view = memoryview(data)
    end = min(cut, len(data))
    found = parse.scan(view, 0, end, stats)
    if found is not None:
        with contextlib.suppress(parse.MalformedMessage):
            parse.counters(found[1])
    with contextlib.suppress(parse.MalformedMessage):
        parse.decode(view, 0, end)


@given(st.integers(min_value=0, max_value=260), st.binary(min_size=1, max_size=8), st.integers(0, 259))
def test_corrupted_real_messages_are_skipped_or_read_never_crash(cut: int, noise: bytes, at: int) -> None:
    _, view, off, end = framed("dump.bin")[0]
    raw = bytearray(view[off:end])
    raw[at : at + len(noise)] = noise
    data = bytes(raw[:cut])
    stats = ParseStats()
    try:
        for _, _, o, e in netlink.messages(memoryview(data), len(data)):
            found = parse.scan(memoryview(data), o, e, stats)
            if found is not None:
                parse.counters(found[1])
            parse.decode(memoryview(data), o, e)
    except (netlink.FramingError, parse.MalformedMessage):
        pass
