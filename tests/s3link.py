"""An emulated S3 link: a shaping TCP proxy between S3 clients and a local S3 server.

Over loopback a GET's first byte comes back in well under a millisecond and a connection
carries gigabytes per second; over S3 the first byte waits tens of milliseconds and one
connection carries about 90 MB/s. Code tuned on loopback can look fine and still stall on
S3 (too few GETs in flight, fetches not overlapped with compute). ``S3Link`` puts S3's shape
back, so a benchmark or a test can measure what S3 would do to it:

* first-byte latency, per request: every byte from the client reaches the server
  ``latency`` after it reached the proxy (a delay line, not a per-connection delay), so
  each request on a keep-alive connection -- and so each response's first byte -- waits
  at least ``latency``, as S3's per-request time to first byte does;
* bandwidth, per connection and direction: each connection's bytes are paced to
  ``bandwidth`` bytes/s (a token bucket with no saved-up credit), as S3 caps a single
  connection; more connections get more bandwidth, as on S3.

It lives in tests/ beside ``RcloneS3`` (test infrastructure, not platform code: nothing in
platform_tools may depend on it), where benchmarks already import their servers from.

The proxy is its own process (this file run as a script, standard library only), so its
CPU time is measured on its own (``cpu_seconds``) and it can be pinned to a core of its
own (``cpus``); it is asyncio on raw sockets, receiving into one 256 kB buffer per
connection and sending from it: about 1 ms of CPU per MB moved (~0.3% of 2 cores while
burst pulls AIA files through it). It listens on 127.0.0.1 and a port the kernel picks,
tells its parent the port on stdout, and is stopped by its pid (``stop``, also on exit
from ``with``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys

CHUNK = 256 * 1024  # bytes read per step: large, so the per-byte cost of the shaping is small


class S3Link:
    """The proxy process in front of ``upstream`` (``http://host:port``); see the module doc."""

    def __init__(self, upstream: str, latency: float = 0.030, bandwidth: float = 90e6, cpus=None):
        self.upstream = upstream
        self.latency = latency
        self.bandwidth = bandwidth
        self.cpus = set(cpus) if cpus else None
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 10.0) -> S3Link:
        host, port = self.upstream.split("://", 1)[-1].rstrip("/").rsplit(":", 1)
        self.process = subprocess.Popen(
            # -I: the standard library only, not tests/ first on sys.path (tests/platform.py
            # would shadow the standard library's platform module)
            [sys.executable, "-I", __file__, f"{host}:{port}", str(self.latency), str(self.bandwidth)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            line = _readline(self.process, timeout)
            self.url = f"http://127.0.0.1:{int(line)}"
            if self.cpus:
                os.sched_setaffinity(self.process.pid, self.cpus)
        except BaseException:
            self.stop()
            raise
        return self

    def storage_options(self, options: dict) -> dict:
        """``options`` (s3fs storage options for the upstream server) through this link."""
        return {**options, "endpoint_url": self.url}

    def cpu_seconds(self) -> float:
        """The proxy's CPU time so far (user + system), from /proc."""
        import psutil

        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stats(self, timeout: float = 5.0) -> dict:
        """Counters since the last call: connections opened, most open at once, HTTP requests,
        bytes each way (up: to the server)."""
        self.process.send_signal(signal.SIGUSR1)
        return json.loads(_readline(self.process, timeout))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL: the proxy is gone when this returns."""
        process, self.process = self.process, None
        if process is None:
            return
        from tests.platform import stop_process  # here: the proxy itself runs with the stdlib only

        stop_process(process)
        if process.stdout:
            process.stdout.close()

    def __enter__(self) -> S3Link:
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def _readline(process: subprocess.Popen, timeout: float) -> str:
    """The proxy's next stdout line, or an error if it exits or stays silent."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"the S3 link proxy said nothing within {timeout:g} s")
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the S3 link proxy exited with {process.wait(5)}")
    return line.strip()


# ---- the proxy process itself ---------------------------------------------------------------


class _Counters:
    def __init__(self):
        self.reset()
        self.open = 0

    def reset(self):
        self.connections = self.peak_open = self.requests = self.up = self.down = 0

    def report(self) -> str:
        line = json.dumps(
            {
                "connections": self.connections,
                "peak_open": self.peak_open,
                "requests": self.requests,
                "up": self.up,
                "down": self.down,
            }
        )
        self.reset()
        self.peak_open = self.open
        return line


class _Pacer:
    """No more than ``rate`` bytes/s on average; an idle connection saves up no credit."""

    def __init__(self, rate: float):
        self.rate = rate
        self.free_at = 0.0

    async def wait(self, size: int, clock) -> None:
        if not self.rate:
            return
        now = clock()
        start = max(now, self.free_at)
        if start > now:
            await asyncio.sleep(start - now)
        self.free_at = start + size / self.rate


async def _delayed(
    source: socket.socket, sink: socket.socket, latency: float, rate: float, count, turn
) -> None:
    """Client to server: each chunk forwarded ``latency`` after it arrived (a delay line)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def receive():
        while True:
            data = await loop.sock_recv(source, CHUNK)
            turn(data)
            queue.put_nowait((loop.time() + latency, data))
            if not data:
                return

    receiving = asyncio.create_task(receive())
    pacer = _Pacer(rate)
    try:
        while True:
            due, data = await queue.get()
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            if not data:
                break
            await pacer.wait(len(data), loop.time)
            await loop.sock_sendall(sink, data)
            count(len(data))
        sink.shutdown(socket.SHUT_WR)
    finally:
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await receiving


async def _paced(source: socket.socket, sink: socket.socket, rate: float, count) -> None:
    """Server to client: chunks paced to ``rate``, received into one buffer and sent from it
    (no copies in Python); the server waits meanwhile (TCP back-pressure)."""
    loop = asyncio.get_running_loop()
    pacer = _Pacer(rate)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while size := await loop.sock_recv_into(source, buffer):
        await pacer.wait(size, loop.time)
        await loop.sock_sendall(sink, view[:size])
        count(size)
    sink.shutdown(socket.SHUT_WR)


async def _serve(upstream: str, latency: float, rate: float) -> None:
    host, port = upstream.rsplit(":", 1)
    counters = _Counters()
    loop = asyncio.get_running_loop()

    def up(n):
        counters.up += n

    def down(n):
        counters.down += n

    async def connection(client: socket.socket):
        # HTTP/1.1 clients do not pipeline: a request starts when the client speaks first on a
        # connection, or again after the server has answered.
        answered = [True]

        def request(data: bytes) -> None:
            if data and answered[0]:
                counters.requests += 1
                answered[0] = False

        def response(n: int) -> None:
            answered[0] = True
            down(n)

        counters.connections += 1
        counters.open += 1
        counters.peak_open = max(counters.peak_open, counters.open)
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            for sock in (client, server):
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(server, (host, int(port)))
            await asyncio.gather(
                _delayed(client, server, latency, rate, up, request), _paced(server, client, rate, response)
            )
        except OSError:
            pass  # a peer went away: close both ends, as a network would
        finally:
            counters.open -= 1
            client.close()
            server.close()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.setblocking(False)
    connections: set[asyncio.Task] = set()

    async def accept():
        while True:
            client, _ = await loop.sock_accept(listener)
            task = asyncio.create_task(connection(client))
            connections.add(task)
            task.add_done_callback(connections.discard)

    accepting = asyncio.create_task(accept())
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, accepting.cancel)
    loop.add_signal_handler(signal.SIGUSR1, lambda: print(counters.report(), flush=True))
    print(listener.getsockname()[1], flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await accepting
    listener.close()
    for task in list(connections):
        task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("upstream", help="host:port of the S3 server")
    parser.add_argument("latency", type=float, help="seconds added before each request reaches the server")
    parser.add_argument("bandwidth", type=float, help="bytes/s per connection and direction (0: no cap)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.upstream, args.latency, args.bandwidth))


if __name__ == "__main__":
    main()
