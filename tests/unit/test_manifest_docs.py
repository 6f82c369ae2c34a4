"""Field descriptions and what is made of them: the checked-in JSON Schemas for editors,
`kubestep explain`, the OpenAPI document."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from kubestep import manifest_schema, models
from kubestep.manifest_schema import SCHEMA_FILES, explain, json_schema

ROOT = Path(__file__).resolve().parents[2]


def test_every_model_field_has_a_description() -> None:
    undocumented = [
        f"{name}.{field}"
        for name, cls in vars(models).items()
        if inspect.isclass(cls) and issubclass(cls, BaseModel) and cls.__module__ == models.__name__
        for field, info in cls.model_fields.items()
        if not (info.description or "").strip()
    ]
    assert undocumented == []


@pytest.mark.parametrize("kind, filename", list(SCHEMA_FILES.items()))
def test_checked_in_schemas_are_what_the_models_generate(kind: str, filename: str) -> None:
    checked_in = (ROOT / "schemas" / filename).read_text()
    assert checked_in == manifest_schema.dumps(json_schema(kind)), (
        f"schemas/{filename} is stale: run `kubestep schema --write schemas`"
    )


def test_the_examples_validate_against_the_manifest_schema() -> None:
    schema = json.loads((ROOT / "schemas" / "manifest.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            # The examples leave versions unquoted where YAML reads them as strings anyway.
            errors = list(validator.iter_errors(doc))
            assert errors == [], (path.name, [e.message for e in errors])
    typo = {
        "apiVersion": "kubestep.io/v1",
        "kind": "AWSCluster",
        "metadata": {"name": "x"},
        "spec": {"controlPlan": {}},
    }
    assert list(validator.iter_errors(typo)), "an unknown field must not validate"


def test_explain_walks_objects_lists_and_maps() -> None:
    control_plane = explain("cluster.spec.controlPlane")
    assert control_plane.path == "AWSCluster.spec.controlPlane" and control_plane.node.type == "Object"
    fields = {f.name: f for f in control_plane.fields}
    assert fields["version"].required and fields["version"].type == "string"
    assert fields["availabilityZones"].type == "[]string" and "items <= 5" in fields["availabilityZones"].constraints
    assert fields["tags"].type == "map[string]string"
    assert fields["instanceType"].default == "m5.large"
    effect = explain("np.spec.taints.effect").node
    assert effect.type == "string (one of: NoSchedule, PreferNoSchedule, NoExecute)" and effect.required
    with pytest.raises(manifest_schema.UnknownField, match="has no field 'nope'"):
        explain("cluster.spec.nope")
    with pytest.raises(manifest_schema.UnknownKind):
        explain("pod.spec")


def test_descriptions_flow_into_the_openapi_document() -> None:
    from kubestep.api.app import openapi_document

    components = openapi_document()["components"]["schemas"]
    version = components["ControlPlane"]["properties"]["version"]
    assert version["description"] == models.ControlPlane.model_fields["version"].description
    assert components["NodePoolSpec"]["properties"]["minNodeCount"]["description"]
