"""Finding out whether a chart value is used: render with the value changed and see the output change.

A value counts as used when, in at least one profile, some other valid value for it renders different
manifests. The other values tried are the ones the chart's defaults and examples give it, then one
derived from its schema type (the other booleans, a neighbouring integer, another enum member, ...).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from scripts.chart_docs import lookup

from tests.charts.rendering import HelmError, Profile, chart_defaults, merged, profiles, template


def with_value(values: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `values` with the dotted path set to `value` (intermediate maps created)."""
    result = copy.deepcopy(dict(values))
    node = result
    *parents, leaf = path.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = copy.deepcopy(value)
    return result


def _type_alternatives(schema: Mapping[str, Any], current: Any) -> Iterator[Any]:
    kind = schema.get("type")
    if "enum" in schema:
        yield from schema["enum"]
    elif kind == "boolean":
        yield not current
    elif kind == "integer":
        yield current + 1 if current + 1 <= schema.get("maximum", current + 1) else current - 1
    elif kind == "number":
        yield min(current * 2 or 1, schema.get("maximum", current * 2 or 1))
    elif kind == "string" and "pattern" not in schema:
        yield f"{current}-changed" if current else "changed"
    elif kind == "object" and schema.get("additionalProperties") == {"type": "string"}:
        yield {"example.com/changed": "true"}


def alternatives(chart: str, path: str, schema: Mapping[str, Any], current: Any) -> list[Any]:
    """Values to try instead of `current`: from defaults and examples first, then from the schema."""
    found: list[Any] = []
    for profile in profiles(chart):
        try:
            found.append(lookup(merged(chart_defaults(chart), profile.overrides()), path))
        except KeyError:
            continue
    found += list(_type_alternatives(schema, current))
    unique: list[Any] = []
    for value in found:
        if value != current and value not in unique:
            unique.append(value)
    return unique


class RenderCache:
    """Rendered manifests of each profile, so each is rendered once per test."""

    def __init__(self, helm: Path) -> None:
        self.helm = helm
        self._rendered: dict[str, str] = {}

    def base(self, profile: Profile) -> str:
        key = str(profile)
        if key not in self._rendered:
            self._rendered[key] = template(self.helm, profile)
        return self._rendered[key]


def effect_of(cache: RenderCache, chart: str, path: str, schema: Mapping[str, Any]) -> str | None:
    """A description of one change of the value that changes the output, or None if none does."""
    defaults = chart_defaults(chart)
    for profile in profiles(chart):
        overrides = profile.overrides()
        current = lookup(merged(defaults, overrides), path)
        for value in alternatives(chart, path, schema, current):
            # One values file holding the whole profile, so a map value replaces rather than merges.
            changed = with_value(overrides, path, value)
            try:
                output = template(cache.helm, Profile(chart, None), changed)
            except HelmError:
                continue
            if output != cache.base(profile):
                return f"{profile}: {current!r} -> {value!r}"
    return None
