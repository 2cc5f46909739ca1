"""A fresh demo lab per test, traffic played in the background while a test injects a fault, and the
loss report each test prints (run with -s to see it)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kubenetmon.demo.accuracy import Verdict
from kubenetmon.demo.observed import FlowKey, NodeFlow
from kubenetmon.demo.scenario import TrafficRun, demo_mix
from kubenetmon.demo.summary import human_bytes
from kubenetmon.demo.system import MeteredLab
from kubenetmon.lab import GroundTruth, Lab, Topology
from kubenetmon.lab.traffic import FlowResult

TOLERANCE = 0.001
"""0.1 % of a pair's truth: the issue's accuracy bound."""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(Topology.demo(), state_dir=tmp_path / "lab-state") as built:
        yield built


def play(
    lab: Lab, system: MeteredLab, duration: float, during: Callable[[], None] = lambda: None
) -> tuple[list[FlowResult], GroundTruth]:
    """Run the demo mix for `duration` s while `during()` runs here, then drain: (flows, truth)."""
    lab.reset_ground_truth()
    run = TrafficRun(lab, demo_mix(lab.topology, duration), duration, lambda index, done: None)
    with ThreadPoolExecutor(1) as pool:
        playing = pool.submit(run.run)
        try:
            during()
        except BaseException:
            run.stop()
            raise
        flows = playing.result(timeout=20 * duration)
    return flows, system.drain()


def after(seconds: float, action: Callable[[], None]) -> Callable[[], None]:
    """`action` once `seconds` have passed (for `play`'s `during`)."""

    def delayed() -> None:
        threading.Event().wait(seconds)
        action()

    return delayed


def directions(result: FlowResult) -> list[FlowKey]:
    """Both byte directions of a flow, as the truth at the client's node keys them (pre-SNAT, post-DNAT)."""
    (client, cport), (server, sport) = result.client, result.server
    return [
        FlowKey(result.proto, client, cport, server, sport),
        FlowKey(result.proto, server, sport, client, cport),
    ]


def excuse(node: str, results: list[FlowResult], truth: dict[NodeFlow, int]) -> dict[NodeFlow, int]:
    """Every byte `node` saw of these flows, as predicted losses."""
    return {(node, key): truth.get((node, key), 0) for result in results for key in directions(result)}


def loss_report(title: str, verdict: Verdict) -> str:
    """Per class: truth, metered, lost, duplicated, predicted; printed by each test."""
    lines = [f"== {title}"]
    for name, tally in {**verdict.classes, "total": verdict.total()}.items():
        lines.append(
            f"   {name:<13} metered/truth {tally.ratio:.6f}  truth {tally.truth:>10} "
            f"({human_bytes(tally.truth)})  lost {tally.lost:>8}  duplicated {tally.duplicated:>6}  "
            f"predicted loss {tally.excused:>8}"
        )
    print("\n".join(lines))
    return "\n".join(lines)


def assert_exact(verdict: Verdict) -> None:
    """Nothing misattributed, nothing lost or duplicated beyond the predicted loss, at any point."""
    assert verdict.misattributed == []
    assert verdict.unexplained() == []
    for name, tally in verdict.points.items():
        assert (name, tally.lost - tally.excused, tally.duplicated) == (name, 0, 0)
