"""The JSON schema of platform.yaml, generated from the model and committed.

Editors (yaml-language-server), the Helm chart's values schema and Ansible's validate
role use the committed file; a test fails when it no longer matches the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from platform_tools.config.models import PlatformConfig

SCHEMA_PATH = Path(__file__).with_name("platform.schema.json")
SCHEMA_ID = "https://parhelion.dev/schemas/platform.schema.json"


def platform_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of platform.yaml."""
    schema = PlatformConfig.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


def render_schema() -> str:
    """The schema as the committed file's exact text."""
    return json.dumps(platform_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    path.write_text(render_schema(), encoding="utf-8")
    return path
