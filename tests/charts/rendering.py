"""Rendering the charts with the Go-built helm: each chart's value profiles, and its objects as dicts.

A profile is one way to install a chart: its defaults, or one of the complete example values files in
charts/examples (named <component>-<purpose>.yaml). Tests render every profile, so every mode of the
charts (store, TLS source, Kubernetes access) is rendered and checked.
"""

from __future__ import annotations

import copy
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS_DIR = REPO_ROOT / "charts"
EXAMPLES_DIR = CHARTS_DIR / "examples"
CHARTS = ("kubenetmon-agent", "kubenetmon-server")
KUBE_VERSION = "1.37.0"
_HELM_TIMEOUT_SECONDS = 60


class HelmError(RuntimeError):
    """helm exited non-zero; the message holds its command line and stderr."""


@dataclass(frozen=True, slots=True)
class Profile:
    """One values profile of a chart: its defaults (values_file None) or an example values file."""

    chart: str
    values_file: Path | None

    @property
    def name(self) -> str:
        return "defaults" if self.values_file is None else self.values_file.stem

    @property
    def chart_dir(self) -> Path:
        return CHARTS_DIR / self.chart

    def overrides(self) -> dict[str, Any]:
        """The values the profile sets over the chart's defaults."""
        if self.values_file is None:
            return {}
        return dict(yaml.safe_load(self.values_file.read_text()) or {})

    def __str__(self) -> str:
        return f"{self.chart}:{self.name}"


def component(chart: str) -> str:
    """'agent' for kubenetmon-agent: the prefix of the chart's example files."""
    return chart.removeprefix("kubenetmon-")


def profiles(chart: str | None = None) -> list[Profile]:
    """Defaults and every example of one chart, or of both charts."""
    found = []
    for name in CHARTS if chart is None else (chart,):
        found.append(Profile(name, None))
        found += [Profile(name, path) for path in sorted(EXAMPLES_DIR.glob(f"{component(name)}-*.yaml"))]
    return found


def chart_defaults(chart: str) -> dict[str, Any]:
    """The chart's values.yaml."""
    return dict(yaml.safe_load((CHARTS_DIR / chart / "values.yaml").read_text()))


def merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Values as helm merges a values file over others: maps recursively, anything else replaced."""
    result = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def run_helm(helm: Path, *args: str) -> str:
    """helm's stdout; raises HelmError with its stderr when it fails."""
    command = [str(helm), *args]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=_HELM_TIMEOUT_SECONDS, check=False
    )
    if completed.returncode != 0:
        raise HelmError(f"{' '.join(command)} exited {completed.returncode}:\n{completed.stderr}")
    return completed.stdout


def template(
    helm: Path,
    profile: Profile,
    extra_values: Mapping[str, Any] | None = None,
    *,
    release: str = "kubenetmon",
    namespace: str = "kubenetmon",
) -> str:
    """`helm template` of a profile, optionally with more values on top; the manifests as YAML text."""
    args = ["template", release, str(profile.chart_dir), "--namespace", namespace]
    args += ["--kube-version", KUBE_VERSION]
    if profile.values_file is not None:
        args += ["--values", str(profile.values_file)]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="kubenetmon-values-") as extra:
        if extra_values:
            yaml.safe_dump(dict(extra_values), extra)
            extra.flush()
            args += ["--values", extra.name]
        return run_helm(helm, *args)


def objects(manifests: str) -> list[dict[str, Any]]:
    """The Kubernetes objects of a multi-document manifest, without empty documents."""
    return [doc for doc in yaml.safe_load_all(manifests) if doc]


def find(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The objects of one kind."""
    return [obj for obj in objs if obj["kind"] == kind]


def only(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The single object of a kind; fails the test if there is not exactly one."""
    matches = find(objs, kind)
    assert len(matches) == 1, f"expected one {kind}, found {len(matches)}"
    return matches[0]


def container(workload: dict[str, Any], name: str, *, init: bool = False) -> dict[str, Any]:
    """A (init) container of a Deployment or DaemonSet by name."""
    spec = workload["spec"]["template"]["spec"]
    containers = spec.get("initContainers" if init else "containers", [])
    matches: list[dict[str, Any]] = [c for c in containers if c["name"] == name]
    assert len(matches) == 1, f"{workload['kind']} has no single container {name!r}"
    return matches[0]


def env_names(workload: dict[str, Any], container_name: str) -> set[str]:
    """Names of the environment variables a container gets."""
    return {entry["name"] for entry in container(workload, container_name).get("env", [])}


def env_values(workload: dict[str, Any], container_name: str, fields: Mapping[str, str]) -> dict[str, str]:
    """A container's environment; `fields` stands in for the pod fields (fieldRef) the kubelet fills in."""
    values = {}
    for entry in container(workload, container_name).get("env", []):
        if "valueFrom" in entry:
            values[entry["name"]] = fields[entry["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            values[entry["name"]] = entry["value"]
    return values


def daemon(objs: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The workload that runs a kubenetmon daemon, and its container name."""
    daemonsets = find(objs, "DaemonSet")
    if daemonsets:
        return daemonsets[0], "agent"
    return only(objs, "Deployment"), "server"
