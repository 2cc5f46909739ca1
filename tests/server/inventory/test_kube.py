"""Credentials and error translation of the API client, without an API server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from kubernetes_asyncio.client import Configuration

from kubenetmon.errors import InventoryError
from kubenetmon.server.inventory.kube import (
    ENDPOINT_SLICES,
    PODS,
    ApiError,
    ApiUnavailable,
    Credentials,
    Forbidden,
    KubeClient,
    ResourceGone,
    Unauthorized,
    load_configuration,
    status_error,
)


def test_resource_paths_follow_the_api_group() -> None:
    assert PODS.path == "/api/v1/pods"
    assert ENDPOINT_SLICES.path == "/apis/discovery.k8s.io/v1/endpointslices"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (410, ResourceGone),
        (401, Unauthorized),
        (403, Forbidden),
        (429, ApiUnavailable),
        (500, ApiUnavailable),
        (503, ApiUnavailable),
        (404, ApiError),
        (400, ApiError),
    ],
)
def test_each_status_maps_to_one_error_class(status: int, kind: type[ApiError]) -> None:
    error = status_error(status, b'{"message": "said the server"}', "list", PODS, "https://k8s")
    assert type(error) is kind and error.status == status
    assert "said the server" in str(error)


def test_retry_after_is_kept_in_seconds() -> None:
    assert status_error(429, b"{}", "list", PODS, "h", retry_after="12").retry_after == 12
    assert status_error(429, b"{}", "list", PODS, "h", retry_after="Wed, 21 Oct 2015").retry_after == 0


def test_a_non_json_error_body_is_quoted_not_lost() -> None:
    error = status_error(502, b"<html>bad gateway</html>", "watch", PODS, "https://k8s")
    assert "<html>bad gateway</html>" in str(error)


def test_a_watch_error_event_status_object_maps_like_a_response() -> None:
    error = status_error(410, {"message": "too old resource version: 5 (9)"}, "watch", PODS, "h")
    assert isinstance(error, ResourceGone) and "too old resource version" in str(error)


async def test_without_any_credentials_the_error_says_what_to_pass(tmp_path: Path) -> None:
    credentials = Credentials(environ={"KUBECONFIG": str(tmp_path / "missing")})
    with pytest.raises(
        InventoryError, match="pass --kubeconfig PATH, or run in a pod with a service account"
    ):
        await load_configuration(credentials)


async def test_an_explicit_kubeconfig_that_does_not_exist_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InventoryError, match=f"kubeconfig {missing} does not exist"):
        await load_configuration(Credentials(kubeconfig=str(missing)))


async def test_an_unreadable_kubeconfig_is_named_with_the_loaders_reason(tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\ncontexts: []\nclusters: []\nusers: []\n")
    with pytest.raises(InventoryError, match=f"cannot load Kubernetes credentials from {broken}"):
        await load_configuration(Credentials(kubeconfig=str(broken)))


async def test_in_cluster_without_a_token_file_is_named(tmp_path: Path) -> None:
    credentials = Credentials(
        service_account_dir=str(tmp_path),
        environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"},
    )
    with pytest.raises(InventoryError, match=f"the service account in {tmp_path}"):
        await load_configuration(credentials)


async def test_in_cluster_files_and_variables_make_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("secret-token")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    credentials = Credentials(
        service_account_dir=str(tmp_path),
        environ={"KUBERNETES_SERVICE_HOST": "fd00:db8::1", "KUBERNETES_SERVICE_PORT": "443"},
    )
    configuration = await load_configuration(credentials)
    assert configuration.host == "https://[fd00:db8::1]:443"
    assert configuration.ssl_ca_cert == str(tmp_path / "ca.crt")
    settings = await configuration.auth_settings()
    assert settings["BearerToken"]["value"] == "Bearer secret-token"


async def test_a_connection_refused_is_unavailable_naming_the_server() -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    host = f"http://127.0.0.1:{port}"
    client = KubeClient(Configuration(host=host))
    try:
        with pytest.raises(ApiUnavailable, match=f"list pods at {host}"):
            await client.list_page(PODS, {"limit": "1"}, 5)
    finally:
        await client.aclose()
