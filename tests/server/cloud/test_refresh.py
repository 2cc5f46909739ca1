"""Refresh from a local HTTP server: swap on success, keep the last good copy on any failure, cache."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from kubenetmon.server.cloud.providers import Provider
from kubenetmon.server.cloud.refresh import RangeRefresher, RefreshOutcome, RefreshSettings
from tests.server.cloud.fixtures import AWS, AZURE, GCP, GOOG, dump

Routes = dict[str, tuple[int, bytes]]


@pytest.fixture
def server() -> Iterator[tuple[str, Routes]]:
    routes: Routes = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def good_routes(base: str) -> Routes:
    return {
        "/aws.json": (200, dump(AWS)),
        "/cloud.json": (200, dump(GCP)),
        "/goog.json": (200, dump(GOOG)),
        "/azure.html": (200, f'<a href="{base}/ServiceTags_Public_20261126.json">download</a>'.encode()),
        "/ServiceTags_Public_20261126.json": (200, dump(AZURE)),
    }


def settings(base: str, cache_dir: Path | None = None, fraction: float = 0.0) -> RefreshSettings:
    paths = {
        Provider.AWS: "/aws.json",
        Provider.GCP: "/cloud.json",
        Provider.GOOGLE: "/goog.json",
        Provider.AZURE: "/azure.html",
    }
    return RefreshSettings(
        urls={p: base + path for p, path in paths.items()},
        timeout_seconds=5,
        min_kept_fraction=fraction,
        cache_dir=cache_dir,
    )


def refreshes(provider: Provider, outcome: RefreshOutcome) -> float:
    labels = {"provider": provider.value, "outcome": outcome.value}
    return REGISTRY.get_sample_value("kubenetmon_server_cloud_ranges_refresh_total", labels) or 0.0


def test_a_good_refresh_swaps_the_table_and_caches_the_files(
    server: tuple[str, Routes], tmp_path: Path
) -> None:
    base, routes = server
    routes.update(good_routes(base))
    refresher = RangeRefresher(settings(base, tmp_path))
    assert refresher.ranges.cloud_range("198.51.100.7") is None
    outcomes = asyncio.run(refresher.refresh_once())
    assert set(outcomes.values()) == {RefreshOutcome.OK}
    found = refresher.ranges.cloud_range("198.51.100.7")
    assert (found.cloud, found.region, found.cloud_service) == ("aws", "us-east-1", "s3")  # type: ignore[union-attr]
    assert refresher.ranges.cloud_range("2001:db8:1::9").cloud_service == "azurestorage"  # type: ignore[union-attr]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "aws-ip-ranges.json.gz",
        "azure-service-tags.json.gz",
        "gcp-cloud.json.gz",
        "google-goog.json.gz",
    ]


def test_start_up_uses_the_cached_files_without_any_network(
    server: tuple[str, Routes], tmp_path: Path
) -> None:
    base, routes = server
    routes.update(good_routes(base))
    asyncio.run(RangeRefresher(settings(base, tmp_path)).refresh_once())
    restarted = RangeRefresher(RefreshSettings(urls={}, cache_dir=tmp_path))
    assert restarted.ranges.cloud_range("198.51.100.7").cloud_service == "s3"  # type: ignore[union-attr]
    assert restarted.ranges.table.prefix_counts[Provider.AWS] == 4


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        ((500, b"internal error"), RefreshOutcome.FETCH_ERROR),
        ((200, b"<html>maintenance</html>"), RefreshOutcome.INVALID),
        ((200, b'{"prefixes": [{"ip_prefix": "nonsense"}]}'), RefreshOutcome.INVALID),
    ],
)
def test_a_failed_or_garbage_download_keeps_the_previous_table_and_is_counted(
    server: tuple[str, Routes], response: tuple[int, bytes], outcome: RefreshOutcome
) -> None:
    base, routes = server
    routes.update(good_routes(base))
    refresher = RangeRefresher(settings(base))
    asyncio.run(refresher.refresh_once())
    before = refreshes(Provider.AWS, outcome)
    routes["/aws.json"] = response
    assert asyncio.run(refresher.refresh_once())[Provider.AWS] is outcome
    assert refresher.ranges.cloud_range("198.51.100.7").cloud_service == "s3"  # type: ignore[union-attr]
    assert refreshes(Provider.AWS, outcome) == before + 1


def test_a_file_that_lost_most_of_its_prefixes_is_refused_as_truncated(server: tuple[str, Routes]) -> None:
    base, routes = server
    routes.update(good_routes(base))
    refresher = RangeRefresher(settings(base, fraction=0.5))
    outcomes = asyncio.run(refresher.refresh_once())
    assert outcomes[Provider.AWS] is RefreshOutcome.SHRUNK
    assert refresher.ranges.table.prefix_counts[Provider.AWS] > 10_000


def test_an_azure_page_without_a_service_tags_link_is_invalid(server: tuple[str, Routes]) -> None:
    base, routes = server
    routes.update(good_routes(base))
    routes["/azure.html"] = (200, b"<html>moved</html>")
    refresher = RangeRefresher(settings(base))
    assert asyncio.run(refresher.refresh_once())[Provider.AZURE] is RefreshOutcome.INVALID


def test_an_unreachable_server_neither_blocks_start_up_nor_raises() -> None:
    unreachable = RefreshSettings(urls={Provider.AWS: "http://127.0.0.1:9/aws.json"}, timeout_seconds=2)
    refresher = RangeRefresher(unreachable)
    outcomes = asyncio.run(refresher.refresh_once())
    assert outcomes[Provider.AWS] is RefreshOutcome.FETCH_ERROR
    assert outcomes[Provider.GCP] is RefreshOutcome.DISABLED
    assert refresher.ranges.cloud_range("52.216.8.1").cloud_service == "s3"  # type: ignore[union-attr]
