"""Agent restarts: what they can lose, measured against the ground truth.

A graceful restart (SIGTERM, then a new start with the same --state-dir and --spool-dir) continues
from the saved counters, so every flow whose conntrack entry is still there at the restart is metered
exactly, including flows that began and even closed at TCP level while the agent was down. What it
loses is what the kernel no longer holds when it comes back:

* a flow whose entry was created and destroyed while the agent was down: all of its bytes (its
  DESTROY event went to no listener);
* a flow alive at the stop whose entry was destroyed before the restart: its bytes after the stop's
  final dump (e.g. the FIN exchange of a connection closed while the agent was down).

A killed agent (SIGKILL) saves nothing and starts from a fresh baseline: it loses, for every flow of its
node, the bytes between the last interval it spooled and the new baseline (flows that began in between
lose everything up to the baseline). Its spooled batches survive on disk and nothing is counted twice.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kubenetmon.demo.observed import NodeFlow, truth_bytes
from kubenetmon.demo.processes import Daemon
from kubenetmon.demo.system import MeteredLab
from kubenetmon.lab import Lab, traffic
from kubenetmon.lab.traffic import FlowResult
from tests.e2e.conftest import assert_exact, directions, excuse, loss_report, play

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

NODE = "node-a1"
FRONTEND, LOADER = "shop/frontend-6c8d9f7b4-x2k4p", "batch/loader"
EXPORTER, REMOTE_EXPORTER = "monitoring/node-exporter-7qk2m", "monitoring/node-exporter-w4c9s"
KIB = 1024


def evict_expired(lab: Lab, node: str, gone: list[FlowResult], timeout: float = 10.0) -> None:
    """Dump the node's table until `gone` are out of it and no expired entry is left: a ctnetlink dump
    destroys the expired entries it meets, so their DESTROY events happen now, while no agent listens."""
    deadline = time.monotonic() + timeout
    ports = [f"sport={result.client[1]} " for result in gone]
    while True:
        listing = [lab.run(node, ["conntrack", "-L", "-f", family]).stdout for family in ("ipv4", "ipv6")]
        listed = sum(len(text.splitlines()) for text in listing)
        still_there = any(port in text for port in ports for text in listing)
        if not still_there and int(lab.sysctl(node, "net.netfilter.nf_conntrack_count")) == listed:
            return
        assert time.monotonic() < deadline, f"expired conntrack entries linger in {node}"
        time.sleep(0.2)


def wait_for_intervals(agent: Daemon, count: int, after: float, timeout: float = 30.0) -> None:
    """Wait until the agent has spooled `count` more intervals since `after` (epoch seconds): the dump of
    the last one surely began after `after`."""
    deadline, seen = time.monotonic() + timeout, after
    for _ in range(count):
        while (last := agent.metric("kubenetmon_agent_last_successful_interval_timestamp_seconds")) <= seen:
            assert time.monotonic() < deadline, f"{agent.name} spooled no interval for {timeout} s"
            time.sleep(0.05)
        seen = last


def test_a_graceful_restart_loses_exactly_the_bytes_whose_conntrack_entries_are_gone(
    lab: Lab, tmp_path: Path
) -> None:
    lab.set_conntrack_timeouts(
        [NODE], tcp_timeout_close=1, tcp_timeout_time_wait=1, udp_timeout=1, udp_timeout_stream=1
    )
    with MeteredLab(lab, tmp_path) as system:
        system.start()
        lab.reset_ground_truth()
        agent = system.agents[NODE]
        across = traffic.start_tcp_bursts(
            lab, FRONTEND, "shop/cart-1", bursts=80, burst_bytes=8 * KIB, interval=0.1
        )
        closed_while_down = traffic.start_tcp_bursts(
            lab, LOADER, "s3", bursts=4, burst_bytes=32 * KIB, interval=0.05
        )
        before = traffic.tcp_connections(lab, FRONTEND, "shop/cart-0", count=3, up=20_000, down=2_000)
        time.sleep(1.5)

        assert agent.terminate() == 0
        at_stop = truth_bytes(lab.ground_truth([NODE]))
        closed = closed_while_down.wait()
        born_and_gone = [
            *traffic.tcp_connections(
                lab, FRONTEND, "shop/cart-0", count=3, up=40_000, down=4_000, close="rst"
            ),
            *traffic.tcp_connections(lab, LOADER, "internet", count=2, up=1_000, down=30_000, family=6),
            traffic.udp_exchange(lab, EXPORTER, REMOTE_EXPORTER, count=4, size=500),
        ]
        time.sleep(2.0)
        evict_expired(lab, NODE, born_and_gone)
        agent.start().wait_ready()

        after = traffic.tcp_connections(lab, LOADER, "s3", count=2, up=50_000, down=1_000)
        through = across.wait()
        truth = system.drain()

    final = truth_bytes(truth)
    excused: dict[NodeFlow, int] = excuse(NODE, born_and_gone, final)
    excused |= {(NODE, key): final[(NODE, key)] - at_stop.get((NODE, key), 0) for key in directions(closed)}
    verdict = system.verdict(truth, excused)
    loss_report("agent SIGTERM + restart (state and spool kept)", verdict)
    assert_exact(verdict)
    assert verdict.total().excused > 0
    assert all(
        verdict.flows[key].metered > 0 for result in (*before, *after, through) for key in directions(result)
    )


def test_a_killed_agent_loses_only_its_nodes_bytes_since_its_last_interval_and_duplicates_nothing(
    lab: Lab, tmp_path: Path
) -> None:
    node = "node-b1"
    with MeteredLab(lab, tmp_path) as system:
        system.start()
        agent, window = system.agents[node], {}

        def crash() -> None:
            time.sleep(3.0)
            window["before"] = truth_bytes(lab.ground_truth([node]))
            wait_for_intervals(agent, 2, after=time.time())
            agent.kill()
            time.sleep(1.5)
            agent.start().wait_ready()
            window["after"] = truth_bytes(lab.ground_truth([node]))

        _, truth = play(lab, system, duration=10, during=crash)
        verdict = system.verdict(truth)
    loss_report("agent kill -9 + restart (fresh baseline)", verdict)
    lossy = {flow: check for flow, check in verdict.flows.items() if check.lost}
    lost = sum(check.lost for check in lossy.values())
    print(f"   lost: {lost} bytes in {len(lossy)} flow directions, all counted at {node}")
    assert verdict.misattributed == []
    assert all(tally.duplicated == 0 for tally in (*verdict.classes.values(), *verdict.points.values()))
    assert {check.node for check in lossy.values()} <= {node}
    grown = {key: window["after"].get(key, 0) - window["before"].get(key, 0) for key in window["after"]}
    assert all(check.lost <= grown.get((node, flow), 0) for flow, check in lossy.items())
    assert lost > 0
    for other, tally in verdict.points.items():
        if other != node:
            assert (other, tally.lost, tally.duplicated) == (other, 0, 0)
