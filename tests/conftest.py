"""Shared fixtures: the example configuration, and a real local platform on demand."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.platform import PostgresServer, RcloneS3, platform_config_text, running_platform

REPO_ROOT = Path(__file__).resolve().parents[1]


def _interrupt(signum, frame):
    # A CI timeout or `kill` sends SIGTERM: turn it into an interrupt so fixtures'
    # finalizers still stop every platform and server they started.
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _interrupt)
EXAMPLE_CONFIG = REPO_ROOT / "hub_config" / "platform.local.yaml"


@pytest.fixture
def example_text() -> str:
    return EXAMPLE_CONFIG.read_text()


@pytest.fixture(scope="module")
def local_platform(tmp_path_factory: pytest.TempPathFactory):
    """A running `parhelion up` on free ports in a temp state dir and HOME, for a module.

    Stopped by pid at the end even when tests fail; leftover processes fail the test.
    """
    with running_platform(
        tmp_path_factory.mktemp("platform"), platform_config_text(sample_files=96)
    ) as platform:
        yield platform


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """A real rclone S3 server over a temp folder, stopped by pid at the end."""
    server = RcloneS3(tmp_path_factory.mktemp("s3"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def public_s3_server(tmp_path_factory: pytest.TempPathFactory):
    """An S3 server that needs no keys, standing in for a public AWS Open Data bucket."""
    server = RcloneS3(tmp_path_factory.mktemp("public-s3"), keyed=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session, stopped by pid at the end."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()  # also when it failed to start: its temp folder goes too
