"""Who talks to the test apiserver: a kubeconfig per identity, plus the same credentials for raw HTTP.

Kubeconfigs embed their certificates and tokens (`*-data` fields), so the file alone is enough for
kubectl, helm, kubernetes_asyncio or the product's own loader. The PEM files stay next to it for
clients that need paths, such as `ssl.SSLContext.load_cert_chain`.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """One user of the test cluster: a client certificate or a bearer token, never both."""

    name: str
    kubeconfig: Path
    server: str
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    token: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS context that trusts the apiserver and presents this identity's client cert, if any."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if self.cert_file is not None and self.key_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def headers(self) -> dict[str, str]:
        """HTTP headers that authenticate this identity (empty for client-cert identities)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


class ApiError(RuntimeError):
    """The apiserver answered a request with an error status."""


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """An apiserver answer: HTTP status and the decoded JSON body (a Status object on errors)."""

    status: int
    body: dict[str, Any]

    def ok(self) -> dict[str, Any]:
        """The body of a 2xx answer; raises ApiError with the status and message otherwise."""
        if not 200 <= self.status < 300:
            raise ApiError(f"HTTP {self.status}: {self.body.get('message', self.body)}")
        return self.body


def write_kubeconfig(identity: ClientIdentity) -> None:
    """Write `identity.kubeconfig` with everything embedded, for one cluster/user/context named `test`."""
    user: dict[str, str] = {}
    if identity.token is not None:
        user["token"] = identity.token
    if identity.cert_file is not None and identity.key_file is not None:
        user["client-certificate-data"] = _b64(identity.cert_file.read_bytes())
        user["client-key-data"] = _b64(identity.key_file.read_bytes())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {
                    "server": identity.server,
                    "certificate-authority-data": _b64(identity.ca_file.read_bytes()),
                },
            }
        ],
        "users": [{"name": identity.name, "user": user}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": identity.name}}],
        "current-context": "test",
    }
    identity.kubeconfig.touch(mode=0o600)
    identity.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))


def request(
    identity: ClientIdentity,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    content_type: str = "application/json",
) -> ApiResponse:
    """Send one JSON request to the apiserver as `identity`; HTTP errors come back as responses.

    `content_type` selects the patch flavour for PATCH, e.g. "application/merge-patch+json".
    """
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json", **identity.headers()}
    if data is not None:
        headers["Content-Type"] = content_type
    http_request = urllib.request.Request(identity.server + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(
            http_request, context=identity.ssl_context(), timeout=_REQUEST_TIMEOUT_SECONDS
        ) as response:
            return ApiResponse(response.status, _decode(response.read()))
    except urllib.error.HTTPError as error:
        with error:
            return ApiResponse(error.code, _decode(error.read()))


def _decode(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError:
        return {"raw": raw.decode(errors="replace")}
    return decoded if isinstance(decoded, dict) else {"items": decoded}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
