"""Benchmark the local platform: start-up, spawn latency, notebook run, shutdown.

Runs the real `parhelion up` on free ports in a temp directory and measures, in one
run: seeding the sample archive, each service's time to ready, one user's login ->
server ready -> JupyterLab, N users spawning at once (p50/p95/max), the
getting-started notebook in a user's kernel, and Ctrl-C to everything stopped.

    .venv/bin/python benchmarks/local_platform.py [--users 10] [--sample-files 288]

Prints a Markdown table (the README quotes it). Everything started is stopped by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from platform_tools.clients.hubclient import HubUser  # noqa: E402


def config_text(sample_files: int, users: int) -> str:
    text = (REPO / "hub_config" / "platform.local.yaml").read_text()
    text = text.replace("sample_files: 288", f"sample_files: {sample_files}")
    names = ", ".join(f"bench{i:03d}" for i in range(users))
    return text.replace("  users: [demo]", f"  users: [demo, {names}]")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_user(url: str, name: str, password: str, notebook=None) -> dict[str, float]:
    async with HubUser(url, name, password) as user:
        started = time.monotonic()
        await user.login()
        await user.start_server()
        await user.open_lab()
        ready = time.monotonic() - started
        if notebook is not None:
            await user.run_notebook(notebook, path="notebooks/01-getting-started.ipynb")
        await user.stop_server()
        return {"ready": ready, **user.timings.steps}


async def many_users(url: str, password: str, count: int) -> list[float]:
    results = await asyncio.gather(*(one_user(url, f"bench{i:03d}", password) for i in range(count)))
    return [r["ready"] for r in results]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10, help="users spawning at once")
    parser.add_argument("--sample-files", type=int, default=288)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="parhelion-bench-"))
    (root / "home").mkdir()
    config = root / "platform.yaml"
    config.write_text(config_text(args.sample_files, args.users))
    log = root / "up.log"
    env = dict(os.environ, HOME=str(root / "home"))
    started = time.monotonic()
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "platform_tools.cli.main",
            "up",
            "--config",
            str(config),
            "--state-dir",
            str(root / "state"),
            "--free-ports",
        ],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    rows: list[tuple[str, str]] = []
    try:
        while "is running" not in log.read_text():
            if up.poll() is not None or time.monotonic() - started > 600:
                raise SystemExit(f"parhelion up failed:\n{log.read_text()}")
            time.sleep(0.2)
        total = time.monotonic() - started
        output = log.read_text()
        seeded = re.search(r"seeded in ([\d.]+) s", output)
        rows.append(
            (
                f"seed sample archive ({args.sample_files} files)",
                f"{float(seeded.group(1)):.1f} s" if seeded else "-",
            )
        )
        for name, seconds in re.findall(r"(\S+) ready in ([\d.]+) s", output):
            rows.append((f"{name} ready", f"{float(seconds):.1f} s"))
        rows.append(("`parhelion up` to running (cold, incl. seeding)", f"{total:.1f} s"))

        url = re.search(r"Open (http://\S+) ", output).group(1)
        password = (root / "state" / "secrets" / "user-password").read_text().strip()
        notebook = nbformat.read(REPO / "notebooks" / "01-getting-started.ipynb", as_version=4)
        single = asyncio.run(one_user(url, "demo", password, notebook))
        rows.append(("1 user: login -> server ready -> JupyterLab", f"{single['ready']:.1f} s"))
        rows.append(
            (
                "getting-started notebook (catalog, S3, 2-worker cluster, 72 files)",
                f"{single['notebook']:.1f} s",
            )
        )

        readiness = asyncio.run(many_users(url, password, args.users))
        rows.append(
            (
                f"{args.users} users at once: time to JupyterLab p50 / p95 / max",
                f"{statistics.median(readiness):.1f} / {percentile(readiness, 0.95):.1f} / "
                f"{max(readiness):.1f} s",
            )
        )

        stop_started = time.monotonic()
        up.send_signal(signal.SIGINT)
        up.wait(180)
        rows.append(("Ctrl-C to every process stopped", f"{time.monotonic() - stop_started:.1f} s"))
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(10)
        for proc in psutil.process_iter():
            try:
                if any(str(root) in arg for arg in proc.cmdline()):
                    proc.kill()
            except psutil.Error:
                pass
        shutil.rmtree(root, ignore_errors=True)

    print(f"\nLocal platform on this machine ({os.cpu_count()} cores)\n")
    print("| measure | value |")
    print("| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
