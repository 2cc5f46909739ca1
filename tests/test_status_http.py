"""The daemons' /metrics and health pages, over real HTTP on loopback."""

from __future__ import annotations

import socket

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from kubenetmon import status_http


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_metrics_of_every_registry_and_each_check_are_served() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    Counter("knm_test_first", "first registry", registry=first).inc(3)
    Counter("knm_test_second", "second registry", registry=second).inc(5)
    verdict = [(False, "store unreachable")]
    port = free_port()
    runner = await status_http.serve("127.0.0.1", port, {"/readyz": lambda: verdict[0]}, (first, second))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                text = await response.text()
            assert "knm_test_first_total 3.0" in text
            assert "knm_test_second_total 5.0" in text
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert (response.status, await response.text()) == (503, "store unreachable\n")
            verdict[0] = (True, "ready")
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert (response.status, await response.text()) == (200, "ready\n")
    finally:
        await runner.cleanup()
