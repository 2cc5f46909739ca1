"""The real `kubenetmon server` started with the environment a chart renders for its container.

The pod's volumes become directories under a test directory and every path in the environment is moved
along with its volume; ConfigMap volumes get the rendered ConfigMap's files, while Secret and CSI volumes
are left empty for the test to fill (it plays cert-manager). What cannot be as in a pod is replaced and
said so: the listen addresses (loopback ports free on this machine) and whatever the caller overrides.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.charts.rendering import REPO_ROOT, container, env_values, find, only
from tests.kube.processes import ManagedProcess, free_loopback_port

_START_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class LocalPod:
    """A rendered daemon container made local: its environment and a directory per volume."""

    environment: dict[str, str]
    volumes: dict[str, Path]
    """Volume name -> the directory standing in for it."""


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A started server: where agents connect and where its health pages are."""

    grpc_target: str
    metrics_url: str
    process: ManagedProcess


def local_pod(
    objs: list[dict[str, Any]], container_name: str, root: Path, fields: Mapping[str, str] | None = None
) -> LocalPod:
    """The daemon container of rendered objects, with its volumes as directories under `root` and the
    pod fields its environment refers to taken from `fields`."""
    workload = only(objs, "DaemonSet" if container_name == "agent" else "Deployment")
    volumes = {volume["name"]: volume for volume in workload["spec"]["template"]["spec"]["volumes"]}
    config_maps = {obj["metadata"]["name"]: obj for obj in find(objs, "ConfigMap")}
    directories: dict[str, Path] = {}
    moved: dict[str, Path] = {}
    for mount in container(workload, container_name)["volumeMounts"]:
        directory = root / mount["name"]
        directory.mkdir(parents=True, exist_ok=True)
        config_map = volumes[mount["name"]].get("configMap")
        if config_map is not None:
            for key, text in config_maps[config_map["name"]]["data"].items():
                (directory / key).write_text(text)
        directories[mount["name"]] = directory
        moved[mount["mountPath"]] = directory
    environment = {
        name: _moved(value, moved)
        for name, value in env_values(workload, container_name, fields or {}).items()
    }
    return LocalPod(environment, directories)


def _moved(value: str, moved: Mapping[str, Path]) -> str:
    # One pass (a moved path must not be moved again: the tmp volume is /tmp), longest mount path first,
    # and only at path boundaries (/var/lib/kubenetmon is not the start of /var/lib/kubenetmon-wal).
    alternatives = "|".join(re.escape(path) for path in sorted(moved, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.-])({alternatives})(?=$|[/?])")
    return pattern.sub(lambda match: str(moved[match[1]]), value)


@contextmanager
def server_process(environment: Mapping[str, str], log_path: Path) -> Iterator[RunningServer]:
    """`kubenetmon server` with exactly these KUBENETMON_* variables (plus loopback listen addresses),
    ready (/readyz answers 200) when the block starts; stopped with SIGTERM when it ends."""
    grpc_port, metrics_port = free_loopback_port(), free_loopback_port()
    variables = {
        **environment,
        "KUBENETMON_LISTEN": f"127.0.0.1:{grpc_port}",
        "KUBENETMON_METRICS_HOST": "127.0.0.1",
        "KUBENETMON_METRICS_PORT": str(metrics_port),
        "PYTHONPATH": str(REPO_ROOT / "src"),
        "GRPC_VERBOSITY": "ERROR",
    }
    inherited = [f"--unset={name}" for name in os.environ if name.startswith("KUBENETMON_")]
    argv = ["env", *inherited, *(f"{k}={v}" for k, v in variables.items())]
    argv += [sys.executable, "-m", "kubenetmon", "server"]
    process = ManagedProcess("kubenetmon server", argv, log_path)
    metrics_url = f"http://127.0.0.1:{metrics_port}"
    process.start()
    try:
        process.wait_until(lambda: _answers(f"{metrics_url}/readyz"), _START_TIMEOUT_SECONDS, "ready")
        yield RunningServer(f"127.0.0.1:{grpc_port}", metrics_url, process)
    finally:
        process.stop()


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bool(response.status == 200)


def query(environment: Mapping[str, str], sql: str) -> list[dict[str, Any]]:
    """`kubenetmon query --json` against the store the environment names (the server must have stopped:
    an embedded database is open in one process at a time)."""
    store = {name: value for name, value in environment.items() if name.startswith("KUBENETMON_STORE")}
    completed = subprocess.run(
        [sys.executable, "-m", "kubenetmon", "query", "--json", sql],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("KUBENETMON_")},
            **store,
            "PYTHONPATH": str(REPO_ROOT / "src"),
        },
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    rows: list[dict[str, Any]] = json.loads(completed.stdout)
    return rows
