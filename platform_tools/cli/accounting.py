"""`parhelion quota show` and `parhelion cost report`: quotas, budgets and spend in a terminal.

Both read platform.yaml; spend comes from the ledger (``accounting.database_url``, or
the local platform's SQLite file in its state directory).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from platform_tools.accounting.report import all_users_rows, rows_csv, user_report
from platform_tools.config import ConfigError, PlatformConfig, load_platform
from platform_tools.config.policy import resolve
from platform_tools.ledger.store import Ledger


def _load(args: argparse.Namespace) -> PlatformConfig | None:
    try:
        return load_platform(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _ledger(config: PlatformConfig, args: argparse.Namespace) -> Ledger | None:
    url = config.accounting.database_url
    if url is None:
        path = Path(args.state_dir or config.local.state_dir) / "accounting.sqlite"
        if not path.exists():
            return None
        url = f"sqlite:///{path.absolute()}"
    ledger = Ledger(url)
    ledger.migrate()
    return ledger


def quota_show(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    if args.user not in config.allowed_users:
        print(
            f"{args.user!r} is not a user of {args.config} (not in hub.users, hub.admin_users or any group)",
            file=sys.stderr,
        )
        return 1
    policy = resolve(config, args.user)
    print(f"user      {args.user}")
    print(f"groups    {', '.join(policy.groups) or '(none)'}")
    print(f"profiles  {', '.join(policy.profiles)}")
    print("quota")
    for name, value in policy.quota.model_dump().items():
        print(f"  {name:<22}{'unlimited' if value is None else f'{value:g}'}")
    budget = policy.budget
    if budget is None:
        print("budget    none")
    else:
        window = f" {budget.course.start} to {budget.course.end}" if budget.course else ""
        print(
            f"budget    ${budget.usd:g} per {budget.period}{window} (from {policy.budget_source}); "
            f"warn at {', '.join(f'{m:g}%' for m in budget.warn_at_percent)}; at the cap: "
            f"{budget.on_hard_cap}, grace {budget.grace_minutes:g} min"
        )
    for group, total in policy.group_totals.items():
        print(f"group total  {group}: ${total.group_usd:g} per {total.period}")
    ledger = _ledger(config, args)
    if ledger is not None:
        report = user_report(config, ledger, args.user)
        if report["budget"]:
            b = report["budget"]
            print(
                f"spent     ${b['spent_usd']:.4f} of ${b['usd']:g} ({b['percent']:.1f}%), "
                f"resets {b['resets_at'][:16]} UTC" + ("  CAPPED" if b["capped"] else "")
            )
        print(f"running   ${report['running_rate_per_hour_usd']:.4f}/hour")
        ledger.close()
    return 0


def cost_report(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    ledger = _ledger(config, args)
    if ledger is None:
        print("no ledger yet: the accounting service has not recorded anything", file=sys.stderr)
        return 1
    try:
        since = datetime.fromisoformat(args.since).replace(tzinfo=UTC) if args.since else None
    except ValueError:
        print(f"--since {args.since!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    if args.group and args.group not in config.groups:
        print(f"unknown group {args.group!r} (known: {', '.join(sorted(config.groups))})", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    rows = all_users_rows(config, ledger, now)
    if since is not None:
        totals = ledger.spend_by_user(since.timestamp(), now.timestamp())
        for row in rows:
            row["spent_usd"] = round(totals.get(row["user"], 0.0), 6)
            row["period"] = f"since {since:%Y-%m-%d}"
    if args.group:
        rows = [row for row in rows if args.group in row["groups"].split()]
    ledger.close()
    if args.csv:
        sys.stdout.write(rows_csv(rows))
        return 0
    print(f"{'user':<16}{'groups':<20}{'spent $':>12}{'budget $':>10}{'%':>7}{'$/h now':>10}")
    for row in rows:
        print(
            f"{row['user']:<16}{row['groups'][:19]:<20}{row['spent_usd']:>12.4f}"
            f"{str(row['budget_usd']):>10}{str(row['percent']):>7}{row['running_rate_per_hour_usd']:>10.4f}"
        )
    print(f"{'total':<36}{sum(float(r['spent_usd']) for r in rows):>12.4f}")
    return 0


def add_commands(commands, local_options) -> None:
    quota = commands.add_parser("quota", help="quotas and budgets")
    quota_commands = quota.add_subparsers(dest="quota_command", required=True, metavar="ACTION")
    show = quota_commands.add_parser("show", help="what applies to a user, and where it comes from")
    show.add_argument("user")
    local_options(show)
    show.set_defaults(func=quota_show)

    cost = commands.add_parser("cost", help="spend")
    cost_commands = cost.add_subparsers(dest="cost_command", required=True, metavar="ACTION")
    report = cost_commands.add_parser("report", help="spend per user (this budget period, or --since)")
    report.add_argument("--group", help="only members of this group")
    report.add_argument("--since", help="spend since this date (YYYY-MM-DD, UTC)")
    report.add_argument("--csv", action="store_true", help="CSV instead of a table")
    local_options(report)
    report.set_defaults(func=cost_report)
