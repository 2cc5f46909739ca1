"""What the server's ServiceAccount must be able to do, and RBAC rules as comparable sets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Grant = tuple[str, str, str]
"""(API group, resource, verb)."""

# The server's informers list and watch these four collections, and need nothing else.
SERVER_NEEDS: frozenset[Grant] = frozenset(
    (group, resource, verb)
    for group, resource in [
        ("", "pods"),
        ("", "nodes"),
        ("", "services"),
        ("discovery.k8s.io", "endpointslices"),
    ]
    for verb in ("list", "watch")
)


def grants(rules: Iterable[Mapping[str, Any]]) -> set[Grant]:
    """Every (group, resource, verb) that RBAC PolicyRules (or a rules review's resourceRules) allow."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [""])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }
