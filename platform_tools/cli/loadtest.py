"""`parhelion loadtest`: students against a hub, as at 9:00 on the first day of a class."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from platform_tools.classes.hubload import HubMonitor, MetricsMonitor, ProcessMonitor
from platform_tools.classes.loadtest import LoadtestSpec, run_class_loadtest
from platform_tools.config import ConfigError, load_platform
from platform_tools.local.runtime import LocalRuntime
from platform_tools.local.statedir import StateDir


class _Refused(Exception):
    """A reason not to start, for a person."""


def _secret(path: Path | None, variable: str) -> str:
    """A password or token from its file when one is given, else from the environment."""
    return path.read_text().strip() if path else os.environ.get(variable, "")


def _remote(args: argparse.Namespace) -> tuple[str, str, HubMonitor | None]:
    """(url, password, monitor) of a deployment's hub, from --url and the secret files."""
    try:
        password = _secret(args.password_file, "PARHELION_LOADTEST_PASSWORD")
        token = _secret(args.metrics_token_file, "PARHELION_HUB_METRICS_TOKEN")
    except OSError as error:
        raise _Refused(f"{error.filename}: {error.strerror}") from None
    if not password:
        raise _Refused(
            "a remote hub: give the students' password (--password-file or PARHELION_LOADTEST_PASSWORD)"
        )
    return args.url, password, MetricsMonitor(args.url, token) if token else None


#: the hub.auth type where a made-up student sets their own password at their first login
FIRST_USE = "first-use"


def _local(args: argparse.Namespace, config) -> tuple[str, dict[str, str], HubMonitor | None, StateDir]:
    """(url, password fields of the spec, monitor, state) of the running local platform: the
    students log in with the shared password, or with first-use passwords they set at their
    first login (each derived from a secret of the state directory and their name)."""
    state = StateDir(args.state_dir or config.local.state_dir)
    if not state.runtime_file.exists():
        raise _Refused(
            f"the local platform is not running (no {state.runtime_file}): `make up`, or give --url"
        )
    runtime = LocalRuntime.load(state.runtime_file)
    monitor = ProcessMonitor(runtime.pids["jupyterhub"]) if "jupyterhub" in runtime.pids else None
    auth = config.hub.auth.type
    if auth == "shared-password":
        passwords = {"password": state.secret("user-password")[0]}
    elif auth == FIRST_USE:
        passwords = {"password": "", "password_key": state.secret("loadtest-password-key")[0]}
    else:
        raise _Refused(
            f"hub.auth is {auth}: made-up students cannot log in through it. Use a platform with "
            f"shared-password or {FIRST_USE} logins, or give --url and --password-file for "
            "students that exist"
        )
    return runtime.hub_internal_url, passwords, monitor, state


def _loadtest(args: argparse.Namespace) -> int:
    try:
        config = load_platform(args.config)
        if args.profile and args.profile not in config.profiles:
            raise _Refused(f"--profile {args.profile!r}: not in {args.config} ({', '.join(config.profiles)})")
        if args.url:
            url, password, monitor = _remote(args)
            passwords, state = {"password": password}, None
        else:
            url, passwords, monitor, state = _local(args, config)
    except (ConfigError, _Refused) as error:
        print(error, file=sys.stderr)
        return 1
    spec = LoadtestSpec(
        url=url,
        **passwords,
        users=args.users,
        ramp_seconds=args.ramp,
        profile=args.profile,
        notebook=args.notebook,
        dask_workers=args.dask_workers,
        idle_seconds=args.idle,
        prefix=args.prefix,
    )
    report = asyncio.run(run_class_loadtest(spec, config, monitor, state))
    print(report.text())
    if args.json:
        args.json.write_text(json.dumps(report.as_json(), indent=2) + "\n")
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
