"""The demo's live progress display (rich): one line per phase, one bar per traffic plan."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from kubenetmon.demo.scenario import FlowPlan

_TITLES = {
    "lab": "building the lab",
    "certificates": "making certificates",
    "server": "starting the server",
    "agents": "starting one agent per node",
    "traffic": "driving traffic",
    "drain": "draining agents and server",
    "report": "reading the store",
}


class RichProgress:
    """`run.Progress` on a rich console (stderr by default, so `--json` output stays clean)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._bars = Progress(
            SpinnerColumn(finished_text="[green]✓"),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self._phases: dict[str, TaskID] = {}
        self._plans: list[TaskID] = []

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bars.stop()

    def begin(self, phase: str) -> None:
        """Show the phase as running."""
        self._phases[phase] = self._bars.add_task(_TITLES.get(phase, phase), total=1)

    def end(self, phase: str, detail: str) -> None:
        """Mark the phase done, with its one-line detail."""
        title = _TITLES.get(phase, phase)
        self._bars.update(self._phases[phase], description=f"{title}: [dim]{detail}", completed=1)

    def plans(self, plans: Sequence[FlowPlan]) -> None:
        """One bar per traffic plan."""
        self._plans = [
            self._bars.add_task(f"  [cyan]{plan.name}[/] [dim]IPv{plan.family}", total=plan.steps)
            for plan in plans
        ]

    def step(self, index: int, done: int) -> None:
        """Advance plan `index` to `done` steps (called from traffic threads; rich locks)."""
        self._bars.update(self._plans[index], completed=done)
