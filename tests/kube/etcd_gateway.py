"""etcd's v3 JSON gateway (served on the client URL), for health checks and compaction in tests."""

from __future__ import annotations

import base64
import json
import urllib.request
from dataclasses import dataclass
from typing import Any

_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class EtcdGateway:
    """The gateway of one etcd at `url` (plain HTTP on loopback, as the test etcd listens)."""

    url: str

    def healthy(self) -> bool:
        """True when etcd's /health endpoint says so."""
        with urllib.request.urlopen(f"{self.url}/health", timeout=_TIMEOUT_SECONDS) as response:
            return bool(json.load(response).get("health") == "true")

    def put(self, key: bytes, value: bytes) -> int:
        """Write `key`, returning the new store revision."""
        answer = self._call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
        return int(answer["header"]["revision"])

    def compact(self, revision: int) -> None:
        """Discard all history below `revision`, physically, before returning."""
        self._call("/v3/kv/compaction", {"revision": revision, "physical": True})

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        call = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(call, timeout=_TIMEOUT_SECONDS) as response:
            answer: dict[str, Any] = json.load(response)
            return answer


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
