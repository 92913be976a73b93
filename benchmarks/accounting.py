"""Benchmark accounting: the hooks' overhead, and how fast and how tightly a cap bites.

In one run, on the real local platform:

1. hooks off (``accounting.enabled: false``) vs on: the time from pressing Start to a
   ready server (sequential spawns), and the p95 of the hub's REST API (GET the user's
   own model) while the meter samples every second. Target: <= 5% overhead.
2. a user whose budget is crossed with a server and a Dask cluster running, grace 0:
   the time from the cap being crossed to everything stopped, and the overshoot in
   dollars. Target: overshoot <= 1% of the cap plus one sampling interval's spend.

    .venv/bin/python benchmarks/accounting.py [--spawns 6] [--api-calls 300]

Uses tests/platform.py to run platforms (stopped by pid, leftovers killed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from platform_tools.clients.hubclient import HubUser  # noqa: E402
from platform_tools.ledger.store import Ledger  # noqa: E402
from tests.platform import LocalPlatform, platform_config_text, processes_of, running_platform  # noqa: E402

FAST = {"  sample_interval_seconds: 15\n": "  sample_interval_seconds: 1\n  enforce_interval_seconds: 1\n"}


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def alternate(platforms: dict[str, LocalPlatform], spawns: int, calls: int) -> dict[str, dict]:
    """Spawns and API calls alternating between the platforms: same machine, same moments."""
    results = {name: {"spawn": [], "api": []} for name in platforms}
    users = {name: HubUser(p.url, "demo", p.password()) for name, p in platforms.items()}
    for user in users.values():
        await user.__aenter__()
        await user.login()
    try:
        for round_ in range(spawns):
            order = list(users.items()) if round_ % 2 == 0 else list(users.items())[::-1]
            for name, user in order:  # each goes first half the time: no order bias
                started = time.monotonic()
                await user.start_server(profile="small")
                results[name]["spawn"].append(time.monotonic() - started)
                await user.stop_server()
        for user in users.values():
            await user.start_server(profile="small")  # something to meter meanwhile
        for _ in range(calls):
            for name, user in users.items():
                started = time.monotonic()
                await user.user_model()
                results[name]["api"].append(time.monotonic() - started)
        for user in users.values():
            await user.stop_server()
    finally:
        for user in users.values():
            await user.__aexit__(None, None, None)
    return results


def run_platform(text: str, action):
    with (
        tempfile.TemporaryDirectory(prefix="parhelion-bench-") as root,
        running_platform(Path(root), text) as platform,
    ):
        return action(platform)


async def cap_scenario(platform: LocalPlatform) -> dict:
    async with HubUser(platform.url, "demo", platform.password()) as user:
        await user.login()
        await user.start_server(profile="medium")
        kernel = await user.start_kernel()
        await kernel.execute(
            "from dask_gateway import Gateway\ncluster = Gateway().new_cluster()\ncluster.scale(2)\n"
            "cluster.get_client().wait_for_workers(2, timeout=120)\n",
            timeout=180,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            model = await user.user_model()
            dask = [p for p in processes_of(platform.state) if "dask " in " ".join(p.cmdline())]
            if not model.get("servers") and not dask:
                break
            await asyncio.sleep(0.2)
        stopped_at = time.time()
    ledger = Ledger(f"sqlite:///{platform.state / 'accounting.sqlite'}")
    try:
        events = ledger.events("demo")
        cap_event = next(e for e in events if e.action == "cap")
        rate = sum(r.rate_per_hour for r in ledger.lifetimes("demo") if r.kind != "storage")
        time.sleep(2)  # the meter closes the lifetimes
        spend_at_stop = ledger.spend("demo", 0, stopped_at)
    finally:
        ledger.close()
    cap = cap_event.cap_usd
    return {
        "cap": cap,
        "rate_per_hour": rate,
        "latency": stopped_at - cap_event.at,
        "overshoot": spend_at_stop - cap,
        "allowed": 0.01 * cap + rate / 3600 * 1.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spawns", type=int, default=6)
    parser.add_argument("--api-calls", type=int, default=300)
    args = parser.parse_args()

    # default sampling (15 s), as deployed; only the switch differs
    on = platform_config_text(sample_files=4)
    off = on.replace("accounting:\n  contact:", "accounting:\n  enabled: false\n  contact:")
    with contextlib.ExitStack() as stack:
        platforms = {
            name: stack.enter_context(
                running_platform(
                    Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="parhelion-bench-"))),
                    text,
                )
            )
            for name, text in (("off", off), ("on", on))
        }
        results = asyncio.run(alternate(platforms, args.spawns, args.api_calls))
    rows = [
        (
            "spawn: Start -> server ready (median)",
            statistics.median(results["off"]["spawn"]),
            statistics.median(results["on"]["spawn"]),
        ),
        ("hub API GET /users/demo p95", p95(results["off"]["api"]), p95(results["on"]["api"])),
    ]

    tiny = platform_config_text(
        sample_files=4,
        **FAST,
        **{"      usd: 25  ": "      usd: 0.002  ", "      grace_minutes: 5\n": "      grace_minutes: 0\n"},
    )
    cap = run_platform(tiny, lambda platform: asyncio.run(cap_scenario(platform)))

    print(
        f"\nAccounting hooks off vs on: both platforms up at once, requests alternating "
        f"({args.spawns} spawns, {args.api_calls} API calls each)\n"
    )
    print("| measure | hooks off | hooks on | overhead |")
    print("| --- | --- | --- | --- |")
    for name, off_value, on_value in rows:
        print(
            f"| {name} | {off_value * 1000:.0f} ms | {on_value * 1000:.0f} ms | "
            f"{100 * (on_value - off_value) / off_value:+.1f}% |"
        )
    print("\nHard cap with grace 0, server + 2-worker Dask cluster, sampling every 1 s\n")
    print("| measure | value | target |")
    print("| --- | --- | --- |")
    print(f"| cap crossed -> everything stopped | {cap['latency']:.1f} s | <= 60 s |")
    print(
        f"| overshoot | ${cap['overshoot']:.6f} ({100 * cap['overshoot'] / cap['cap']:.2f}% of the "
        f"${cap['cap']:g} cap) | <= ${cap['allowed']:.6f} (1% + one interval at "
        f"${cap['rate_per_hour']:.3f}/h) |"
    )
    print(json.dumps({"generated": datetime.now().isoformat(timespec="seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
