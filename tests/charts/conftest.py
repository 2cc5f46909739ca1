"""Fixtures of the chart tests: the Go-built helm binary, and the shared test control plane."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kube.binaries import MissingBinariesError, find_binaries
from tests.kube.fixtures import kube_control_plane  # noqa: F401


@pytest.fixture(scope="session")
def helm() -> Path:
    """helm v3.22 built by scripts/build-test-binaries.sh; fails, naming the build command, if missing."""
    try:
        return find_binaries().helm
    except MissingBinariesError as missing:
        pytest.fail(str(missing), pytrace=False)
