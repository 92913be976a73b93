"""Benchmark a class arriving at once: `parhelion loadtest` with 40 and 80 students.

Starts the real local platform (`parhelion up` on free ports in a temp directory) and runs
the load test at each size in turn, on the same platform: every student logs in through
the form, starts a server, opens JupyterLab, runs tests/classes/data/student.ipynb (astropy:
write and read a FITS image), idles 10 s and stops. Prints a Markdown table (the README
quotes it): successes, time-to-ready p50/p95/max, the hub process's CPU and memory, and the
run's cost (metered by the ledger, and estimated as server time x the profile's price).

    .venv/bin/python benchmarks/loadtest.py [--sizes 40 80] [--ramp-per-user 1.0] [--modes trusted isolated]

Both modes by default, each on a platform of its own, one after the other, so the table puts
them side by side from one run. trusted runs the example platform.yaml as it is: one OS
account for every server, the shared password. isolated is the platform for a class: each
student their own Unix account (`local.spawner: system-users`, made on their first start,
under a prefix of this run's that is removed after; needs root and a Python other accounts
can run, else the mode is skipped with the reason) and first-use passwords (each student's
first login sets theirs; the load test derives one per student).

Everything started is stopped by pid, also on failure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.isolation import isolated_config_text, isolated_place, isolation_unavailable  # noqa: E402
from tests.platform import PARHELION, platform_config_text, running_platform  # noqa: E402

NOTEBOOK = REPO / "tests" / "classes" / "data" / "student.ipynb"


def run(platform, users: int, ramp: float, out: Path) -> dict:
    started = time.monotonic()
    done = subprocess.run(
        [
            *PARHELION,
            "loadtest",
            "--config",
            str(platform.config),
            "--state-dir",
            str(platform.state),
            "--users",
            str(users),
            "--ramp",
            str(ramp),
            "--profile",
            "small",
            "--notebook",
            str(NOTEBOOK),
            "--idle",
            "10",
            "--prefix",
            f"bench{users}x",
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    print(done.stdout, file=sys.stderr)
    report = json.loads(out.read_text())
    report["seconds"] = time.monotonic() - started
    return report


def run_size(platform, users: int, args: argparse.Namespace, root: Path) -> dict:
    return run(platform, users, users * args.ramp_per_user, root / f"{users}.json")


def row(mode: str, users: int, ramp_per_user: float, report: dict) -> str:
    """One line of the table: successes, time to ready, the hub's load, the cost."""
    ok = sum(o["failure"] is None for o in report["outcomes"])
    ready = sorted(o["ready_seconds"] for o in report["outcomes"] if o["ready_seconds"])
    cpu, rss = report["hub_cpu"], report["hub_rss_mib"]
    return (
        f"| {mode} | {users} | {users * ramp_per_user:.0f} s | {ok}/{users} "
        f"| {report['p50']:.1f} s | {report['p95']:.1f} s | {ready[-1]:.1f} s "
        f"| {sum(cpu) / len(cpu):.0f}% / {max(cpu):.0f}% | {max(rss):.0f} MiB "
        f"| ${report['metered_usd']:.4f} / ${report['estimated_usd']:.4f} |"
    )


def config_text(mode: str, prefix: str, root: Path) -> str:
    """The benchmarked platform.yaml: the example's, lighter (4 sample files), isolated or not
    (isolated: accounts under this run's ``prefix``, homes in ``root``, removed after)."""
    if mode == "isolated":
        return isolated_config_text(prefix, root)
    return platform_config_text(sample_files=4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[40, 80])
    parser.add_argument("--ramp-per-user", type=float, default=1.0, help="seconds of ramp per student")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=["trusted", "isolated"],
        default=["trusted", "isolated"],
        help="trusted: one OS account and the shared password; isolated: an account and a "
        "first-use password per student (needs root); each on a platform of its own, in turn",
    )
    args = parser.parse_args()
    rows = []
    for mode in args.modes:
        if mode == "isolated" and isolation_unavailable():
            print(f"isolated mode skipped: {isolation_unavailable()}", file=sys.stderr)
            continue
        with (
            isolated_place() as (prefix, root),
            running_platform(root / "platform", config_text(mode, prefix, root)) as platform,
        ):
            for users in args.sizes:
                rows.append(row(mode, users, args.ramp_per_user, run_size(platform, users, args, root)))
    print(
        "| mode | students | ramp | succeeded | ready p50 | ready p95 | ready max | hub CPU mean / max "
        "| hub memory max | cost metered / estimated |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
