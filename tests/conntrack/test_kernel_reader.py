"""TableReader and DestroyListener against the real kernel, in a throwaway namespace pair."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from kubenetmon.conntrack import netlink, netns, parse
from kubenetmon.conntrack.dump import TableReader
from kubenetmon.conntrack.events import DestroyListener
from tests.conntrack.kernel import NODE_V4, NODE_V6, PEER_V4, PEER_V6, Pair, node_and_peer, sh

pytestmark = pytest.mark.kernel


@pytest.fixture
def pair():
    with node_and_peer() as made:
        yield made


def reader(pair: Pair) -> TableReader:
    return TableReader(netns.run_in(pair.node, netlink.open_socket))


def entry_for(entries: list[parse.ConntrackEntry], sport: int) -> parse.ConntrackEntry:
    (found,) = [e for e in entries if e.orig.sport == sport]
    return found


def test_dump_reads_udp_counters_exactly_for_both_families(pair: Pair) -> None:
    pair.send_udp(socket.AF_INET, PEER_V4, 41000, 10, 100)
    pair.send_udp(socket.AF_INET6, PEER_V6, 41001, 7, 1000)
    with reader(pair) as table:
        entries = list(table.entries())
    v4, v6 = entry_for(entries, 41000), entry_for(entries, 41001)
    assert (v4.orig.family, v4.orig.proto, v4.orig.src, v4.orig.dst) == (4, 17, NODE_V4, PEER_V4)
    assert (v4.orig_packets, v4.orig_bytes, v4.reply_packets, v4.reply_bytes) == (10, 10 * 128, 0, 0)
    assert (v6.orig.family, v6.orig.src, v6.reply.src) == (6, NODE_V6, PEER_V6)
    assert (v6.orig_packets, v6.orig_bytes) == (7, 7 * 1048)


def test_dump_reads_tcp_in_both_directions_with_reply_tuple(pair: Pair) -> None:
    pair.tcp_exchange(up=5000, down=3000)
    with reader(pair) as table:
        (tcp,) = [e for e in table.entries() if e.orig.proto == 6]
    assert (tcp.orig.dport, tcp.reply.sport, tcp.reply.dst) == (8080, 8080, NODE_V4)
    assert tcp.orig_bytes > 5000 and tcp.reply_bytes > 3000
    assert tcp.id and tcp.status & 0x2  # IPS_SEEN_REPLY


def test_other_protocols_keep_their_number_and_zone_and_mark_are_read(pair: Pair) -> None:
    pair.insert(f"-p 253 -s {NODE_V4} -d {PEER_V4} -t 100 --zone 7 --mark 5")
    pair.insert(f"-p icmp -s {NODE_V4} -d {PEER_V4} --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 100")
    with reader(pair) as table:
        entries = {e.orig.proto: e for e in table.entries()}
    assert (entries[253].zone, entries[253].mark, entries[253].orig.sport) == (7, 5, 0)
    assert entries[1].orig.dst == PEER_V4 and entries[1].has_counters


def test_scan_keys_are_stable_across_dumps_and_distinct_per_flow(pair: Pair) -> None:
    for sport in range(42000, 42300):
        pair.send_udp(socket.AF_INET, PEER_V4, sport, 1, 10)
    with reader(pair) as table:
        first = {key: parse.counters(raw) for key, raw, _ in table.sightings()}
        second = {key: parse.counters(raw) for key, raw, _ in table.sightings()}
    assert len(first) == 300  # several netlink datagrams: keys and counters survive the framing
    assert first == second
    assert set(first.values()) == {(1, 38, 0, 0)}


def test_destroy_event_carries_final_counters_under_the_dump_key(pair: Pair) -> None:
    with DestroyListener(netns.run_in(pair.node, netlink.open_socket)) as listener:
        pair.send_udp(socket.AF_INET, PEER_V4, 43000, 5, 200)
        with reader(pair) as table:
            (dumped,) = [(k, r) for k, r, _ in table.sightings()]
        sh("conntrack", "-D", "-p", "udp", "--sport", "43000", namespace=pair.node)
        events = drain_until(listener, 1)
    assert [(key, parse.counters(raw)) for key, raw in events] == [(dumped[0], (5, 5 * 228, 0, 0))]
    assert listener.overflows == 0


def test_an_overrun_event_socket_is_counted_not_ignored(pair: Pair) -> None:
    lines = "".join(
        f"-I -p udp -s {NODE_V4} -d {PEER_V4} --sport {port} --dport 53 -t 300\n" for port in range(1, 3001)
    )
    subprocess.run(
        ["ip", "netns", "exec", pair.node, "conntrack", "-R", "/dev/stdin"],
        input=lines,
        text=True,
        capture_output=True,
        check=True,
    )
    with DestroyListener(netns.run_in(pair.node, netlink.open_socket), receive_buffer=4096) as listener:
        sh("conntrack", "-D", "-p", "udp", namespace=pair.node)
        time.sleep(0.2)
        list(listener.drain())
    assert listener.overflows >= 1


def drain_until(listener: DestroyListener, count: int, timeout: float = 5.0) -> list[tuple[bytes, bytes]]:
    found: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        found += [(key, raw) for key, raw, _ in listener.drain()]
        time.sleep(0.01)
    return found


def test_a_dump_abandoned_half_way_does_not_break_the_next_one(pair: Pair) -> None:
    for sport in range(44000, 44400):
        pair.send_udp(socket.AF_INET, PEER_V4, sport, 1, 10)
    with reader(pair) as table:
        first = table.sightings()
        next(first)
        first.close()
        assert sum(1 for _ in table.sightings()) == 400
