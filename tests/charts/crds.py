"""The custom resource kinds the charts may render (cert-manager, Prometheus Operator) and their schemas.

tests/charts/crds/*.yaml hold the subset of those APIs the charts use. The test apiserver gets them
installed; offline, objects are checked against the same schemas with unknown fields rejected, as the
apiserver's strict field validation does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRD_DIR = Path(__file__).resolve().parent / "crds"


def crd_files() -> list[Path]:
    """The CRD manifests, for `kubectl apply`."""
    return sorted(CRD_DIR.glob("*.yaml"))


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema with unknown fields rejected."""
    schemas = {}
    for path in crd_files():
        for crd in yaml.safe_load_all(path.read_text()):
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = _closed(version["schema"]["openAPIV3Schema"])
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def validate_custom_resource(obj: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError if obj breaks its CRD schema; KeyError for an unknown kind."""
    schema = crd_schemas()[(obj["apiVersion"], obj["kind"])]
    jsonschema.Draft4Validator(schema).validate(obj)


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    node = {key: value for key, value in schema.items() if not key.startswith("x-kubernetes-")}
    if "properties" in node:
        node["properties"] = {name: _closed(child) for name, child in node["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            node.setdefault("additionalProperties", False)
    if isinstance(node.get("items"), dict):
        node["items"] = _closed(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _closed(node["additionalProperties"])
    return node
