"""The range files the server starts with: a cached copy from an earlier refresh, else the bundled snapshot.

Start-up reads only local files, so it never waits on the network. The bundled snapshot (package data in
`snapshot/`, provenance in `snapshot/manifest.json`) is a real copy of the vendors' files as of its
date, partly reconstructed (see the manifest's `fidelity` per file); refreshes replace it at run time.
"""

from __future__ import annotations

import gzip
import json
import logging
from importlib import resources
from pathlib import Path

from kubenetmon.server.cloud.providers import Provider, RangeEntry, RangeFileError, parse

log = logging.getLogger(__name__)

SNAPSHOT_FILES: dict[Provider, str] = {
    Provider.AWS: "aws-ip-ranges.json.gz",
    Provider.GCP: "gcp-cloud.json.gz",
    Provider.GOOGLE: "google-goog.json.gz",
    Provider.AZURE: "azure-service-tags.json.gz",
}


def _snapshot_dir() -> resources.abc.Traversable:
    return resources.files("kubenetmon.server.cloud").joinpath("snapshot")


def snapshot_manifest() -> dict[str, object]:
    """Where each bundled file came from, its date and how faithful it is."""
    manifest: dict[str, object] = json.loads(_snapshot_dir().joinpath("manifest.json").read_text())
    return manifest


def bundled_document(provider: Provider) -> bytes:
    """The bundled snapshot of one provider's file, uncompressed."""
    return gzip.decompress(_snapshot_dir().joinpath(SNAPSHOT_FILES[provider]).read_bytes())


def cache_path(cache_dir: Path, provider: Provider) -> Path:
    """Where a refreshed copy of `provider`'s file is kept between restarts."""
    return cache_dir / SNAPSHOT_FILES[provider]


def write_cache(cache_dir: Path, provider: Provider, data: bytes) -> None:
    """Store a validated file atomically (write aside, then rename), so a crash leaves the old copy."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_path(cache_dir, provider)
    partial = target.with_suffix(".partial")
    partial.write_bytes(gzip.compress(data, mtime=0))
    partial.replace(target)


def startup_entries(cache_dir: Path | None) -> dict[Provider, list[RangeEntry]]:
    """Parsed entries per provider: the cached copy when it exists and parses, else the bundled one."""
    entries: dict[Provider, list[RangeEntry]] = {}
    for provider in Provider:
        cached = _cached_entries(cache_dir, provider) if cache_dir is not None else None
        entries[provider] = cached if cached is not None else parse(provider, bundled_document(provider))
    return entries


def _cached_entries(cache_dir: Path, provider: Provider) -> list[RangeEntry] | None:
    path = cache_path(cache_dir, provider)
    if not path.exists():
        return None
    try:
        return parse(provider, gzip.decompress(path.read_bytes()))
    except (OSError, EOFError, RangeFileError) as exc:
        log.warning(
            "ignoring cached %s ranges in %s, using the bundled snapshot instead: %s", provider, path, exc
        )
        return None
