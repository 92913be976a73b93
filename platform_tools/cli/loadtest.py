"""`parhelion loadtest`: students against a hub, as at 9:00 on the first day of a class."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from platform_tools.classes.hubload import HubMonitor, MetricsMonitor, ProcessMonitor
from platform_tools.classes.loadtest import LoadtestReport, LoadtestSpec, run_loadtest
from platform_tools.config import ConfigError, load_platform
from platform_tools.config.edit import PlatformChange, change_file


def _costs(report: LoadtestReport, config, state_dir: Path | None, started: float, ended: float) -> None:
    profile = config.profiles[report.spec.profile or config.default_profile]
    report.estimated_usd = sum(o.server_seconds for o in report.outcomes) / 3600 * profile.price_per_hour_usd
    ledger_file = state_dir / "accounting.sqlite" if state_dir else None
    if ledger_file and ledger_file.exists():
        from platform_tools.ledger.store import Ledger

        ledger = Ledger(f"sqlite:///{ledger_file.absolute()}")
        try:
            report.metered_usd = sum(ledger.spend_by_user(started, ended, report.spec.usernames).values())
        finally:
            ledger.close()


def _secret(path: Path | None, variable: str) -> str:
    """A password or token from its file when one is given, else from the environment."""
    return path.read_text().strip() if path else os.environ.get(variable, "")


def _loadtest(args: argparse.Namespace) -> int:
    try:
        config = load_platform(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    if args.profile and args.profile not in config.profiles:
        print(
            f"--profile {args.profile!r}: not in {args.config} ({', '.join(config.profiles)})",
            file=sys.stderr,
        )
        return 1
    state = None
    monitor: HubMonitor | None = None
    if args.url:
        try:
            password = _secret(args.password_file, "PARHELION_LOADTEST_PASSWORD")
            token = _secret(args.metrics_token_file, "PARHELION_HUB_METRICS_TOKEN")
        except OSError as error:
            print(f"{error.filename}: {error.strerror}", file=sys.stderr)
            return 1
        if not password:
            print(
                "a remote hub: give the students' password (--password-file or PARHELION_LOADTEST_PASSWORD)",
                file=sys.stderr,
            )
            return 1
        url = args.url
        if token:
            monitor = MetricsMonitor(url, token)
    else:
        from platform_tools.local.runtime import LocalRuntime
        from platform_tools.local.statedir import StateDir

        state = StateDir(args.state_dir or config.local.state_dir)
        if not state.runtime_file.exists():
            print(
                f"the local platform is not running (no {state.runtime_file}): `make up`, or give --url",
                file=sys.stderr,
            )
            return 1
        runtime = LocalRuntime.load(state.runtime_file)
        url, password = runtime.hub_internal_url, state.secret("user-password")[0]
        if "jupyterhub" in runtime.pids:
            monitor = ProcessMonitor(runtime.pids["jupyterhub"])
    spec = LoadtestSpec(
        url=url,
        password=password,
        users=args.users,
        ramp_seconds=args.ramp,
        profile=args.profile,
        notebook=args.notebook,
        dask_workers=args.dask_workers,
        idle_seconds=args.idle,
        prefix=args.prefix,
    )
    group = {"description": "parhelion loadtest (temporary)", "members": spec.usernames}
    if args.profile:
        group["profiles"] = [args.profile]
    if state is not None:  # the students exist for the run only
        change_file(state.platform_file, PlatformChange(groups={args.prefix: group}))
    started = time.time()
    try:
        report = asyncio.run(run_loadtest(spec, monitor))
    finally:
        if state is not None:
            change_file(state.platform_file, PlatformChange(remove_groups=[args.prefix]))
    _costs(report, config, state.root if state else None, started, time.time())
    print(report.text())
    if args.json:
        data = {
            "spec": {
                k: str(v) if isinstance(v, Path) else v for k, v in asdict(spec).items() if k != "password"
            },
            "outcomes": [asdict(o) for o in report.outcomes],
            "wall_seconds": report.wall_seconds,
            "p50": report.percentile(50),
            "p95": report.percentile(95),
            "hub_cpu": report.hub_cpu,
            "hub_rss_mib": report.hub_rss_mib,
            "hub_source": report.hub_source,
            "hub_problem": report.hub_problem,
            "metered_usd": report.metered_usd,
            "estimated_usd": report.estimated_usd,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0 if not report.failures else 2


def add_commands(commands, local_options) -> None:
    test = commands.add_parser(
        "loadtest", help="students against a hub: time to ready, failures, hub load, cost"
    )
    local_options(test)
    test.add_argument("--users", type=int, required=True, help="how many students")
    test.add_argument("--ramp", type=float, default=60.0, help="seconds over which they arrive")
    test.add_argument("--profile", help="the profile they choose (default: the form's preselected one)")
    test.add_argument("--notebook", type=Path, help="a notebook each runs in a kernel")
    test.add_argument("--dask-workers", type=int, default=0, help="a Dask cluster of this many workers each")
    test.add_argument("--idle", type=float, default=30.0, help="seconds each idles before stopping")
    test.add_argument("--prefix", default="loadtest", help="usernames: PREFIX001, PREFIX002, ...")
    test.add_argument("--url", help="a deployment's hub URL (default: the local platform)")
    test.add_argument("--password-file", type=Path, help="the students' password, for --url")
    test.add_argument(
        "--metrics-token-file",
        type=Path,
        help="for --url: a hub token with the read:metrics scope, to measure the hub's CPU and memory"
        " from /hub/metrics (or PARHELION_HUB_METRICS_TOKEN)",
    )
    test.add_argument("--json", type=Path, help="also write the measurements as JSON")
    test.set_defaults(func=_loadtest)
