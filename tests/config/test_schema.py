"""The committed JSON schema matches the model, and describes the example file."""

from __future__ import annotations

import json

import jsonschema
import pytest
from ruamel.yaml import YAML

from platform_tools.config.schema import SCHEMA_PATH, render_schema

pytestmark = pytest.mark.unit


def test_committed_schema_is_fresh():
    assert SCHEMA_PATH.read_text() == render_schema(), (
        "platform.schema.json is stale: run `make schema` (parhelion config schema --write)"
    )


def test_example_validates_against_schema(example_text):
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(YAML(typ="safe").load(example_text), schema)


def test_schema_rejects_unknown_keys(example_text):
    schema = json.loads(SCHEMA_PATH.read_text())
    data = YAML(typ="safe").load(example_text)
    data["hub"]["admin"] = ["x"]
    with pytest.raises(jsonschema.ValidationError, match="admin"):
        jsonschema.validate(data, schema)


def test_schema_patterns_are_portable():
    """Go's regexp (helm's schema check) has no look-around: keep patterns RE2-safe."""
    text = SCHEMA_PATH.read_text()
    for construct in ("(?=", "(?!", "(?<=", "(?<!"):
        assert construct not in text
