"""Fixtures of the chart tests: the Go-built helm binary, the shared test control plane with the CRDs the
charts use, and a kubenetmon-server release installed there with its defaults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.charts.crds import crd_files
from tests.charts.releases import Release, install
from tests.charts.rendering import Profile
from tests.kube import fixtures as kube_fixtures
from tests.kube.binaries import MissingBinariesError, find_binaries
from tests.kube.control_plane import ControlPlane
from tests.kube.identity import ClientIdentity
from tests.kube.namespaces import create_namespace, delete_namespace

kube_control_plane = kube_fixtures.kube_control_plane


@pytest.fixture(scope="session")
def helm() -> Path:
    """helm v3.22 built by scripts/build-test-binaries.sh; fails, naming the build command, if missing."""
    try:
        return find_binaries().helm
    except MissingBinariesError as missing:
        pytest.fail(str(missing), pytrace=False)


@pytest.fixture(scope="session")
def crds(kube_control_plane: ControlPlane) -> Iterator[None]:
    """The cert-manager and Prometheus Operator CRD subsets, so their kinds are known and checked."""
    args = [arg for path in crd_files() for arg in ("-f", str(path))]
    kube_control_plane.kubectl("apply", *args)
    kube_control_plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", *args)
    try:
        yield
    finally:
        kube_control_plane.kubectl("delete", "--ignore-not-found", *args)


@pytest.fixture(scope="module")
def namespace(kube_control_plane: ControlPlane) -> Iterator[str]:
    """A namespace for one test module's releases and objects, emptied afterwards."""
    name = create_namespace(kube_control_plane, prefix="charts")
    try:
        yield name
    finally:
        delete_namespace(kube_control_plane, name)


@pytest.fixture(scope="module")
def server(kube_control_plane: ControlPlane, namespace: str, crds: None) -> Iterator[Release]:
    """kubenetmon-server installed for real with its defaults."""
    release = install(kube_control_plane, Profile("kubenetmon-server", None), namespace)
    try:
        yield release
    finally:
        kube_control_plane.helm("uninstall", release.name, "--namespace", namespace)


@pytest.fixture(scope="module")
def server_account(kube_control_plane: ControlPlane, server: Release) -> ClientIdentity:
    """A token of the ServiceAccount the chart created for the server."""
    return kube_control_plane.service_account(server.namespace, server.fullname)
