"""`kubenetmon demo` as users run it: one command, a report, an accuracy line, and nothing left behind."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kubenetmon.demo.processes import child_environment
from kubenetmon.lab import state
from kubenetmon.lab.netns import existing_namespaces

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def kubenetmon(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubenetmon", *args],
        capture_output=True,
        text=True,
        env=child_environment(),
        timeout=timeout,
        check=False,
    )


def processes_mentioning(text: str) -> list[int]:
    """Processes whose command line contains `text` (our daemons name the run directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_demo_prints_the_reports_and_an_accuracy_line_per_class(tmp_path: Path) -> None:
    done = kubenetmon("demo", "--duration", "3", "--state-dir", str(tmp_path / "labs"))
    assert done.returncode == 0, done.stderr
    for title in ("Top cross-zone talkers", "Zone-to-zone bytes", "Traffic to cloud services"):
        assert title in done.stdout
    line = next(line for line in done.stdout.splitlines() if line.startswith("accuracy: "))
    ratios = dict(re.findall(r"([a-z-]+) (\d\.\d{4}) \(", line))
    assert ratios == dict.fromkeys(("same-zone", "cross-zone", "cross-region", "internet"), "1.0000")


def test_demo_json_has_per_class_accuracy_and_keeps_a_store_that_query_reads(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    done = kubenetmon(
        "demo", "--duration", "3", "--json", "--keep", str(keep), "--state-dir", str(tmp_path / "labs")
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    accuracy = document["accuracy"]
    assert set(accuracy["classes"]) == {"same-zone", "cross-zone", "cross-region", "internet"}
    assert all(abs(entry["accuracy"] - 1) <= 0.001 for entry in accuracy["classes"].values())
    assert accuracy["problems"] == []
    assert [report["name"] for report in document["reports"]] == [
        "cross-zone",
        "zone-matrix",
        "cloud-services",
    ]
    cloud = document["reports"][2]["rows"]
    assert {(row["service"], row["region"]) for row in cloud} == {("s3", "us-east-1")}
    assert document["store"] == f"chdb://{keep}/store"
    query = kubenetmon(
        "query",
        "--store",
        document["store"],
        "--json",
        "SELECT sum(bytes) AS b FROM network_flows_0 WHERE countOnce",
    )
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == [{"b": accuracy["total"]["metered_bytes"]}]
    assert list((tmp_path / "labs").glob("*.json")) == []


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["sigterm", "ctrl-c"]
)
def test_a_signal_mid_traffic_tears_down_the_lab_and_every_daemon(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    keep, labs = tmp_path / "kept", tmp_path / "labs"
    command = [sys.executable, "-m", "kubenetmon", "demo", "--duration", "120", "--keep", str(keep)]
    with (tmp_path / "demo.out").open("w") as out:
        demo = subprocess.Popen(
            [*command, "--state-dir", str(labs)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_environment(),
        )
    try:
        namespaces = wait_for_a_running_demo(labs, keep)
        demo.send_signal(signum)
        assert demo.wait(timeout=90) == status
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert namespaces and not set(namespaces) & existing_namespaces()
    assert list(labs.glob("*.json")) == []
    assert processes_mentioning(str(keep)) == []


def wait_for_a_running_demo(labs: Path, keep: Path, timeout: float = 120) -> list[str]:
    """Wait until every agent has started and traffic flows; returns the lab's namespaces."""
    deadline = time.monotonic() + timeout
    while True:
        records = state.read_records(labs) if labs.exists() else []
        logs = [keep / "logs" / f"agent-{node}.log" for node in ("node-a1", "node-a2", "node-b1")]
        if records and all(log.exists() and "agent started" in log.read_text() for log in logs):
            time.sleep(2.0)
            return list(records[0].namespaces)
        assert time.monotonic() < deadline, "the demo did not get its agents running"
        time.sleep(0.2)
