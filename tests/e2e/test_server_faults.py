"""Server and store faults in the middle of the demo's traffic lose and duplicate nothing.

The server acknowledges a batch once it is fsynced in its write-ahead buffer and inserts with
deterministic deduplication tokens; agents keep unacknowledged batches and resend them. So a server
killed at any moment, a server that stops answering for several intervals, and a store that fails for a
while must all end with the store holding exactly the ground truth.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from kubenetmon.demo.system import MeteredLab, SystemSettings
from kubenetmon.lab import Lab
from tests.clickhouse_http.process import EndpointProcess
from tests.e2e.conftest import after, assert_exact, loss_report, play

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def test_a_server_killed_twice_mid_run_and_restarted_loses_and_duplicates_nothing(
    lab: Lab, tmp_path: Path
) -> None:
    with MeteredLab(lab, tmp_path) as system:
        system.start()

        def crash_twice() -> None:
            for pause in (3.0, 1.5):
                time.sleep(pause)
                system.server.kill()
                time.sleep(1.0)
                system.server.start().wait_ready()

        _, truth = play(lab, system, duration=10, during=crash_twice)
        verdict = system.verdict(truth)
    loss_report("server kill -9 twice, restarted", verdict)
    assert system.server.starts == 3
    assert_exact(verdict)


@pytest.mark.parametrize("how", ["paused", "stopped"])
def test_a_server_gone_for_several_intervals_loses_and_duplicates_nothing(
    lab: Lab, tmp_path: Path, how: str
) -> None:
    with MeteredLab(lab, tmp_path) as system:
        system.start()

        def outage() -> None:
            if how == "paused":
                system.server.signal(signal.SIGSTOP)
                time.sleep(5.0)
                system.server.signal(signal.SIGCONT)
            else:
                assert system.server.terminate() == 0
                time.sleep(5.0)
                system.server.start().wait_ready()

        _, truth = play(lab, system, duration=10, during=after(3.0, outage))
        verdict = system.verdict(truth)
    loss_report(f"server {how} for 5 s (5 agent intervals)", verdict)
    assert_exact(verdict)


def test_a_store_failing_for_several_flushes_loses_and_duplicates_nothing(lab: Lab, tmp_path: Path) -> None:
    with EndpointProcess(tmp_path / "clickhouse") as endpoint:
        settings = SystemSettings(store_dsn=f"{endpoint.url}/flows")
        with MeteredLab(lab, tmp_path / "run", settings) as system:
            system.start()

            failures: list[float] = []

            def store_outage() -> None:
                endpoint.stop()
                failures.append(wait_for_insert_failures(system))
                time.sleep(4.0)
                endpoint.start()

            _, truth = play(lab, system, duration=10, during=after(3.0, store_outage))
            verdict = system.verdict(truth)
    loss_report("store down for several flush periods", verdict)
    assert failures[0] > 0
    assert_exact(verdict)


def wait_for_insert_failures(system: MeteredLab, timeout: float = 30.0) -> float:
    """Wait until the server has seen an insert fail; returns how many have."""
    deadline = time.monotonic() + timeout
    while (failed := system.server.metric("kubenetmon_server_insert_failures_total")) == 0:
        assert time.monotonic() < deadline, "the server never tried to insert while the store was down"
        time.sleep(0.2)
    return failed
