"""Where a running server's CPU goes, two ways:

- per thread, from /proc/PID/task/*/stat: every thread counts, the engine's and gRPC's C++ threads
  included (py-spy only sees threads that run Python);
- per stage, from py-spy (`--native`, so C frames under Python ones show too): each sampled stack is
  put in the first category of `CATEGORIES` one of its frames matches.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")

IDLE = (
    ";epoll_wait",
    "_queue_SimpleQueue_get",
    ";EpollSelector.select",
    ";select (selectors.py",
    ";take_gil",
)
"""Frames of a thread that waits (py-spy's own idle detection misses some with --native)."""
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("WAL fsync", (";IngestLog._sync (", ";SegmentLog.sync (")),
    ("WAL frame (re-encode the batch)", (";frame (",)),
    ("WAL append", (";SegmentLog.append (",)),
    ("WAL commit (sequence book, segments)", (";IngestLog.commit (", ";_write_intent (")),
    ("flusher: decode from the WAL", (";unframe (", ";columns_of (")),
    ("flusher: sum per flow", (";FlowTable.add (",)),
    ("receive: decode + validate", (";decode_batch (",)),
    ("attribution", (";Attributor.attribute (",)),
    ("aggregation", (";Aggregator.add (",)),
    ("column building", (";build_columns (", ";ColumnBatch.token (")),
    ("insert: chDB engine", (";Connection.query (", "libchdb", "_chdb")),
    (
        "insert: clickhouse-connect (Native encoding)",
        (";Client.insert (", ";_SyncStreamingInsertSource._producer ("),
    ),
    ("flusher: other (metrics, bookkeeping)", ("(kubenetmon/server/flusher.py",)),
    ("receive: other (handler, metrics, ack)", (";FlowServer._stream (",)),
    ("gRPC (Python threads)", ("(grpc/", "cygrpc")),
    ("asyncio event loop", ("(asyncio/",)),
    ("garbage collector", (";gc_collect_main",)),
)


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Per thread id: its group (see `_thread_group`) and CPU seconds (user + system) so far."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        group = "main thread (event loop)" if task.name == str(pid) else _thread_group(name)
        threads[int(task.name)] = (group, (int(fields[11]) + int(fields[12])) / _TICKS)
    return threads


def _thread_group(name: str) -> str:
    # Python does not name OS threads (asyncio.to_thread workers, clickhouse-connect's producer); gRPC's
    # C++ threads carry their own names, and so do the engine's (which rename themselves per job).
    if name.startswith("python"):
        return "other Python threads (flusher, insert, fsync)"
    if name.startswith(("event_engine", "grpc")):
        return "gRPC C++ threads"
    return "chDB threads (inserts, merges)"


class ThreadWatch:
    """Reads `thread_cpu` every `interval` seconds in the background and keeps each thread's last
    reading, so threads that end before the last reading (worker threads at shutdown) still count."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.start = thread_cpu(pid)
        self.last = dict(self.start)
        self._pid, self._interval = pid, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.last.update(thread_cpu(self._pid))
            except FileNotFoundError:
                return  # the process is gone

    def stop(self) -> dict[str, float]:
        """CPU seconds per thread group since the watch started."""
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(FileNotFoundError):  # the process is gone
            self.last.update(thread_cpu(self._pid))
        return grouped_difference(self.last, self.start)


def grouped_difference(
    after: dict[int, tuple[str, float]], before: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds per group between two `thread_cpu` readings; threads that ended in between are missing."""
    usage: dict[str, float] = {}
    for tid, (group, seconds) in after.items():
        usage[group] = usage.get(group, 0.0) + seconds - before.get(tid, (group, 0.0))[1]
    return usage


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def start_sampler(pid: int, output: Path, cpu: set[int]) -> subprocess.Popen[bytes] | None:
    """py-spy sampling `pid` (native frames, idle threads left out) on `cpu`; None if py-spy is missing."""
    executable = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if executable is None:
        return None
    command = [executable, "record", "--pid", str(pid), "--format", "raw", "--nonblocking", "--rate", "100",
               "--output", str(output)]  # fmt: skip
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_pinned(cpu),  # noqa: PLW1509 - sched_setaffinity only, no locks involved
    )


def stop_sampler(sampler: subprocess.Popen[bytes]) -> None:
    """Ask py-spy to write its output and wait for it."""
    sampler.send_signal(signal.SIGINT)
    sampler.wait(timeout=120)


def _pinned(cpu: set[int]) -> Callable[[], None]:
    return lambda: os.sched_setaffinity(0, cpu)


def categorize(raw: Path) -> tuple[dict[str, int], int]:
    """(samples per category, busy samples) of a py-spy raw file (collapsed stacks with counts); samples
    of waiting threads are left out."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        samples = int(number)
        if any(frame in stack for frame in IDLE):
            continue
        total += samples
        counts[_category(stack)] += samples
    return dict(counts), total


def _category(stack: str) -> str:
    for name, patterns in CATEGORIES:
        if any(pattern in stack for pattern in patterns):
            return name
    return "other"
