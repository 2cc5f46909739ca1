"""Fixtures for the control-plane tests; other folders import them the same way."""

from tests.kube.fixtures import kube_control_plane, kube_namespace  # noqa: F401
