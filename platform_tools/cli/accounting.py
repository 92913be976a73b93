"""`parhelion quota show`, `parhelion cost report` and `parhelion cost reconcile`: quotas, budgets,
spend and the AWS bill in a terminal.

All read platform.yaml; spend comes from the ledger (``accounting.database_url``, or
the local platform's SQLite file in its state directory); reconcile opens it read-only and asks
Cost Explorer for the bill.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from platform_tools.accounting.bill import explorer_for, reconcile_with_bill
from platform_tools.accounting.reconcile import BUCKETS, FOLDED, Reconciliation, report_rows
from platform_tools.accounting.report import all_users_rows, rows_csv, user_report
from platform_tools.clients.costexplorer import CostExplorerError
from platform_tools.config import ConfigError, PlatformConfig, load_platform
from platform_tools.config.policy import resolve
from platform_tools.ledger.daily import open_read_only
from platform_tools.ledger.store import Ledger


def _load(args: argparse.Namespace) -> PlatformConfig | None:
    try:
        return load_platform(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _ledger_url(config: PlatformConfig, args: argparse.Namespace) -> str | None:
    url = config.accounting.database_url
    if url is None:
        path = Path(args.state_dir or config.local.state_dir) / "accounting.sqlite"
        if not path.exists():
            return None
        url = f"sqlite:///{path.absolute()}"
    return url


def _ledger(config: PlatformConfig, args: argparse.Namespace) -> Ledger | None:
    url = _ledger_url(config, args)
    if url is None:
        return None
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


def _date(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a date (YYYY-MM-DD)") from None


#: Short column heads for the buckets in the table (the CSV has the full names).
HEADS = {
    "users": "users",
    "placeholders": "placehold",
    "system pods": "system",
    "idle node capacity": "idle",
    "compute not metered": "unmetered",
    "storage": "storage",
    "network": "network",
    "other": "other",
    FOLDED: "folded",
}


def reconciliation_text(result: Reconciliation, first: date, last: date, group: str | None) -> str:
    """The reconciliation as a terminal table (also the README's example)."""
    columns = [b for b in (*BUCKETS, FOLDED) if any(dict(d.rows).get(b) for d in result.days)] or ["users"]
    lines = [
        f"Reconciliation with the AWS bill, {first} to {last} (UTC days; * = estimated by AWS)",
        f"rule      {result.rule_text}",
        *(f"          {note}" for note in result.notes[:1]),
        "rounding  each row rounded down to the cent; the cents left go to the rows with the largest "
        "fractions, so each day's rows sum to its bill",
        "",
        f"{'date':<11}{'bill $':>10} "
        + "".join(f"{HEADS[c]:>10}" for c in columns)
        + (f"{'grp chrg':>10}{'grp share':>10}" if group else ""),
    ]
    for day in result.days:
        cents = dict(day.rows)
        bill = (
            "no data "
            if day.bill_cents is None
            else f"{day.bill_cents / 100:.2f}" + ("*" if day.estimated else " ")
        )
        cells = "".join(f"{cents.get(c, 0) / 100:>10.2f}" if day.rows else f"{'-':>10}" for c in columns)
        extra = ""
        if group:
            share = "-" if day.group_share_cents is None else f"{day.group_share_cents / 100:.2f}"
            extra = f"{day.group_cents / 100:>10.2f}{share:>10}"
        lines.append(f"{day.day.isoformat():<11}{bill:>11}{cells}{extra}")
    lines += [
        "",
        "The cost rule's error (node-hours and what the ledger attributed of their price):",
        f"{'date':<11}{'node-h':>8}{'node $':>10}{'attributed $':>14}{'attr/node':>10}{'idle':>7}"
        f"{'bill EC2 $':>12}{'node/EC2':>10}",
    ]
    for day in result.days:
        ratio, ec2 = day.attributed_ratio, day.node_to_ec2
        lines.append(
            f"{day.day.isoformat():<11}{day.node_hours:>8.1f}{day.node_cents / 100:>10.2f}"
            f"{day.attributed_cents / 100:>14.2f}{'-' if ratio is None else f'{ratio:.3f}':>10}"
            f"{'-' if ratio is None else f'{1 - ratio:.0%}':>7}"
            f"{'-' if day.bill_cents is None else f'{day.ec2_cents / 100:.2f}':>12}"
            f"{'-' if ec2 is None else f'{ec2:.3f}':>10}"
        )
    notes = result.notes[1:] + [note for day in result.days for note in day.notes]
    if notes:
        lines += ["", "Notes:", *(f"  {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def cost_reconcile(args: argparse.Namespace, explorer=None) -> int:
    """`parhelion cost reconcile`: the ledger against Cost Explorer, per day. Reads the ledger
    read-only (never migrated, never written); ``explorer``: a CostExplorer (tests)."""
    config = _load(args)
    if config is None:
        return 1
    try:
        first = _date(args.since, "--since")
        last = _date(args.until, "--until") if args.until else datetime.now(UTC).date() - timedelta(days=1)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if last < first:
        print(f"--until {last} is before --since {first}", file=sys.stderr)
        return 2
    if args.group and args.group not in config.groups:
        print(f"unknown group {args.group!r} (known: {', '.join(sorted(config.groups))})", file=sys.stderr)
        return 2
    url = _ledger_url(config, args)
    if url is None:
        print("no ledger yet: the accounting service has not recorded anything", file=sys.stderr)
        return 1
    ledger = open_read_only(url)
    try:
        explorer = explorer or explorer_for(config)
        result = reconcile_with_bill(config, ledger, explorer, first, last, args.group, args.fold)
    except CostExplorerError as exc:
        print(f"cannot reconcile: {exc}", file=sys.stderr)
        return 1
    finally:
        ledger.close()
    if args.csv:
        sys.stdout.write(rows_csv(report_rows(result)))
    else:
        sys.stdout.write(reconciliation_text(result, first, last, args.group))
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
    rec = cost_commands.add_parser(
        "reconcile", help="the ledger against the AWS bill (Cost Explorer), per day, every dollar named"
    )
    rec.add_argument("--since", required=True, help="first day (YYYY-MM-DD, UTC)")
    rec.add_argument("--until", help="last day, included (default: yesterday, UTC)")
    rec.add_argument("--group", help="also this group's charges, and its share under the rule")
    rec.add_argument("--csv", action="store_true", help="CSV, one row per day, instead of a table")
    rule = rec.add_mutually_exclusive_group()
    rule.add_argument(
        "--fold",
        dest="fold",
        action="store_true",
        default=None,
        help="fold the remainder into users' shares in proportion (the 2i2c rule)",
    )
    rule.add_argument("--buckets", dest="fold", action="store_false", help="name the remainder in buckets")
    local_options(rec)
    rec.set_defaults(func=cost_reconcile)
