"""Labs shared by the tests of one module (built once per module; every test keys on its own ports)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubenetmon.lab import Lab, Topology


@pytest.fixture(scope="module")
def two_nodes_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(Topology.two_nodes(), state_dir=tmp_path_factory.mktemp("lab-state")) as lab:
        yield lab


@pytest.fixture(scope="module")
def demo_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(Topology.demo(), state_dir=tmp_path_factory.mktemp("lab-state")) as lab:
        yield lab
