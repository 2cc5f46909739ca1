"""Every object the charts render, in every profile, is valid Kubernetes 1.37 (strict: no unknown fields).

Built-in kinds are checked against the OpenAPI schemas bundled in kubernetes-validate, offline; the
cert-manager and Prometheus Operator kinds against the CRD subsets in tests/charts/crds.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from tests.charts.crds import crd_schemas, validate_custom_resource
from tests.charts.rendering import Profile, objects, profiles, template

pytestmark = pytest.mark.helm


@pytest.mark.parametrize("profile", profiles(), ids=str)
def test_rendered_objects_match_the_kubernetes_1_37_openapi_schema(helm: Path, profile: Profile) -> None:
    custom = crd_schemas()
    failures = []
    for obj in objects(template(helm, profile)):
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            if (obj["apiVersion"], obj["kind"]) in custom:
                validate_custom_resource(obj)
            else:
                kubernetes_validate.validate(obj, "1.37", strict=True)
        except jsonschema.ValidationError as exc:
            failures.append(f"{name}: {exc.message} at {exc.json_path}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            failures.append(f"{name}: {exc.message}")
    assert failures == []


def test_strict_validation_rejects_an_unknown_field() -> None:
    # The check above is only worth something if a misspelt field fails it.
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"hostNetwrok": True, "containers": [{"name": "c", "image": "i"}]},
            },
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, "1.37", strict=True)


def test_crd_subset_rejects_an_unknown_field() -> None:
    certificate = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "x"},
        "spec": {"secretName": "x", "issuerRef": {"name": "ca"}, "dnsName": ["x"]},
    }
    with pytest.raises(jsonschema.ValidationError, match="dnsName"):
        validate_custom_resource(certificate)
