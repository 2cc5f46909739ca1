"""The agent's /metrics and /healthz endpoint, over real HTTP on loopback."""

from __future__ import annotations

import socket

import aiohttp

from kubenetmon.agent.metrics import AgentMetrics, recent, serve
from kubenetmon.records import LossReason, LossReport


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_metrics_and_health_are_served() -> None:
    metrics = AgentMetrics()
    metrics.count_losses([LossReport(LossReason.VANISHED_WITHOUT_DESTROY, 3)])
    healthy = [False]
    port = free_port()
    runner = await serve(metrics, "127.0.0.1", port, lambda: healthy[0])
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                text = await response.text()
            assert 'kubenetmon_agent_losses_total{reason="vanished_without_destroy"} 3.0' in text
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 503
            healthy[0] = True
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
    finally:
        await runner.cleanup()


def test_health_needs_an_interval_within_three_intervals() -> None:
    assert recent(100.0, 5.0, now=lambda: 120.0)
    assert not recent(100.0, 5.0, now=lambda: 131.0)
    assert not recent(0.0, 5.0, now=lambda: 1.0)
