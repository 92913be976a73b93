"""Reach the platform's archives from a notebook or a Dask worker, by bucket.

The platform gives servers and workers ``PARHELION_ARCHIVES``: for every configured
bucket, the fsspec options that reach it (the local S3 server's endpoint and keys, or
AWS with anonymous access for public Open Data). So one variable switches a notebook
between the local sample archive and the real public bucket::

    ARCHIVE = "s3://gov-nasa-hdrl-data1"      # or "s3://helio-sample"
    catalog = CloudCatalog(ARCHIVE, **storage_options(ARCHIVE))
"""

from __future__ import annotations

import json
import os

from platform_tools.contract.environment import ARCHIVES_VARIABLE


def configured() -> dict[str, dict]:
    """{bucket: fsspec options} of the platform's archives (empty off the platform)."""
    try:
        return json.loads(os.environ.get(ARCHIVES_VARIABLE, "{}"))
    except ValueError:
        return {}


def storage_options(url: str) -> dict:
    """fsspec options for an ``s3://bucket/...`` URL: the archive's if configured, else none.

    With none, s3fs takes its defaults from the environment (on the platform: the default
    archive's endpoint and keys).
    """
    bucket = url.split("://", 1)[-1].split("/", 1)[0]
    return dict(configured().get(bucket, {}))
