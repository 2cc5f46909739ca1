"""Kubernetes API access: credentials, raw JSON over HTTP, and the one place statuses become exceptions.

Credentials come from kubernetes_asyncio's loaders (a kubeconfig file, or the pod's service account);
requests go through its aiohttp-based REST client with `_preload_content=False`, so bodies reach us
as bytes and are never turned into the generated typed models.

    InventoryError
    └── ApiError                 the API server answered with an error, or could not be reached
        ├── ApiUnavailable       connection refused/reset, TLS failure, timeout, 429, 5xx: retry later
        │   └── WatchStalled     a watch sent nothing, not even a bookmark, for the read timeout
        ├── ResourceGone         410: the resourceVersion or continue token expired; relist
        ├── Unauthorized         401: the credentials were rejected
        ├── Forbidden            403: RBAC denies the request; the message names the missing permission
        └── MalformedResponse    the body is not the JSON the API promises
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.client.rest import RESTClientObject
from kubernetes_asyncio.config import ConfigException, load_kube_config
from kubernetes_asyncio.config.incluster_config import InClusterConfigLoader

from kubenetmon.errors import InventoryError

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_ERROR_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class ApiResource:
    """A cluster-wide collection the inventory lists and watches."""

    plural: str
    group: str
    """API group; "" is the core group."""
    version: str

    @property
    def path(self) -> str:
        """The URL path of the collection across all namespaces."""
        if self.group:
            return f"/apis/{self.group}/{self.version}/{self.plural}"
        return f"/api/{self.version}/{self.plural}"

    def describe(self) -> str:
        """The resource as RBAC rules name it, e.g. 'endpointslices in API group "discovery.k8s.io"'."""
        group = f'"{self.group}"' if self.group else '"" (core)'
        return f"{self.plural} in API group {group}"


PODS = ApiResource("pods", "", "v1")
NODES = ApiResource("nodes", "", "v1")
SERVICES = ApiResource("services", "", "v1")
ENDPOINT_SLICES = ApiResource("endpointslices", "discovery.k8s.io", "v1")


class ApiError(InventoryError):
    """The API server could not serve a request; `status` is the HTTP status, 0 when there was none."""

    def __init__(self, message: str, status: int = 0, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ApiUnavailable(ApiError):
    """Worth retrying after a pause: the server is unreachable, overloaded or failing for now."""


class WatchStalled(ApiUnavailable):
    """A watch connection sent nothing for the read timeout: a dead connection, or a quiet collection
    the API server sends no bookmarks for (it sends none until its cache has seen one event)."""


class ResourceGone(ApiError):
    """The resourceVersion (or list continue token) is older than the server keeps history for."""


class Unauthorized(ApiError):
    """The API server rejected the credentials."""


class Forbidden(ApiError):
    """RBAC does not allow the request."""


class MalformedResponse(ApiError):
    """A body or watch line that is not valid API JSON."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where to find the API server and how to authenticate, in the order they are tried."""

    kubeconfig: str | None = None
    """A kubeconfig file; when unset, the service account (in a pod), else $KUBECONFIG or ~/.kube/config."""
    context: str | None = None
    """A context in the kubeconfig other than its current-context."""
    service_account_dir: str = SERVICE_ACCOUNT_DIR
    """Directory holding the mounted service account's `token` and `ca.crt`."""
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    """Where KUBERNETES_SERVICE_HOST/PORT and KUBECONFIG are read from."""


async def load_configuration(credentials: Credentials) -> Configuration:
    """A client configuration from the first source that applies (see `Credentials`)."""
    configuration = Configuration()
    environ = credentials.environ
    path = credentials.kubeconfig
    try:
        if path is None and environ.get("KUBERNETES_SERVICE_HOST"):
            directory = Path(credentials.service_account_dir)
            InClusterConfigLoader(
                token_filename=str(directory / "token"),
                cert_filename=str(directory / "ca.crt"),
                environ=dict(environ),
            ).load_and_set(configuration)
            return configuration
        path = _kubeconfig_path(path, environ)
        await load_kube_config(
            config_file=path, context=credentials.context, client_configuration=configuration
        )
    except ConfigException as exc:
        source = path or f"the service account in {credentials.service_account_dir}"
        raise InventoryError(f"cannot load Kubernetes credentials from {source}: {exc}") from exc
    return configuration


def _kubeconfig_path(explicit: str | None, environ: Mapping[str, str]) -> str:
    path = (
        explicit
        or (environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
        or str(Path.home() / ".kube/config")
    )
    if not Path(path).is_file():
        raise InventoryError(
            f"no Kubernetes credentials: kubeconfig {path} does not exist"
            + ("" if explicit else " and KUBERNETES_SERVICE_HOST is not set")
            + "; pass --kubeconfig PATH, or run in a pod with a service account"
        )
    return path


class KubeClient:
    """GET requests against one API server, answering raw bytes or lines; errors as `ApiError`s."""

    def __init__(self, configuration: Configuration) -> None:
        """Must be called inside a running event loop (the HTTP session is bound to it)."""
        self._configuration = configuration
        self._rest = RESTClientObject(configuration)
        self.host = str(configuration.host)

    @classmethod
    async def connect(cls, credentials: Credentials) -> KubeClient:
        """A client for the API server `credentials` lead to."""
        return cls(await load_configuration(credentials))

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._rest.close()

    async def list_page(self, resource: ApiResource, params: Mapping[str, str], seconds: float) -> bytes:
        """One page of a list, as the raw JSON body; the whole request may take up to `seconds`."""
        with _translated(self.host, "list", resource):
            response = await self._get(resource, "list", params, aiohttp.ClientTimeout(total=seconds))
            async with response:
                return await response.read()

    async def watch(
        self, resource: ApiResource, params: Mapping[str, str], read_timeout: float
    ) -> AsyncGenerator[bytes, None]:
        """The lines of a watch stream, stripped, empty ones skipped; silence longer than `read_timeout`
        raises `WatchStalled`. Close it with `contextlib.aclosing` to release the connection early."""
        limits = aiohttp.ClientTimeout(total=None, sock_connect=read_timeout, sock_read=read_timeout)
        with _translated(self.host, "watch", resource):
            response = await self._get(resource, "watch", {**params, "watch": "true"}, limits)
        async with response:
            while True:
                try:
                    with _translated(self.host, "watch", resource):
                        line = await response.content.readline()
                except ApiUnavailable as exc:
                    if isinstance(exc.__cause__, TimeoutError):
                        raise WatchStalled(
                            f"watch {resource.plural}: no event or bookmark for {read_timeout:g} s"
                        ) from exc
                    raise
                except ValueError as exc:  # aiohttp: a line longer than its read buffer (2 MiB)
                    raise MalformedResponse(f"watch {resource.plural}: oversized line: {exc}") from exc
                if not line:
                    return
                line = line.strip()
                if line:
                    yield line

    async def _get(
        self, resource: ApiResource, verb: str, params: Mapping[str, str], limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        headers = {"Accept": "application/json"}
        for setting in (await self._configuration.auth_settings()).values():
            headers[setting["key"]] = setting["value"]
        response: aiohttp.ClientResponse = await self._rest.request(
            "GET",
            self.host + resource.path,
            query_params=dict(params),
            headers=headers,
            _preload_content=False,
            _request_timeout=limits,
        )
        if response.status != 200:
            async with response:
                body = await response.content.read(_ERROR_BODY_LIMIT)
            raise status_error(
                response.status,
                body,
                verb,
                resource,
                self.host,
                retry_after=response.headers.get("Retry-After"),
            )
        return response


def status_error(
    status: int,
    body: bytes | Mapping[str, Any],
    verb: str,
    resource: ApiResource,
    host: str,
    *,
    retry_after: str | None = None,
) -> ApiError:
    """The exception for an error status (an HTTP response, or a watch ERROR event's Status object)."""
    message = _status_message(body)
    what = f"{verb} {resource.plural}"
    if status == 410:
        return ResourceGone(f"{what}: resourceVersion expired (410 Gone): {message}", status)
    if status == 401:
        return Unauthorized(
            f"{what}: the API server at {host} rejected our credentials (401 Unauthorized); check the "
            f"kubeconfig user or the service account token: {message}",
            status,
        )
    if status == 403:
        return Forbidden(
            f'{what}: forbidden (403). Missing permission: verb "{verb}" on {resource.describe()}, '
            f"cluster-wide. Grant it with a ClusterRole bound to the server's identity (the chart's "
            f"ClusterRole allows list and watch on pods, nodes, services and endpointslices). "
            f"API server said: {message}",
            status,
        )
    if status == 429 or status >= 500:
        return ApiUnavailable(
            f"{what}: API server at {host} answered {status}: {message}", status, _seconds(retry_after)
        )
    if status == 404:
        return ApiError(
            f"{what}: API server at {host} does not serve {resource.path} (404); "
            f"{resource.group or 'core'}/{resource.version} is needed: {message}",
            status,
        )
    return ApiError(f"{what}: API server at {host} answered {status}: {message}", status)


def _status_message(body: bytes | Mapping[str, Any]) -> str:
    if isinstance(body, Mapping):
        return str(body.get("message") or body.get("reason") or body)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace").strip() or "(empty body)"
    if isinstance(document, dict):
        return str(document.get("message") or document.get("reason") or document)
    return str(document)


def _seconds(retry_after: str | None) -> float:
    try:
        return max(0.0, float(retry_after)) if retry_after else 0.0
    except ValueError:
        return 0.0


@contextmanager
def _translated(host: str, verb: str, resource: ApiResource) -> Iterator[None]:
    """Turn transport failures (connection, TLS, timeout) into `ApiUnavailable`."""
    try:
        yield
    except TimeoutError as exc:
        raise ApiUnavailable(f"{verb} {resource.plural} at {host}: timed out") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise ApiUnavailable(f"{verb} {resource.plural} at {host}: {type(exc).__name__}: {exc}") from exc
