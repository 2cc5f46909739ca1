"""AgentDaemon and `kubenetmon agent` against the real kernel, in a throwaway namespace pair."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kubenetmon.agent.daemon import AgentDaemon
from kubenetmon.agent.settings import AgentSettings
from kubenetmon.agent.sinks import MemorySink
from kubenetmon.conntrack import sysctl
from kubenetmon.records import LossReason
from tests.conntrack.kernel import PEER_V4, PEER_V6, Pair, node_and_peer

pytestmark = pytest.mark.kernel


@pytest.fixture
def pair():
    with node_and_peer() as made:
        yield made


def orig_bytes_by_sport(records) -> Counter[int]:
    totals: Counter[int] = Counter()
    for record in records:
        totals[record.orig_sport] += record.orig_bytes
    return totals


async def test_daemon_counts_new_traffic_exactly_and_baselines_old_flows(pair: Pair) -> None:
    pair.send_udp(socket.AF_INET, PEER_V4, 50000, 4, 100)  # before start: history, not traffic
    sink = MemorySink()
    daemon = AgentDaemon(AgentSettings(node_name="n1", interval=0.3, netns=pair.node), sink)
    task = asyncio.create_task(daemon.run())
    await asyncio.sleep(0.5)
    pair.send_udp(socket.AF_INET, PEER_V4, 50000, 3, 100)
    pair.send_udp(socket.AF_INET6, PEER_V6, 50001, 5, 1000)
    await asyncio.sleep(0.7)
    pair.send_udp(socket.AF_INET6, PEER_V6, 50001, 2, 1000)
    await asyncio.sleep(0.4)
    daemon.request_stop()
    await task
    records = [r for b in sink.batches for r in b.records]
    assert orig_bytes_by_sport(records) == {50000: 3 * 128, 50001: 7 * 1048}
    baseline = [
        loss for b in sink.batches for loss in b.losses if loss.reason is LossReason.BASELINE_AT_START
    ]
    assert [(loss.count, loss.bytes) for loss in baseline] == [(1, 4 * 128)]
    assert [b.seq for b in sink.batches] == list(range(len(sink.batches)))
    assert sink.closed


async def test_daemon_turns_on_accounting_and_events_when_allowed(pair: Pair) -> None:
    pair.sysctl("nf_conntrack_acct", 0)
    pair.sysctl("nf_conntrack_events", 2)
    daemon = AgentDaemon(AgentSettings(node_name="n1", interval=0.2, netns=pair.node), MemorySink())
    task = asyncio.create_task(daemon.run())
    await asyncio.sleep(0.3)
    daemon.request_stop()
    await task
    assert sysctl.read("nf_conntrack_acct", pair.node) == 1
    assert sysctl.read("nf_conntrack_events", pair.node) == 1


async def test_a_restart_with_a_state_dir_continues_exactly(pair: Pair, tmp_path: Path) -> None:
    pair.send_udp(socket.AF_INET, PEER_V4, 50010, 2, 100)
    first = MemorySink()
    settings = AgentSettings(node_name="n1", interval=0.3, netns=pair.node, state_dir=tmp_path)
    daemon = AgentDaemon(settings, first)
    task = asyncio.create_task(daemon.run())
    await asyncio.sleep(0.4)
    daemon.request_stop()
    await task
    pair.send_udp(socket.AF_INET, PEER_V4, 50010, 3, 100)  # while no agent runs
    second = MemorySink()
    restarted = AgentDaemon(settings, second)
    task = asyncio.create_task(restarted.run())
    await asyncio.sleep(0.4)
    restarted.request_stop()
    await task
    assert restarted.epoch == daemon.epoch
    assert second.batches[0].seq == first.batches[-1].seq + 1
    assert orig_bytes_by_sport(r for b in second.batches for r in b.records) == {50010: 3 * 128}


def test_cli_writes_jsonl_and_flushes_the_last_interval_on_sigterm(pair: Pair) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["src", *sys.path])}
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubenetmon",
            "agent",
            "--netns",
            pair.node,
            "--interval",
            "30",
            "--node-name",
            "cli-node",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_for_start(agent)
        pair.send_udp(socket.AF_INET, PEER_V4, 50020, 6, 300)
        agent.send_signal(signal.SIGTERM)
        out, err = agent.communicate(timeout=30)
    finally:
        agent.kill()
    assert agent.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(r["node"], r["proto"], r["orig_sport"], r["orig_bytes"]) for r in lines] == [
        ("cli-node", "udp", 50020, 6 * 328)
    ]


def wait_for_start(agent: subprocess.Popen[str], timeout: float = 20.0) -> None:
    assert agent.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = agent.stderr.readline()
        if "agent started" in line:
            return
        if not line and agent.poll() is not None:
            break
    raise AssertionError("agent did not start")
