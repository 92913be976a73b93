"""The local archive as users reach it: the platform's own rclone command, for real, reads
with the keys every server and worker holds and refuses every write with them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.client import Config
from botocore.exceptions import ClientError

from platform_tools.local.runtime import LocalRuntime, Ports
from platform_tools.local.statedir import StateDir
from platform_tools.services.local import s3_service
from platform_tools.services.processes import free_tcp_ports
from tests.platform import stop_process, wait_for_http

pytestmark = pytest.mark.integration


def test_users_keys_read_the_archive_and_cannot_change_it(tmp_path):
    state = StateDir(tmp_path / "state")
    state.prepare()
    (state.archive / "helio-sample").mkdir()
    (state.archive / "helio-sample" / "catalog.json").write_text('{"name": "kept"}')
    ports = Ports(*free_tcp_ports(7))
    runtime = LocalRuntime(str(state.root), str(tmp_path), str(tmp_path), "chp", "127.0.0.1", ports)
    service = s3_service(runtime, state, keyed=True)
    process = subprocess.Popen(
        service.process.argv, env=service.process.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_http(service.ready_url, process, "rclone serve s3", timeout=30)
        s3 = boto3.client(
            "s3",
            endpoint_url=runtime.s3_url,
            aws_access_key_id=state.secret("s3-access-key")[0],
            aws_secret_access_key=state.secret("s3-secret-key")[0],
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10),
        )
        body = s3.get_object(Bucket="helio-sample", Key="catalog.json")["Body"].read()
        assert body == b'{"name": "kept"}'
        writes = [
            lambda: s3.put_object(Bucket="helio-sample", Key="catalog.json", Body=b"{}"),
            lambda: s3.put_object(Bucket="helio-sample", Key="new.fits", Body=b"x"),
            lambda: s3.delete_object(Bucket="helio-sample", Key="catalog.json"),
            lambda: s3.create_bucket(Bucket="mine"),
        ]
        for write in writes:
            with pytest.raises(ClientError):
                write()
        archive = Path(state.archive / "helio-sample")
        assert sorted(p.name for p in archive.iterdir()) == ["catalog.json"]
        assert sorted(p.name for p in state.archive.iterdir()) == ["helio-sample"]
        assert (archive / "catalog.json").read_text() == '{"name": "kept"}'
    finally:
        stop_process(process)
