"""Chart releases installed for real on the test control plane with helm, and the bare objects tests put
next to them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from tests.charts.rendering import Profile
from tests.kube.control_plane import ControlPlane


@dataclass(frozen=True, slots=True)
class Release:
    """An installed release and what `helm install` printed (the NOTES)."""

    name: str
    namespace: str
    chart: str
    install_output: str

    @property
    def fullname(self) -> str:
        """The prefix of the release's object names (release names here never contain the chart name)."""
        return f"{self.name}-{self.chart}"


def install(control_plane: ControlPlane, profile: Profile, namespace: str, *extra: str) -> Release:
    """`helm install` of a profile under a fresh release name (no --wait: no controllers run here)."""
    name = f"{profile.chart.removeprefix('kubenetmon-')}-{secrets.token_hex(3)}"
    args = ["install", name, str(profile.chart_dir), "--namespace", namespace, *extra]
    if profile.values_file is not None:
        args += ["--values", str(profile.values_file)]
    return Release(name, namespace, profile.chart, control_plane.helm(*args).stdout)


def node_object(name: str) -> dict[str, Any]:
    """A Node with nothing but a name (no kubelet runs here)."""
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


def pod_object(name: str, node: str) -> dict[str, Any]:
    """A minimal Pod bound to `node` (no scheduler runs here)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "example.invalid/probe:1"}]},
    }
