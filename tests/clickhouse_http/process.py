"""Start, stop and restart the endpoint as a subprocess, from tests and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    """The environment for a Python child that imports kubenetmon and tests from this checkout."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}


class EndpointProcess:
    """The endpoint in its own process on `path`; `url` stays valid across restarts (same port)."""

    def __init__(self, path: Path, drop_insert_responses: int = 0) -> None:
        self.path = path
        self.port = 0
        self._drops = drop_insert_responses
        self._process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        """The running endpoint's process id."""
        assert self._process is not None, "endpoint is not running"
        return self._process.pid

    @property
    def log(self) -> Path:
        """The endpoint's stderr, next to its engine directory."""
        return self.path.with_name(self.path.name + ".log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EndpointProcess:
        """Start and wait until it listens (on the previous port after a `stop`)."""
        command = [
            sys.executable,
            "-m",
            "tests.clickhouse_http",
            "--path",
            str(self.path),
            "--port",
            str(self.port),
        ]
        command += ["--drop-insert-responses", str(self._drops)]
        # The engine may write to stderr at any time; a pipe nobody reads would fill up and stall it.
        with self.log.open("a") as log:
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, text=True, env=child_env(), cwd=ROOT
            )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"test endpoint did not start: {line!r}; see {self.log}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 10 s); releases the engine directory."""
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()

    def __enter__(self) -> EndpointProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
