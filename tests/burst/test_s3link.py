"""The emulated S3 link (tests/s3link.py) against the real rclone S3 server: every request
waits the latency, every connection is held to the bandwidth, bytes pass unchanged, and
the proxy is gone by pid when its ``with`` ends, also when the block failed. And burst
through it: one GET per file, ``concurrency`` of them in flight."""

from __future__ import annotations

import os
import socket
import time

import pytest
import s3fs

from platform_tools.burst import burst_map
from platform_tools.services.processes import pid_alive
from tests.s3link import S3Link

pytestmark = pytest.mark.integration

BUCKET = "s3link"


@pytest.fixture(scope="module")
def objects(public_s3_server):
    """A small and a 4 MB random object in a bucket anyone may read (plain HTTP GETs work)."""
    folder = public_s3_server.root / BUCKET
    folder.mkdir(exist_ok=True)
    data = {"small": b"seventeen bytes!\n", "big": os.urandom(4_000_000)}
    for name, body in data.items():
        (folder / name).write_bytes(body)
    return data


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def get(sock: socket.socket, key: str) -> tuple[float, float, bytes]:
    """One GET on a kept-alive connection: (seconds to the first byte, seconds in all, body)."""
    started = time.perf_counter()
    sock.sendall(f"GET /{BUCKET}/{key} HTTP/1.1\r\nHost: s3\r\n\r\n".encode())
    received = sock.recv(1 << 20)
    first = time.perf_counter() - started
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].split()[1] == "200", lines[0]
    length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:"))
    body = bytearray(body)
    while len(body) < length:
        body += sock.recv(1 << 20)
    return first, time.perf_counter() - started, bytes(body)


def test_every_request_on_a_connection_waits_the_latency(public_s3_server, objects):
    with socket.create_connection(("127.0.0.1", port_of(public_s3_server.url))) as direct:
        assert get(direct, "small")[0] < 0.1  # loopback alone answers well within the latency
    with S3Link(public_s3_server.url, latency=0.25, bandwidth=0) as link:
        link.stats()
        with socket.create_connection(("127.0.0.1", port_of(link.url))) as sock:
            firsts = []
            for _ in range(3):  # one keep-alive connection, three requests: each one waits
                first, _, body = get(sock, "small")
                assert body == objects["small"]
                firsts.append(first)
        assert min(firsts) >= 0.25, firsts
        assert max(firsts) < 0.25 + 2.0, firsts  # a delay, not a stall
        stats = link.stats()
        assert (stats["connections"], stats["peak_open"], stats["requests"]) == (1, 1, 3)


def test_each_connection_is_held_to_the_bandwidth(public_s3_server, objects):
    size, rate = len(objects["big"]), 8e6
    with S3Link(public_s3_server.url, latency=0, bandwidth=rate) as link:
        cpu = link.cpu_seconds()
        with socket.create_connection(("127.0.0.1", port_of(link.url))) as sock:
            _, seconds, body = get(sock, "big")
        assert body == objects["big"]
        assert 0.5 * rate <= size / seconds <= 1.1 * rate, f"{size / seconds / 1e6:.1f} MB/s"
        assert 0 <= link.cpu_seconds() - cpu < seconds  # the proxy's own CPU time, from its pid


def test_s3fs_through_the_link_reads_and_writes_the_same_bytes(s3_server):
    folder = s3_server.root / BUCKET
    folder.mkdir(exist_ok=True)
    stored = os.urandom(3_000_001)
    (folder / "random.bin").write_bytes(stored)
    with S3Link(s3_server.url, latency=0.01, bandwidth=200e6) as link:
        fs = s3fs.S3FileSystem(**link.storage_options(s3_server.storage_options))
        assert fs.cat_file(f"{BUCKET}/random.bin") == stored
        assert fs.cat_file(f"{BUCKET}/random.bin", start=1000, end=1_001_000) == stored[1000:1_001_000]
        fs.pipe_file(f"{BUCKET}/uploaded.bin", stored[::-1])
    assert (folder / "uploaded.bin").read_bytes() == stored[::-1]


def test_the_proxy_is_stopped_by_pid_even_when_the_block_fails(public_s3_server):
    with pytest.raises(RuntimeError, match="the benchmark failed"), S3Link(public_s3_server.url) as link:
        pid, port = link.process.pid, port_of(link.url)
        assert pid_alive(pid)
        raise RuntimeError("the benchmark failed")
    assert not pid_alive(pid)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    link.stop()  # stopping twice is harmless


def test_burst_sends_one_get_per_file_and_keeps_concurrency_in_flight(public_s3_server):
    """Over S3 a worker hides the first-byte wait only with GETs in flight: burst's 16, not
    botocore's pool of 10, and no HEAD before each GET (s3fs's default: two round trips)."""
    from distributed import Client, LocalCluster

    folder = public_s3_server.root / BUCKET / "many"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(32):
        (folder / f"{i:02d}.bin").write_bytes(bytes([i]) * 20_000)
    urls = [f"s3://{BUCKET}/many/{i:02d}.bin" for i in range(32)]
    with (
        S3Link(public_s3_server.url, latency=0.05, bandwidth=0) as link,
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        link.stats()
        run = burst_map(
            len,
            urls,
            client=client,
            reader="bytes",
            storage_options=link.storage_options(public_s3_server.storage_options),
            concurrency=16,
            tasks_per_thread=1,
            progress=False,
        )
        stats = link.stats()
    assert run.failures.empty and list(run.results["value"]) == [20_000] * 32
    # one GET per file (and the plan's warm-up GET on each worker), not a HEAD and a GET (64 and up)
    assert 32 <= stats["requests"] <= 32 + 2
    assert stats["peak_open"] == 16  # all 16 of a group in flight at once
