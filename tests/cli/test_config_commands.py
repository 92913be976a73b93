"""`parhelion config validate` and `schema`, run as a person runs them."""

from __future__ import annotations

import pytest

from tests.platform import run_parhelion

pytestmark = pytest.mark.unit


parhelion = run_parhelion


def test_validate_accepts_the_example():
    result = parhelion("config", "validate", "hub_config/platform.local.yaml")
    assert result.returncode == 0, result.stderr
    assert "valid (2 profiles, 1 groups, 2 archives)" in result.stdout


def test_validate_prints_every_error_and_fails(tmp_path, example_text):
    bad = tmp_path / "platform.yaml"
    text = example_text.replace("cpu_limit: 2\n", "cpu_limit: -2\n")
    bad.write_text(text.replace("    image: helio\n", "    image: nope\n", 1))
    result = parhelion("config", "validate", str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"{bad}: 1 error(s)"
    assert lines[0].startswith(f"{bad}:") and "profiles.medium.cpu_limit" in lines[0]
    # the structural error comes first; once fixed, the reference error shows
    bad.write_text(bad.read_text().replace("cpu_limit: -2\n", "cpu_limit: 2\n"))
    result = parhelion("config", "validate", str(bad))
    assert "profiles.small.image: unknown image 'nope' (known: base, helio)" in result.stderr


def test_schema_check_passes_on_the_committed_schema():
    result = parhelion("config", "schema", "--check")
    assert result.returncode == 0, result.stderr


def test_schema_prints_json():
    result = parhelion("config", "schema")
    assert result.returncode == 0
    assert '"title": "PlatformConfig"' in result.stdout
