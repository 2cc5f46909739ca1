"""The real daemons as child processes: a server and one agent per lab node, each with its own log file.

Each child runs `python -m kubenetmon ...` from the same installation as this process, in its own
session (a Ctrl-C at the terminal reaches only the demo, which then stops the children in order: agents
first, so they send their last partial interval, then the server, so it stores its buffer). If the demo
itself dies, the kernel sends the children SIGTERM (PR_SET_PDEATHSIG), so none is left behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import kubenetmon
from kubenetmon.errors import KubenetmonError

_PR_SET_PDEATHSIG = 1
_PACKAGE_ROOT = str(Path(kubenetmon.__file__).resolve().parents[1])


class DaemonFailed(KubenetmonError):
    """A child daemon exited or did not become ready; the message quotes the end of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_environment() -> dict[str, str]:
    """This environment, with this kubenetmon first on the children's import path."""
    path = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(part for part in (_PACKAGE_ROOT, path) if part),
        "GRPC_VERBOSITY": os.environ.get("GRPC_VERBOSITY", "ERROR"),
    }


@dataclass(frozen=True, slots=True)
class DaemonSpec:
    """How to run one daemon: its name, its `kubenetmon` arguments, its log, and its health page."""

    name: str
    args: tuple[str, ...]
    log: Path
    health_url: str
    metrics_url: str


class Daemon:
    """One kubenetmon child process that can be started again, signalled, probed and scraped."""

    def __init__(self, spec: DaemonSpec) -> None:
        self.spec = spec
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def name(self) -> str:
        """What the demo calls it (`server`, `agent node-a1`)."""
        return self.spec.name

    @property
    def running(self) -> bool:
        """Started and not yet exited."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        """The running process's id."""
        if self._process is None:
            raise DaemonFailed(f"{self.name} is not running")
        return self._process.pid

    def start(self) -> Daemon:
        """Start the process (again); returns at once, see `wait_ready`."""
        if self.running:
            raise DaemonFailed(f"{self.name} is already running (pid {self.pid})")
        self.spec.log.parent.mkdir(parents=True, exist_ok=True)
        with self.spec.log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "kubenetmon", *self.spec.args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_environment(),
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only a prctl, safe before exec
            )
        self.starts += 1
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the health page answers 200; DaemonFailed if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise DaemonFailed(f"{self.name} exited with {self.returncode()}:\n{self.log_tail()}")
            if self._page_ok():
                return
            if time.monotonic() > deadline:
                raise DaemonFailed(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def _page_ok(self) -> bool:
        try:
            with urllib.request.urlopen(self.spec.health_url, timeout=2) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The sum of a metric's samples (matching `labels`) on the daemon's /metrics page."""
        with urllib.request.urlopen(self.spec.metrics_url, timeout=5) as answer:
            page = answer.read().decode()
        wanted = [f'{key}="{value}"' for key, value in (labels or {}).items()]
        total = 0.0
        for line in page.splitlines():
            metric, _, value = line.rpartition(" ")
            if metric.partition("{")[0] == name and all(label in metric for label in wanted):
                total += float(value)
        return total

    def signal(self, signum: signal.Signals) -> None:
        """Send a signal to the process (SIGSTOP / SIGCONT pause and resume it)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signum)

    def terminate(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait for a graceful exit (SIGKILL after `timeout`); returns the exit status."""
        if self._process is None:
            return None
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        return self._process.returncode

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (a crash, as far as the daemon's data is concerned)."""
        if self._process is not None:
            self.signal(signal.SIGKILL)
            self._process.wait()

    def returncode(self) -> int | None:
        """The exit status, None while running or before the first start."""
        return None if self._process is None else self._process.poll()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the daemon's log, for error messages."""
        try:
            text = self.spec.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
