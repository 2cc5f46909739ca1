"""Fixtures of the chart tests: the Go-built helm binary, and the shared test control plane."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.charts.tools import helm_binary
from tests.kube.fixtures import kube_control_plane  # noqa: F401


@pytest.fixture(scope="session")
def helm() -> Path:
    """The helm v3.22 binary built by scripts/build-test-binaries.sh (fails, naming the build, if missing)."""
    return helm_binary()
