"""Both charts pass `helm lint --strict` and render, with their defaults and with every example file."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.charts.rendering import (
    CHARTS,
    CHARTS_DIR,
    EXAMPLES_DIR,
    KUBE_VERSION,
    Profile,
    component,
    daemon,
    objects,
    profiles,
    run_helm,
    template,
)

pytestmark = pytest.mark.helm


@pytest.mark.parametrize("profile", profiles(), ids=str)
def test_profile_passes_helm_lint_strict(helm: Path, profile: Profile) -> None:
    args = ["lint", "--strict", str(profile.chart_dir), "--kube-version", KUBE_VERSION]
    if profile.values_file is not None:
        args += ["--values", str(profile.values_file)]
    output = run_helm(helm, *args)
    assert "0 chart(s) failed" in output


@pytest.mark.parametrize("profile", profiles(), ids=str)
def test_profile_renders_its_daemon(helm: Path, profile: Profile) -> None:
    workload, container_name = daemon(objects(template(helm, profile)))
    assert container_name == component(profile.chart)
    assert workload["spec"]["template"]["spec"]["containers"][0]["args"] == [container_name]


@pytest.mark.parametrize("chart", CHARTS)
def test_values_schema_is_a_valid_draft_07_schema(chart: str) -> None:
    # Helm once accepted malformed schema files silently (helm/helm#12994), so check the schema itself.
    schema = json.loads((CHARTS_DIR / chart / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)


@pytest.mark.parametrize("chart", CHARTS)
def test_values_schema_has_no_remote_references(chart: str) -> None:
    text = (CHARTS_DIR / chart / "values.schema.json").read_text()
    refs = [ref for ref in _refs(json.loads(text)) if not ref.startswith("#/")]
    assert refs == []


def test_every_example_belongs_to_a_chart() -> None:
    components = {component(chart) for chart in CHARTS}
    for example in EXAMPLES_DIR.glob("*.yaml"):
        assert example.stem.split("-")[0] in components, (
            f"{example.name}: name it <agent|server>-<purpose>.yaml"
        )


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []
