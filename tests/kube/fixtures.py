"""pytest fixtures for tests that need a real kube-apiserver.

Another test folder gets them by importing them in its own conftest.py:

    from tests.kube.fixtures import kube_control_plane, kube_namespace  # noqa: F401

Each conftest that imports the fixture registers its own copy, but all copies share one
ControlPlane, started on first use and stopped when the last copy is torn down.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kube.binaries import ControlPlaneBinaries, MissingBinariesError, find_binaries
from tests.kube.control_plane import ControlPlane
from tests.kube.namespaces import create_namespace, delete_namespace


class _SharedControlPlane:
    """One ControlPlane per pytest process, reference-counted across fixture registrations."""

    def __init__(self) -> None:
        self._control_plane: ControlPlane | None = None
        self._users = 0

    def acquire(self) -> ControlPlane:
        if self._control_plane is None:
            control_plane = ControlPlane(_binaries_or_fail())
            control_plane.start()
            self._control_plane = control_plane
        self._users += 1
        return self._control_plane

    def release(self) -> None:
        self._users -= 1
        if self._users == 0 and self._control_plane is not None:
            control_plane, self._control_plane = self._control_plane, None
            control_plane.stop()


def _binaries_or_fail() -> ControlPlaneBinaries:
    try:
        return find_binaries()
    except MissingBinariesError as missing:
        problem = str(missing)
    # Outside the except block, so the report shows the build command once, without a chained traceback.
    pytest.fail(problem, pytrace=False)


_shared = _SharedControlPlane()


@pytest.fixture(scope="session")
def kube_control_plane() -> Iterator[ControlPlane]:
    """A running etcd + kube-apiserver v1.37 for the whole session (see ControlPlane for its API).

    Fails, naming the build command, when the Go-built binaries are missing. Tests share it: put
    objects in a `kube_namespace`, and clean up any cluster-scoped objects (nodes, RBAC) you create.
    """
    control_plane = _shared.acquire()
    try:
        yield control_plane
    finally:
        _shared.release()


@pytest.fixture
def kube_namespace(kube_control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace with a random name; its contents are deleted after the test."""
    name = create_namespace(kube_control_plane)
    try:
        yield name
    finally:
        delete_namespace(kube_control_plane, name)
