"""A fresh bucket on the session's S3 server for each catalog test."""

from __future__ import annotations

import hashlib

import pytest


@pytest.fixture
def bucket(s3_server, request):
    """A fresh bucket (a folder of the S3 server) per test; its name and folder."""
    readable = "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:40].strip("-")
    name = f"t-{readable}-{hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]}"
    folder = s3_server.root / name
    folder.mkdir()
    yield name, folder
