"""`kubenetmon demo` from start to end: lab, certificates, server, agents, traffic, drain, report.

Everything is torn down on the way out, whatever the way out is (an error, Ctrl-C, or SIGTERM turned
into an exception by the CLI): agents, then the server, then the lab. The run directory (certificates,
store, logs) is removed too, unless it is kept (`keep`); an error names the daemon and quotes its log.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kubenetmon.demo.accuracy import Verdict
from kubenetmon.demo.scenario import FlowPlan, TrafficRun, demo_mix
from kubenetmon.demo.system import MeteredLab, SystemSettings
from kubenetmon.lab import Lab, Topology, state
from kubenetmon.store.dsn import parse_dsn
from kubenetmon.store.queries import Report, Window, cloud_services, cross_zone_talkers, zone_matrix
from kubenetmon.store.sink import ClickHouseStore

PHASES = ("lab", "certificates", "server", "agents", "traffic", "drain", "report")


class Progress(Protocol):
    """What the demo tells its display."""

    def begin(self, phase: str) -> None:
        """A phase (one of PHASES) starts."""

    def end(self, phase: str, detail: str) -> None:
        """It ended; `detail` is one short line about it."""

    def plans(self, plans: Sequence[FlowPlan]) -> None:
        """The traffic about to run (one progress line per plan)."""

    def step(self, index: int, done: int) -> None:
        """Plan `index` has done `done` of its steps."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What `kubenetmon demo` was asked for."""

    duration: float = 20.0
    """Seconds of traffic; every plan's step count scales with it."""
    keep: Path | None = None
    """Keep the run directory (and its store) here; it must be new or empty."""
    interval: float = 1.0
    lab_state_dir: Path = state.STATE_DIR
    """Where the lab's record lives while it is up (what `kubenetmon lab down` reads)."""


@dataclass(slots=True)
class DemoResult:
    """What a finished demo shows: the reports, the accuracy verdict and where the store is (if kept)."""

    reports: list[Report]
    verdict: Verdict
    plans: list[FlowPlan]
    flows: int
    """Connections and UDP flows made."""
    kept: Path | None
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per phase."""

    @property
    def store_dsn(self) -> str | None:
        """The kept store's DSN, for `kubenetmon query --store` and `kubenetmon report --store`."""
        return f"chdb://{self.kept / 'store'}" if self.kept else None


def prepare_keep_dir(path: Path) -> Path:
    """The absolute directory to keep the run in; ValueError if it exists and is not empty."""
    path = path.resolve()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"{path} already exists and is not an empty directory; choose a new one")
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_demo(options: DemoOptions, progress: Progress) -> DemoResult:
    """Run the whole demo and return its result; everything it started is stopped before it returns."""
    workdir = (
        prepare_keep_dir(options.keep) if options.keep else Path(tempfile.mkdtemp(prefix="kubenetmon-demo-"))
    )
    try:
        return _run(options, progress, workdir)
    finally:
        if options.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


class _Phases:
    """Times phases and tells the display."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self.detail = ""

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.progress.begin(name)
        self.detail = ""
        began = time.monotonic()
        yield
        self.seconds[name] = time.monotonic() - began
        self.progress.end(name, self.detail or f"{self.seconds[name]:.1f} s")


def _run(options: DemoOptions, progress: Progress, workdir: Path) -> DemoResult:
    phases = _Phases(progress)
    topology = Topology.demo()
    with contextlib.ExitStack() as running:
        with phases.phase("lab"):
            lab = running.enter_context(Lab(topology, state_dir=options.lab_state_dir))
            phases.detail = (
                f"{len(topology.nodes)} nodes, {len(topology.zones)} zones, {len(topology.pods)} pods"
            )
        system = running.enter_context(MeteredLab(lab, workdir, SystemSettings(interval=options.interval)))
        with phases.phase("certificates"):
            system.prepare()
            phases.detail = f"CA, server and {len(system.agents)} node certificates"
        with phases.phase("server"):
            system.start_server()
            phases.detail = f"mTLS on 127.0.0.1:{system.grpc_port}, store {system.store_dsn}"
        with phases.phase("agents"):
            system.start_agents()
            phases.detail = f"{len(system.agents)} agents, {options.interval:g} s intervals, baselines taken"
        lab.reset_ground_truth()
        started = time.time()
        plans = demo_mix(topology, options.duration)
        progress.plans(plans)
        with phases.phase("traffic"):
            flows = TrafficRun(lab, plans, options.duration, progress.step).run()
            phases.detail = f"{len(flows)} connections and UDP flows in {time.time() - started:.1f} s"
        with phases.phase("drain"):
            truth = system.drain()
            phases.detail = "agents sent their last intervals, the server stored its buffer"
    with phases.phase("report"):
        verdict = system.verdict(truth)
        with ClickHouseStore(parse_dsn(system.store_dsn)) as store:
            window = Window(int(started) - int(started) % 60, int(time.time()) + 60)
            reports = [report(store, window) for report in (cross_zone_talkers, zone_matrix, cloud_services)]
    return DemoResult(reports, verdict, plans, len(flows), workdir if options.keep else None, phases.seconds)
