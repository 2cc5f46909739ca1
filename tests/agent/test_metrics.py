"""The agent's health rule: intervals delivered on time."""

from __future__ import annotations

from kubenetmon.agent.metrics import recent


def test_health_needs_an_interval_within_three_intervals() -> None:
    assert recent(100.0, 5.0, now=lambda: 120.0)
    assert not recent(100.0, 5.0, now=lambda: 131.0)
    assert not recent(0.0, 5.0, now=lambda: 1.0)
