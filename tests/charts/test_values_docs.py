"""Every chart value is documented, shown in the README and used by a template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripts import chart_docs

from tests.charts.rendering import CHARTS, CHARTS_DIR
from tests.charts.value_usage import RenderCache, effect_of


@pytest.mark.parametrize("chart", CHARTS)
def test_every_value_has_a_comment_and_a_default(chart: str) -> None:
    docs = chart_docs.value_docs(CHARTS_DIR / chart)
    assert all(doc.doc for doc in docs)


def test_readme_values_tables_are_up_to_date() -> None:
    assert chart_docs.main(["--check"]) == 0, "run: python scripts/chart_docs.py"


def test_undocumented_value_is_reported(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    chart.mkdir()
    (chart / "values.yaml").write_text("# Documented.\na: 1\nb: 2\n")
    schema = {"type": "object", "additionalProperties": False, "properties": {"a": {}, "b": {}, "c": {}}}
    (chart / "values.schema.json").write_text(json.dumps(schema))
    with pytest.raises(chart_docs.UndocumentedValuesError) as error:
        chart_docs.value_docs(chart)
    assert str(error.value) == ("chart: b: no comment above it in values.yaml; c: no default in values.yaml")


def test_shared_helpers_are_identical_in_both_charts() -> None:
    agent, server = (CHARTS_DIR / chart / "templates" / "_helpers.tpl" for chart in CHARTS)
    assert agent.read_text() == server.read_text()


@pytest.mark.helm
@pytest.mark.slow
@pytest.mark.parametrize("chart", CHARTS)
def test_every_value_changes_the_rendered_manifests(helm: Path, chart: str) -> None:
    schema = json.loads((CHARTS_DIR / chart / "values.schema.json").read_text())
    nodes = dict(chart_docs.schema_paths(schema))
    cache = RenderCache(helm)
    unused = [
        doc.path
        for doc in chart_docs.value_docs(CHARTS_DIR / chart)
        if not doc.is_section and effect_of(cache, chart, doc.path, nodes[doc.path]) is None
    ]
    assert unused == [], "no template reads these values (or no example gives them another value)"
