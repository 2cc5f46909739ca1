"""Parsers for the vendors' published IP range files, each resolving its own duplicate prefixes.

Every parser takes the raw file bytes and returns one `RangeEntry` per distinct prefix, with names
normalised (lower case, spaces removed) so that 'Google Cloud', 'AzureStorage' and 'S3' compare as
'googlecloud', 'azurestorage' and 's3'. A file that does not have the vendor's shape is rejected whole
with a `RangeFileError` naming the file, the path inside it and what is wrong: a refresh must never swap
a good table for half of a bad one.

Duplicate rules (the vendors list one prefix under several services):

* AWS: data services first (S3, DynamoDB), then any other named service, then AMAZON, then EC2; ties
  go to the alphabetically first service, so the result does not depend on file order.
* GCP: cloud.json entries are regional; goog.json lists Google's other services (region 'global',
  service 'googleservice'). For the same prefix in both, cloud.json wins (see `merge_google`).
* Azure: a prefix usually appears in a global tag, a regional tag and the catch-all AzureCloud tags.
  Its region comes from a regional tag when there is one ('global' otherwise); its service is storage
  if any tag says so, else a specific service, else the generic 'azurecloud'. The service is the tag's
  `systemService` compared case-insensitively, or the tag name before its first '.' when the tag has
  none (AzureCloud.* tags, and the bundled snapshot, which lacks `systemService`).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kubenetmon.errors import KubenetmonError
from kubenetmon.server.cloud.ranges import parse_prefix


class RangeFileError(KubenetmonError):
    """A cloud range file does not have its vendor's shape; the message says where and how."""


class Provider(enum.StrEnum):
    """One published range file. GOOGLE is goog.json (Google services beyond Google Cloud)."""

    AWS = "aws"
    GCP = "gcp"
    GOOGLE = "google"
    AZURE = "azure"

    @property
    def cloud(self) -> str:
        """The cloud name rows carry ('gcp' for both Google files)."""
        return "gcp" if self is Provider.GOOGLE else self.value


DEFAULT_URLS: dict[Provider, str] = {
    Provider.AWS: "https://ip-ranges.amazonaws.com/ip-ranges.json",
    Provider.GCP: "https://www.gstatic.com/ipranges/cloud.json",
    Provider.GOOGLE: "https://www.gstatic.com/ipranges/goog.json",
    # Microsoft publishes the JSON under a dated name that changes weekly; the download page links it.
    Provider.AZURE: "https://www.microsoft.com/en-us/download/details.aspx?id=56519",
}

GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class RangeEntry:
    """One distinct prefix and what it belongs to, names normalised."""

    prefix: str
    cloud: str
    region: str
    service: str


def normalise(name: str) -> str:
    """Lower case without spaces: the form every cloud, region and service name is compared in."""
    return name.strip().lower().replace(" ", "")


def parse(provider: Provider, data: bytes) -> list[RangeEntry]:
    """Parse one provider's file; raises RangeFileError when it is not what the vendor publishes."""
    document = _json(provider, data)
    return _PARSERS[provider](document)


def merge_google(cloud_entries: list[RangeEntry], goog_entries: list[RangeEntry]) -> list[RangeEntry]:
    """cloud.json plus the goog.json prefixes it does not list itself."""
    known = {entry.prefix for entry in cloud_entries}
    return cloud_entries + [entry for entry in goog_entries if entry.prefix not in known]


def _json(provider: Provider, data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RangeFileError(f"{provider} range file is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise RangeFileError(f"{provider} range file: top level is {type(document).__name__}, not an object")
    return document


def _items(provider: Provider, document: dict[str, Any], key: str, required: bool = True) -> list[Any]:
    items = document.get(key)
    if items is None and not required:
        return []
    if not isinstance(items, list):
        raise RangeFileError(f"{provider} range file: '{key}' is missing or not a list")
    return items


def _text(provider: Provider, item: Any, path: str, key: str, required: bool = True) -> str:
    value = item.get(key) if isinstance(item, dict) else None
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise RangeFileError(f"{provider} range file: {path}.{key} is missing or not a string")
    return value


def _prefix(provider: Provider, value: Any, path: str) -> str:
    if isinstance(value, str):
        try:
            parse_prefix(value.strip())
            return value.strip()
        except ValueError:
            pass
    raise RangeFileError(f"{provider} range file: {path} = {value!r} is not an IP prefix")


def _non_empty(provider: Provider, entries: list[RangeEntry]) -> list[RangeEntry]:
    if not entries:
        raise RangeFileError(f"{provider} range file lists no prefixes")
    return entries


_AWS_DATA_SERVICES = frozenset({"s3", "dynamodb"})


def _aws_rank(service: str) -> tuple[int, str]:
    if service in _AWS_DATA_SERVICES:
        return (0, service)
    if service == "amazon":
        return (2, service)
    if service == "ec2":
        return (3, service)
    return (1, service)


def _aws(document: dict[str, Any]) -> list[RangeEntry]:
    best: dict[str, RangeEntry] = {}
    for key, prefix_key in (("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")):
        for index, item in enumerate(_items(Provider.AWS, document, key, required=key == "prefixes")):
            path = f"{key}[{index}]"
            prefix = _prefix(
                Provider.AWS, _text(Provider.AWS, item, path, prefix_key), f"{path}.{prefix_key}"
            )
            entry = RangeEntry(
                prefix,
                "aws",
                normalise(_text(Provider.AWS, item, path, "region")) or GLOBAL,
                normalise(_text(Provider.AWS, item, path, "service")),
            )
            current = best.get(prefix)
            if current is None or _aws_rank(entry.service) < _aws_rank(current.service):
                best[prefix] = entry
    return _non_empty(Provider.AWS, list(best.values()))


def _google_prefixes(provider: Provider, document: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for index, item in enumerate(_items(provider, document, "prefixes")):
        path = f"prefixes[{index}]"
        if not isinstance(item, dict):
            raise RangeFileError(f"{provider} range file: {path} is not an object")
        key = "ipv4Prefix" if "ipv4Prefix" in item else "ipv6Prefix"
        yield _prefix(provider, _text(provider, item, path, key), f"{path}.{key}"), path, item


def _gcp(document: dict[str, Any]) -> list[RangeEntry]:
    entries = {
        prefix: RangeEntry(
            prefix,
            "gcp",
            normalise(_text(Provider.GCP, item, path, "scope")) or GLOBAL,
            normalise(_text(Provider.GCP, item, path, "service")),
        )
        for prefix, path, item in _google_prefixes(Provider.GCP, document)
    }
    return _non_empty(Provider.GCP, list(entries.values()))


def _google(document: dict[str, Any]) -> list[RangeEntry]:
    entries = {
        prefix: RangeEntry(prefix, "gcp", GLOBAL, "googleservice")
        for prefix, _path, _item in _google_prefixes(Provider.GOOGLE, document)
    }
    return _non_empty(Provider.GOOGLE, list(entries.values()))


_AZURE_STORAGE = frozenset({"azurestorage", "storage"})
_AZURE_GENERIC = "azurecloud"


def _azure_rank(service: str) -> tuple[int, str]:
    if service in _AZURE_STORAGE:
        return (0, service)
    if service == _AZURE_GENERIC:
        return (2, service)
    return (1, service)


def _azure(document: dict[str, Any]) -> list[RangeEntry]:
    services: dict[str, str] = {}
    regions: dict[str, tuple[tuple[int, str], str]] = {}  # prefix -> (rank of the tag's service, region)
    for index, tag in enumerate(_items(Provider.AZURE, document, "values")):
        path = f"values[{index}]"
        name = _text(Provider.AZURE, tag, path, "name")
        properties = tag.get("properties")
        if not isinstance(properties, dict):
            raise RangeFileError(f"azure range file: {path}.properties is missing or not an object")
        props_path = f"{path}.properties"
        system_service = _text(Provider.AZURE, properties, props_path, "systemService", required=False)
        service = normalise(system_service) or normalise(name.split(".", 1)[0])
        region = normalise(_text(Provider.AZURE, properties, props_path, "region", required=False))
        for number, value in enumerate(_items(Provider.AZURE, properties, "addressPrefixes")):
            prefix = _prefix(Provider.AZURE, value, f"{props_path}.addressPrefixes[{number}]")
            rank = _azure_rank(service)
            if prefix not in services or rank < _azure_rank(services[prefix]):
                services[prefix] = service
            if region and (prefix not in regions or (rank, region) < regions[prefix]):
                regions[prefix] = (rank, region)
    entries = [
        RangeEntry(prefix, "azure", regions[prefix][1] if prefix in regions else GLOBAL, service)
        for prefix, service in services.items()
    ]
    return _non_empty(Provider.AZURE, entries)


_PARSERS: dict[Provider, Callable[[dict[str, Any]], list[RangeEntry]]] = {
    Provider.AWS: _aws,
    Provider.GCP: _gcp,
    Provider.GOOGLE: _google,
    Provider.AZURE: _azure,
}
