"""Processes for the server benchmark: the `kubenetmon server` subprocess, its /metrics, agent processes,
and one-off children (the embedded engine allows one directory per process)."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TypeVar

import kubenetmon
from benchmarks.server_agents import AgentResult, run_agent

T = TypeVar("T")
_SPAWN = multiprocessing.get_context("spawn")


@dataclass
class Server:
    """A `kubenetmon server` subprocess and its stderr lines with their arrival times."""

    process: subprocess.Popen[str]
    grpc_port: int
    metrics_port: int
    lines: list[tuple[float, str]] = field(default_factory=list)
    _reader: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self._reader = threading.Thread(target=self.pump, daemon=True)
        self._reader.start()

    def pump(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append((time.monotonic(), line.rstrip()))

    def drained(self) -> None:
        """Wait until the exited server's last stderr lines are read."""
        self._reader.join(timeout=10)

    def logged(self, text: str) -> float | None:
        """When a line containing `text` arrived, or None."""
        return next((at for at, line in self.lines if text in line), None)

    def log_text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(command_tail: list[str], scratch: Path, pki: Path, cpu: int) -> Server:
    """`kubenetmon server` with mTLS, chDB and the WAL under `scratch`, on core `cpu`; returns once ready."""
    grpc_port, metrics_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "kubenetmon", "server", "--listen", f"127.0.0.1:{grpc_port}",
        "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server-key.pem"),
        "--tls-ca", str(pki / "ca.pem"), "--metrics-host", "127.0.0.1", "--metrics-port", str(metrics_port),
        "--store", f"chdb://{scratch}/store", "--wal-dir", str(scratch / "wal"),
        *command_tail,
    ]  # fmt: skip
    source = str(Path(kubenetmon.__file__).parents[1])
    environment = {**os.environ, "PYTHONPATH": source, "GRPC_VERBOSITY": "ERROR"}
    process = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=environment,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),  # noqa: PLW1509 - no locks involved
    )
    server = Server(process, grpc_port, metrics_port)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=5) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not become ready:\n" + server.log_text())


def scrape(server: Server) -> dict[str, float]:
    """Unlabelled samples of the server's /metrics, labelled ones summed under their bare name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            bare = name.partition("{")[0]
            samples[bare] = samples.get(bare, 0.0) + float(value)
    return samples


def wait_stopped_storing(server: Server, interval: float = 0.02) -> float:
    """When a server told to stop has made its last insert, to within `interval`: it closes its HTTP
    endpoint only after that (the drain), so poll the cheap /healthz until the connection is refused."""
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/healthz", timeout=10):
                pass
        except OSError:
            return time.monotonic()
        time.sleep(interval)


def stream(
    pki: Path, port: int, groups: list[Path], window: int, cpus: set[int], at_go: Callable[[], None]
) -> list[AgentResult]:
    """Run one agent process per batch file; `at_go` runs once all are connected, just before they send."""
    pipes, processes = [], []
    for group in groups:
        mine, theirs = _SPAWN.Pipe()
        process = _SPAWN.Process(target=run_agent, args=(pki, port, group, window, cpus, theirs))
        process.start()
        pipes.append(mine)
        processes.append(process)
    for pipe in pipes:
        if pipe.recv() != "ready":
            raise RuntimeError("an agent process failed to connect")
    at_go()
    for pipe in pipes:
        pipe.send("go")
    results: list[AgentResult] = [pipe.recv() for pipe in pipes]
    for process in processes:
        process.join()
    return results


def _child(pipe: Connection, function: Callable[..., object], arguments: tuple[object, ...]) -> None:
    try:
        pipe.send((True, function(*arguments)))
    except Exception:
        pipe.send((False, traceback.format_exc()))


def in_child(function: Callable[..., T], *arguments: object) -> T:
    """`function(*arguments)` in a fresh process (the engine allows one directory per process)."""
    mine, theirs = _SPAWN.Pipe()
    process = _SPAWN.Process(target=_child, args=(theirs, function, arguments))
    process.start()
    ok, result = mine.recv()
    process.join()
    if not ok:
        raise RuntimeError(f"child process failed:\n{result}")
    return result  # type: ignore[no-any-return]
