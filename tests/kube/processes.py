"""Child processes of the control plane: started with a log file, awaited until healthy, stopped by PID."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_STOP_GRACE_SECONDS = 20.0
_POLL_SECONDS = 0.1
_LOG_TAIL_LINES = 40


class ProcessStartError(RuntimeError):
    """A control-plane process exited or never became healthy; the message carries its log tail."""


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry if someone takes it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ManagedProcess:
    """One child process whose stdout and stderr go to `log_path`; it only ever signals its own PID."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The PID while running, else None."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Launch the process, appending to its log (a restart keeps the earlier output)."""
        with self.log_path.open("ab") as log:
            log.write(f"\n--- starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_until(self, is_ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `is_ready` until it returns True; fail fast if the process exits, or after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exited():
                raise ProcessStartError(self.describe_failure(f"exited while waiting for {what}"))
            with contextlib.suppress(OSError):
                if is_ready():
                    return
            time.sleep(_POLL_SECONDS)
        raise ProcessStartError(self.describe_failure(f"was not {what} after {timeout:.0f} s"))

    def exited(self) -> bool:
        """True once the process has terminated (or was never started)."""
        return self._process is None or self._process.poll() is not None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; a no-op when not running."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(_STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self) -> str:
        """The last lines of the log, for error messages."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-_LOG_TAIL_LINES:])

    def describe_failure(self, problem: str) -> str:
        """`problem` with the exit code, the command line and the log tail."""
        code = None if self._process is None else self._process.poll()
        return (
            f"{self.name} {problem} (exit code {code}).\ncommand: {' '.join(self.argv)}\n"
            f"log {self.log_path}, last lines:\n{self.log_tail()}"
        )

    def port_in_use_failure(self) -> bool:
        """True if the process died because its listen address was taken (the caller picks a new port)."""
        return self.exited() and "address already in use" in self.log_tail()
