"""Each configured archive is reachable by bucket, whatever the default endpoint is."""

from __future__ import annotations

import json

import pytest

from platform_tools.archives import storage_options
from platform_tools.config import parse_platform
from platform_tools.contract.environment import archive_storage_options

pytestmark = pytest.mark.unit


def test_public_aws_bucket_is_anonymous_on_aws_itself(example_text):
    sdo = parse_platform(example_text).archives["sdo"]
    options = archive_storage_options(sdo)
    assert options == {
        "client_kwargs": {"region_name": "us-east-1"},
        "endpoint_url": "https://s3.us-east-1.amazonaws.com",  # not the local default endpoint
        "anon": True,
    }


def test_local_archive_gets_the_local_server_and_keys(example_text):
    sample = parse_platform(example_text).archives["sample"]
    options = archive_storage_options(
        sample, endpoint_url="http://127.0.0.1:9000", access_key="k", secret_key="s"
    )
    assert options["endpoint_url"] == "http://127.0.0.1:9000"
    assert (options["key"], options["secret"]) == ("k", "s")
    assert options["config_kwargs"]["response_checksum_validation"] == "when_required"


def test_storage_options_by_url(monkeypatch):
    monkeypatch.setenv("PARHELION_ARCHIVES", json.dumps({"gov-nasa-hdrl-data1": {"anon": True}}))
    assert storage_options("s3://gov-nasa-hdrl-data1/sdo/aia/x.fits") == {"anon": True}
    assert storage_options("s3://elsewhere/x") == {}  # s3fs's defaults from the environment
    monkeypatch.setenv("PARHELION_ARCHIVES", "not json")
    assert storage_options("s3://gov-nasa-hdrl-data1") == {}
