"""The demo's scenario end to end: real agents, a real server, the embedded engine, the nftables truth.

One run of the demo's traffic mix (every billing class, IPv4 and IPv6, short and long TCP, UDP, through
the ClusterIP) is compared with the lab's ground truth, flow by flow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubenetmon.demo.accuracy import Verdict
from kubenetmon.demo.system import MeteredLab
from kubenetmon.lab import Lab, Topology
from kubenetmon.lab.traffic import FlowResult
from tests.e2e.conftest import TOLERANCE, loss_report, play

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


@dataclass(frozen=True)
class ScenarioRun:
    lab: Lab
    flows: list[FlowResult]
    verdict: Verdict


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScenarioRun]:
    root: Path = tmp_path_factory.mktemp("scenario")
    with Lab(Topology.demo(), state_dir=root / "lab-state") as lab, MeteredLab(lab, root / "run") as system:
        system.start()
        flows, truth = play(lab, system, duration=8)
        verdict = system.verdict(truth)
        loss_report("demo scenario", verdict)
        yield ScenarioRun(lab, flows, verdict)


def test_every_pair_is_metered_within_a_tenth_of_a_percent(scenario: ScenarioRun) -> None:
    assert scenario.verdict.pairs
    assert scenario.verdict.pairs_outside(TOLERANCE) == []


def test_every_class_is_metered_exactly(scenario: ScenarioRun) -> None:
    assert scenario.verdict.unexplained() == []
    for tally in scenario.verdict.classes.values():
        assert (tally.lost, tally.duplicated) == (0, 0)


def test_every_row_names_the_right_pods_workloads_zones_and_class(scenario: ScenarioRun) -> None:
    assert scenario.verdict.misattributed == []


def test_no_observation_point_counts_a_byte_twice(scenario: ScenarioRun) -> None:
    points = scenario.verdict.points
    assert sorted(points) == ["node-a1", "node-a2", "node-b1"]
    assert scenario.verdict.points_outside(TOLERANCE) == []
    assert all(tally.duplicated == 0 for tally in points.values())


def test_the_scenario_covers_every_class_family_protocol_and_the_cluster_ip(scenario: ScenarioRun) -> None:
    classes = scenario.verdict.classes
    assert set(classes) == {"same-zone", "cross-zone", "cross-region", "internet"}
    assert all(tally.truth > 0 for tally in classes.values())
    assert {(flow.proto, flow.family) for flow in scenario.flows} == {(6, 4), (6, 6), (17, 4), (17, 6)}
    (service,) = scenario.lab.topology.services
    through_vip = {
        flow.server[0] for flow in scenario.flows if flow.dialed[0] in (service.vip_v4, service.vip_v6)
    }
    backends = [scenario.lab.topology.pod(key) for key in service.backend_keys]
    assert through_vip == {ip for pod in backends for ip in (pod.ipv4, pod.ipv6)}
