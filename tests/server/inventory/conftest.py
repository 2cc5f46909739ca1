"""The real kube-apiserver fixtures for test_apiserver.py."""

from tests.kube.fixtures import kube_control_plane, kube_namespace  # noqa: F401
