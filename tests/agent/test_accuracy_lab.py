"""The agent's deltas, summed per flow, equal the nftables ground truth to the byte (kernel, through the lab).

An AgentDaemon reads node-1 of the two-node lab while the lab's generators make traffic. For each flow the
sum of the agent's orig/reply deltas over all batches must equal what the node's nft truth counters saw
for the same flow (IP-level bytes and packets), and no batch may carry one flow twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable

import pytest

from kubenetmon.agent.daemon import AgentDaemon
from kubenetmon.agent.settings import AgentSettings
from kubenetmon.agent.sinks import MemorySink
from kubenetmon.lab import Lab, Topology, traffic
from kubenetmon.lab.traffic import FlowResult
from kubenetmon.records import FlowRecord

pytestmark = [pytest.mark.kernel, pytest.mark.slow]
NODE = "node-1"
FlowKey = tuple[int, str, int, str, int]


@pytest.fixture
def lab():
    with Lab(Topology.two_nodes()) as made:
        yield made


@contextlib.asynccontextmanager
async def agent_on(lab: Lab, interval: float) -> AsyncIterator[tuple[AgentDaemon, MemorySink]]:
    """An agent on NODE from before the traffic until after it (its last partial interval included)."""
    sink = MemorySink()
    daemon = AgentDaemon(AgentSettings(node_name=NODE, interval=interval, netns=lab.netns(NODE)), sink)
    task = asyncio.create_task(daemon.run())
    while daemon.tracker.baselining:  # noqa: ASYNC110 - the daemon exposes no event for this
        await asyncio.sleep(0.01)
    try:
        yield daemon, sink
    finally:
        daemon.request_stop()
        await task


def key_of(record: FlowRecord) -> FlowKey:
    return record.proto, record.orig_src, record.orig_sport, record.reply_src, record.reply_sport


def flow_key(result: FlowResult) -> FlowKey:
    return result.proto, result.client[0], result.client[1], result.server[0], result.server[1]


def metered(sink: MemorySink, results: list[FlowResult]) -> dict[FlowKey, tuple[int, int, int, int]]:
    """Per flow: (orig packets, orig bytes, reply packets, reply bytes) summed over every batch.

    A batch holds one record per conntrack entry; the same 5-tuple may only appear again when the client
    really reused its port for another connection (a new entry, a new id)."""
    uses = Counter(flow_key(result) for result in results)
    totals: dict[FlowKey, Counter[str]] = {}
    for batch in sink.batches:
        for key, seen in Counter(key_of(record) for record in batch.records).items():
            assert seen <= max(uses[key], 1), f"batch {batch.seq} carries {key} {seen} times"
        for record in batch.records:
            counts = totals.setdefault(key_of(record), Counter())
            counts.update(
                op=record.orig_packets, ob=record.orig_bytes, rp=record.reply_packets, rb=record.reply_bytes
            )
    return {key: (c["op"], c["ob"], c["rp"], c["rb"]) for key, c in totals.items()}


def truth_of(lab: Lab, results: Iterable[FlowResult]) -> dict[FlowKey, tuple[int, int, int, int]]:
    reading = lab.ground_truth([NODE], settle=0.2)
    expected = {}
    for result in results:
        flow = reading.flow(NODE, result.proto, result.client, result.server)
        expected[flow_key(result)] = (
            flow.orig_packets,
            flow.orig_bytes,
            flow.reply_packets,
            flow.reply_bytes,
        )
    return expected


def assert_exact(lab: Lab, sink: MemorySink, results: list[FlowResult], expected=None) -> None:
    truth = expected if expected is not None else truth_of(lab, results)
    assert all(counts[1] for counts in truth.values()), "the truth counters saw no traffic"
    got = metered(sink, results)
    assert {key: got.get(key) for key in truth} == truth


async def test_bulk_tcp_both_directions(lab: Lab) -> None:
    async with agent_on(lab, interval=0.5) as (_, sink):
        result = await asyncio.to_thread(
            traffic.tcp_transfer, lab, "default/p1a", "default/p2a", up=8_000_000, down=3_000_000
        )
        truth = truth_of(lab, [result])
    assert_exact(lab, sink, [result], truth)


async def test_hundreds_of_short_connections_fin_and_rst(lab: Lab) -> None:
    async with agent_on(lab, interval=1.0) as (_, sink):
        fin = await asyncio.to_thread(
            traffic.tcp_connections, lab, "default/p1a", "default/p2b", count=120, up=3000, down=500
        )
        rst = await asyncio.to_thread(
            traffic.tcp_connections,
            lab,
            "default/p1b",
            "default/p2a",
            count=100,
            up=2000,
            down=700,
            close="rst",
        )
        truth = truth_of(lab, fin + rst)
    assert len(fin + rst) == 220  # a reused client port makes two connections one truth key: both summed
    assert_exact(lab, sink, fin + rst, truth)


async def test_udp_and_ipv6(lab: Lab) -> None:
    async with agent_on(lab, interval=0.5) as (_, sink):
        flows = [
            await asyncio.to_thread(
                traffic.udp_exchange, lab, "default/p1a", "default/p2a", count=40, size=700, reply_size=300
            ),
            await asyncio.to_thread(
                traffic.udp_exchange, lab, "default/p1a", "default/p2b", count=25, size=1200, family=6
            ),
            await asyncio.to_thread(
                traffic.tcp_transfer, lab, "default/p1b", "default/p2a", up=2_000_000, down=100_000, family=6
            ),
        ]
        truth = truth_of(lab, flows)
    assert truth[flow_key(flows[0])][1] == 40 * 728  # UDP over IPv4 is exact: payload + 28 per datagram
    assert truth[flow_key(flows[1])][1] == 25 * 1248
    assert_exact(lab, sink, flows, truth)


async def test_clusterip_flow_is_reported_with_the_backend_in_the_reply_tuple(lab: Lab) -> None:
    web = lab.topology.service("default/web")
    async with agent_on(lab, interval=0.5) as (_, sink):
        result = await asyncio.to_thread(
            traffic.tcp_transfer, lab, "default/p1a", web, up=500_000, down=20_000
        )
        truth = truth_of(lab, [result])
    assert_exact(lab, sink, [result], truth)
    (record,) = {
        (r.orig_dst, r.orig_dport, r.reply_src, r.reply_sport)
        for b in sink.batches
        for r in b.records
        if key_of(r) == flow_key(result)
    }
    assert record == (web.vip(4), web.port, lab.topology.pod("default/p2a").ipv4, web.target_port)


async def test_a_flow_spanning_many_intervals(lab: Lab) -> None:
    async with agent_on(lab, interval=0.5) as (_, sink):
        flow = traffic.start_tcp_bursts(
            lab, "default/p1a", "default/p2a", bursts=8, burst_bytes=200_000, interval=0.4
        )
        result = await asyncio.to_thread(flow.wait)
        truth = truth_of(lab, [result])
    batches_with_it = [b.seq for b in sink.batches if any(key_of(r) == flow_key(result) for r in b.records)]
    assert len(batches_with_it) >= 4
    assert_exact(lab, sink, [result], truth)


async def test_flows_destroyed_before_the_next_dump_are_counted_by_their_destroy(lab: Lab) -> None:
    lab.set_conntrack_timeouts([NODE], tcp_timeout_time_wait=1, tcp_timeout_close=1, udp_timeout=1)
    async with agent_on(lab, interval=3600) as (daemon, sink):  # no dump between baseline and shutdown
        flows = await asyncio.to_thread(
            traffic.tcp_connections, lab, "default/p1a", "default/p2a", count=30, up=4000, down=1000
        )
        flows += await asyncio.to_thread(
            traffic.tcp_connections,
            lab,
            "default/p1b",
            "default/p2b",
            count=20,
            up=1000,
            down=100,
            close="rst",
        )
        flows.append(
            await asyncio.to_thread(
                traffic.udp_exchange, lab, "default/p1a", "default/p2b", count=10, size=500, reply_size=50
            )
        )
        truth = truth_of(lab, flows)
        await wait_until_destroyed(lab, daemon, len(flows))
        assert daemon.tracker.stats.dumps == 1
    assert_exact(lab, sink, flows, truth)


async def test_a_port_reused_for_identical_connections_counts_every_connection(lab: Lab) -> None:
    # RST-closed connections leave no TIME_WAIT, so the same 5-tuple comes back at once; the kernel may
    # then give the new entry the freed one's memory and so the same conntrack id, and identical traffic
    # gives it the same final counters: only its start timestamp tells it from a repeated DESTROY.
    lab.set_conntrack_timeouts([NODE], tcp_timeout_close=1)
    async with agent_on(lab, interval=3600) as (daemon, sink):
        flows = await asyncio.to_thread(
            traffic.tcp_connections,
            lab,
            "default/p1a",
            "default/p2a",
            count=8,
            up=1500,
            down=300,
            close="rst",
            client_port=41_000,
        )
        truth = truth_of(lab, flows)
        await wait_until_destroyed(lab, daemon, len(flows))
    assert {flow.client for flow in flows} == {("198.18.1.10", 41_000)}
    assert_exact(lab, sink, flows, truth)


async def wait_until_destroyed(lab: Lab, daemon: AgentDaemon, count: int, budget: float = 150.0) -> None:
    """Until the agent has applied `count` DESTROY events; past half the budget, delete the entries."""
    deadline = time.monotonic() + budget
    deleted = False
    while daemon.tracker.stats.destroys_seen < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{daemon.tracker.stats.destroys_seen} of {count} DESTROY events seen")
        if not deleted and time.monotonic() > deadline - budget / 2:
            lab.run(NODE, ["conntrack", "-D", "-s", "198.18.1.0/24"], check=False)
            deleted = True
        await asyncio.sleep(0.5)
