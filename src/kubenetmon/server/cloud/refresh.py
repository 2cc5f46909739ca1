"""Keep the cloud range table fresh without ever blocking start-up or losing the last good copy.

Each provider's file is fetched on its own: a failure, a non-JSON body, a file of the wrong shape or one
that lost more than half of its prefixes keeps that provider's previous entries, is logged and counted
(`kubenetmon_server_cloud_ranges_refresh_total{provider,outcome}`). Whenever at least one provider
brings a good file, the table is rebuilt from every provider's current entries and swapped in at once,
and the raw file is cached (if a cache directory is configured) so the next start begins from it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import Counter, Gauge

from kubenetmon.server.cloud.providers import DEFAULT_URLS, Provider, RangeEntry, RangeFileError, parse
from kubenetmon.server.cloud.snapshot import startup_entries, write_cache
from kubenetmon.server.cloud.table import CloudRanges, CloudRangeTable

log = logging.getLogger(__name__)

REFRESHES = Counter(
    "kubenetmon_server_cloud_ranges_refresh_total",
    "Cloud range file refresh attempts by provider and outcome.",
    ["provider", "outcome"],
)
PREFIXES = Gauge(
    "kubenetmon_server_cloud_ranges_prefixes", "Distinct prefixes in use per provider.", ["provider"]
)
LAST_SUCCESS = Gauge(
    "kubenetmon_server_cloud_ranges_last_success_timestamp_seconds",
    "When a provider's file was last refreshed successfully (0: still the start-up copy).",
    ["provider"],
)

# The Azure download page links the current dated file; any URL ending in this name is accepted.
_AZURE_LINK = re.compile(rb"""["'](https?://[^"']*ServiceTags_Public_\d{8}\.json)["']""")


class RefreshOutcome(enum.StrEnum):
    """What one provider's refresh attempt did."""

    OK = "ok"
    FETCH_ERROR = "fetch_error"
    """The download failed (connection, timeout, HTTP status, size limit)."""
    INVALID = "invalid"
    """The body was not the vendor's format."""
    SHRUNK = "shrunk"
    """Valid, but it lost more than `min_kept_fraction` of the prefixes: more likely truncated than real."""
    DISABLED = "disabled"
    """No URL is configured for this provider."""


@dataclass(frozen=True, slots=True)
class RefreshSettings:
    """How and where cloud range files are refreshed."""

    urls: Mapping[Provider, str] = field(default_factory=lambda: dict(DEFAULT_URLS))
    """Per provider; an empty or missing URL disables that provider's refresh (its start-up copy stays)."""
    interval_seconds: float = 6 * 3600
    """Vendors change their files a few times a week; four checks a day keep the lag under a day."""
    timeout_seconds: float = 30.0
    max_bytes: int = 64 * 1024 * 1024
    """The Azure file is about 4 MB; anything near this limit is not a range file."""
    min_kept_fraction: float = 0.5
    cache_dir: Path | None = None
    """Where good files are cached between restarts; None keeps them in memory only."""


class RangeRefresher:
    """Owns the per-provider entries behind a `CloudRanges` and refreshes them from the vendors."""

    def __init__(self, settings: RefreshSettings) -> None:
        self.settings = settings
        self._entries: dict[Provider, list[RangeEntry]] = startup_entries(settings.cache_dir)
        self.ranges = CloudRanges(CloudRangeTable(self._entries))
        for provider, entries in self._entries.items():
            PREFIXES.labels(provider.value).set(len(entries))
            LAST_SUCCESS.labels(provider.value).set(0)

    async def run(self) -> None:
        """Refresh forever, every `interval_seconds`, starting at once. Never raises for a bad download."""
        while True:
            await self.refresh_once()
            await asyncio.sleep(self.settings.interval_seconds)

    async def refresh_once(self) -> dict[Provider, RefreshOutcome]:
        """Try every provider once; swap in a rebuilt table if any of them brought a good file."""
        outcomes = {provider: await self._refresh(provider) for provider in Provider}
        if RefreshOutcome.OK in outcomes.values():
            table = await asyncio.to_thread(CloudRangeTable, dict(self._entries))
            self.ranges.swap(table)
        return outcomes

    async def _refresh(self, provider: Provider) -> RefreshOutcome:
        url = self.settings.urls.get(provider, "")
        if not url:
            return RefreshOutcome.DISABLED
        try:
            data, entries = await asyncio.to_thread(self._download, provider, url)
        except OSError as exc:
            return self._failed(provider, RefreshOutcome.FETCH_ERROR, f"cannot download {url}: {exc}")
        except RangeFileError as exc:
            return self._failed(provider, RefreshOutcome.INVALID, f"{url} is not a valid range file: {exc}")
        previous = len(self._entries[provider])
        if len(entries) < previous * self.settings.min_kept_fraction:
            return self._failed(
                provider,
                RefreshOutcome.SHRUNK,
                f"{url} lists {len(entries)} prefixes against {previous} before; refusing it as truncated",
            )
        self._entries[provider] = entries
        if self.settings.cache_dir is not None:
            try:
                await asyncio.to_thread(write_cache, self.settings.cache_dir, provider, data)
            except OSError as exc:
                log.warning("cannot cache %s ranges in %s: %s", provider, self.settings.cache_dir, exc)
        REFRESHES.labels(provider.value, RefreshOutcome.OK.value).inc()
        PREFIXES.labels(provider.value).set(len(entries))
        LAST_SUCCESS.labels(provider.value).set(time.time())
        log.info("refreshed %s cloud ranges from %s: %d prefixes", provider, url, len(entries))
        return RefreshOutcome.OK

    def _failed(self, provider: Provider, outcome: RefreshOutcome, message: str) -> RefreshOutcome:
        REFRESHES.labels(provider.value, outcome.value).inc()
        log.warning("%s cloud ranges not refreshed, keeping the previous copy: %s", provider, message)
        return outcome

    def _download(self, provider: Provider, url: str) -> tuple[bytes, list[RangeEntry]]:
        data = self._fetch(url)
        if provider is Provider.AZURE and not data.lstrip().startswith(b"{"):
            link = _AZURE_LINK.search(data)
            if link is None:
                raise RangeFileError(f"azure download page {url} links no ServiceTags_Public_YYYYMMDD.json")
            data = self._fetch(link.group(1).decode())
        return data, parse(provider, data)

    def _fetch(self, url: str) -> bytes:
        request = urllib.request.Request(url, headers={"User-Agent": "kubenetmon"})
        with urllib.request.urlopen(request, timeout=self.settings.timeout_seconds) as response:
            data: bytes = response.read(self.settings.max_bytes + 1)
        if len(data) > self.settings.max_bytes:
            raise OSError(f"response exceeds {self.settings.max_bytes} bytes")
        return data
