"""Where the helm binary is: built once by scripts/build-test-binaries.sh into the tools cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def helm_binary() -> Path:
    """`<tools cache>/current/helm`; fails the test with the build command when it is missing."""
    configured = os.environ.get("KUBENETMON_TOOLS_CACHE")
    cache = Path(configured) if configured else Path.home() / ".cache" / "kubenetmon-tools"
    helm = cache / "current" / "helm"
    if not os.access(helm, os.X_OK):
        pytest.fail(f"{helm} is missing; build it with scripts/build-test-binaries.sh", pytrace=False)
    return helm
