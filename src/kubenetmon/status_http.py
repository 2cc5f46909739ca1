"""The small HTTP endpoint every daemon serves: /metrics for Prometheus and health checks for kubelet.

A check answers (ok, detail); its page is 200 with the detail when ok, 503 otherwise, so a probe and a
person reading the page see the same verdict and the reason for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

Check = Callable[[], tuple[bool, str]]


async def serve(
    host: str,
    port: int,
    checks: Mapping[str, Check],
    registries: Sequence[CollectorRegistry] = (REGISTRY,),
) -> web.AppRunner:
    """Serve /metrics (every registry, concatenated) and one page per check, e.g. {"/healthz": ...},
    until the returned runner is cleaned up."""

    async def metrics_page(request: web.Request) -> web.Response:
        body = b"".join(generate_latest(registry) for registry in registries)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def check_page(check: Check) -> Callable[[web.Request], object]:
        async def page(request: web.Request) -> web.Response:
            ok, detail = check()
            return web.Response(status=200 if ok else 503, text=detail.rstrip("\n") + "\n")

        return page

    app = web.Application()
    app.router.add_get("/metrics", metrics_page)
    for path, check in checks.items():
        app.router.add_get(path, check_page(check))  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
