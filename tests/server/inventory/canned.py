"""A scripted stand-in for the API server, on loopback, for what a real one will not do on demand.

Each request to a collection path takes the next scripted reply for that path and request type
(list or watch); with none left, a list answers an empty collection and a watch stays open and
silent until the server stops. Every request's query is recorded, so tests can check what the
informer asked for (resourceVersion, limit, continue, bookmarks).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from kubernetes_asyncio.client import Configuration

from kubenetmon.server.inventory.kube import KubeClient


@dataclass
class ListReply:
    """One list page, or an error status with a Status body."""

    items: Sequence[dict[str, Any]] = ()
    resource_version: str = "1"
    continue_token: str = ""
    status: int = 200
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class WatchReply:
    """A watch response: status, then `lines` (dicts are JSON-encoded, bytes sent as they are); then the
    stream closes (the server's timeoutSeconds ran out) or, with `hang`, stays open and silent."""

    lines: Sequence[dict[str, Any] | bytes] = ()
    hang: bool = False
    status: int = 200
    message: str = ""


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A watch event line."""
    return {"type": kind, "object": obj}


def bookmark(resource_version: str) -> dict[str, Any]:
    """A BOOKMARK event, shaped as the API server sends it (an object with only its resourceVersion)."""
    return event(
        "BOOKMARK", {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": resource_version}}
    )


def gone(message: str = "too old resource version: 1 (42)") -> dict[str, Any]:
    """An ERROR event carrying a 410 Status."""
    return event(
        "ERROR",
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": "Expired",
            "code": 410,
        },
    )


@dataclass
class Request:
    path: str
    query: dict[str, str]

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch") == "true"


class CannedApi:
    """The scripted server; `client()` gives a `KubeClient` pointed at it."""

    def __init__(self) -> None:
        self.lists: dict[str, deque[ListReply]] = defaultdict(deque)
        self.watches: dict[str, deque[WatchReply]] = defaultdict(deque)
        self.requests: list[Request] = []
        self._closing = asyncio.Event()
        self.url = ""

    def requests_to(self, path: str, *, watch: bool) -> list[Request]:
        return [r for r in self.requests if r.path == path and r.is_watch == watch]

    def client(self) -> KubeClient:
        return KubeClient(Configuration(host=self.url))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        record = Request(request.path, dict(request.query))
        self.requests.append(record)
        if record.is_watch:
            queue = self.watches[request.path]
            return await self._watch(request, queue.popleft() if queue else WatchReply(hang=True))
        queue_ = self.lists[request.path]
        return self._list(queue_.popleft() if queue_ else ListReply())

    def _list(self, reply: ListReply) -> web.Response:
        if reply.status != 200:
            return _status(reply.status, reply.message, reply.headers)
        metadata = {"resourceVersion": reply.resource_version}
        if reply.continue_token:
            metadata["continue"] = reply.continue_token
        body = {"kind": "List", "apiVersion": "v1", "metadata": metadata, "items": list(reply.items)}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _watch(self, request: web.Request, reply: WatchReply) -> web.StreamResponse:
        if reply.status != 200:
            return _status(reply.status, reply.message, {})
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for line in reply.lines:
            await response.write((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n")
        if reply.hang:
            await self._closing.wait()
        return response

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[CannedApi]:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            self._closing.set()
            await runner.cleanup()


def _status(code: int, message: str, headers: dict[str, str]) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}
    return web.Response(
        status=code, body=orjson.dumps(body), content_type="application/json", headers=headers
    )
