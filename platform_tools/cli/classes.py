"""`parhelion class create | show | prewarm | close`: a class from its roster to its report.

create and close change platform.yaml: the source file (--config) and, when the local
platform has run, the live copy in its state directory (followed live, so students can log
in at once and lose access at close with no restart). Close also takes back what members who
lose access hold (tokens, servers, Dask clusters; ``classes.revoke``) and can be run again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from kubernetes_asyncio.client.exceptions import ApiException

from platform_tools.classes.course import ClassError, ClassSpec, class_of, class_spend, describe
from platform_tools.classes.materials import DEFAULT_JOBS
from platform_tools.classes.passwords import PasswordIssueError, check_can_issue, issue_passwords
from platform_tools.classes.roster import RosterError
from platform_tools.clients.gatewayadmin import GatewayAdminError
from platform_tools.clients.hubadmin import HubAdminError
from platform_tools.config import ConfigError, load_platform
from platform_tools.config.edit import PlatformChange, change_file
from platform_tools.local.accounts import AccountError

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _targets(args: argparse.Namespace) -> list[Path]:
    from platform_tools.local.statedir import StateDir

    targets = [args.config]
    live = StateDir(_state_dir(args)).platform_file
    if live.exists() and live.resolve() != args.config.resolve():
        targets.append(live)
    return targets


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir:
        return args.state_dir
    return load_platform(args.config).local.state_dir


def _quota(pairs: list[str]) -> dict[str, float]:
    quota = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            quota[key.strip()] = float(value) if "." in value else int(value)
        except ValueError:
            raise ClassError(f"--quota {pair!r}: write NAME=NUMBER, e.g. max_dask_cores=8") from None
    return quota


def _materials(args: argparse.Namespace) -> dict[str, str] | None:
    if not args.materials:
        if args.materials_branch or args.materials_folder:
            raise ClassError("--materials-branch and --materials-folder go with --materials REPOSITORY")
        return None
    materials = {"repo": args.materials, "branch": args.materials_branch or "main"}
    return materials | ({"folder": args.materials_folder} if args.materials_folder else {})


def _create(args: argparse.Namespace) -> int:
    spec = ClassSpec(
        name=args.name,
        roster=args.roster,
        start=args.start,
        end=args.end,
        profile=args.profile,
        budget_usd=args.budget_usd,
        class_budget_usd=args.class_budget_usd,
        sessions=args.session or [],
        timezone=args.timezone,
        image=args.image,
        quota=_quota(args.quota or []),
        homes=args.homes,
        title=args.title,
        prewarm_minutes=args.prewarm_minutes,
        materials=_materials(args),
    )
    group = spec.group()  # every bad row, before anything is written
    change = PlatformChange(groups={args.name: group})
    targets = _targets(args)
    if args.reissue and not args.passwords:
        raise ClassError("--reissue goes with --passwords FILE.csv (where the new passwords are written)")
    if args.passwords:
        auth = load_platform(targets[-1]).hub.auth
        check_can_issue(auth, args.passwords)
    for target in targets:  # validated against every file first: all or nothing
        change_file(target, change, write=False)
    for target in targets:
        before, after = change_file(target, change)
        print(f"{target}: class {args.name!r} {'set' if before != after else 'unchanged'}")
    _make_accounts(args, targets[-1], list(group["members"]))
    if args.passwords:
        issued = issue_passwords(auth, _state_dir(args), group["members"], args.passwords, args.reissue)
        if issued.issued:
            print(
                f"{len(issued.issued)} one-time passwords in {args.passwords} (mode 0600, kept nowhere else "
                "in clear): hand each student theirs; they may change it after logging in"
            )
        if issued.kept:
            print(f"{len(issued.kept)} students already have a password, kept (--reissue for new ones)")
    print(f"{len(group['members'])} students; before the first session: parhelion class prewarm {args.name}")
    return 0


def _make_accounts(args: argparse.Namespace, platform_file: Path, members: list[str]) -> None:
    """system-users: the students' Unix accounts now, not while the class waits at 9:00."""
    import os

    from platform_tools.classes.lifecycle import make_accounts, running_spawner
    from platform_tools.local.statedir import StateDir

    state, config = StateDir(_state_dir(args)), load_platform(platform_file)
    if running_spawner(state, config) != "system-users":
        return
    if os.geteuid() != 0:
        print("accounts: made at each student's first start (run as root to make them now)")
        return
    made = make_accounts(state, config, members)
    print(f"accounts: {len(made)} ready ({made[0].name}, ...)" if made else "accounts: none")


def _show(args: argparse.Namespace) -> int:
    config = load_platform(_targets(args)[-1])
    class_of(config, args.name)
    spend = None
    ledger_file = _state_dir(args) / "accounting.sqlite"
    if ledger_file.exists():
        from platform_tools.ledger.store import Ledger

        ledger = Ledger(f"sqlite:///{ledger_file.absolute()}")
        try:
            spend = class_spend(config, ledger, args.name, datetime.now(UTC))
        finally:
            ledger.close()
    print(describe(config, args.name, spend, args.hub_url or _local_hub_url(args)))
    return 0


def _local_hub_url(args: argparse.Namespace) -> str | None:
    """The running local platform's address, for the materials' link."""
    from platform_tools.local.runtime import LocalRuntime
    from platform_tools.local.statedir import StateDir

    runtime = StateDir(_state_dir(args)).runtime_file
    return LocalRuntime.load(runtime).hub_url if runtime.exists() else None


def _release(args: argparse.Namespace):
    from platform_tools.classes.kubernetes import Release

    return Release(args.namespace, args.release, args.kubeconfig)


def _prewarm_kubernetes(args: argparse.Namespace) -> int:
    from platform_tools.classes.kubernetes import prewarm_on_kubernetes

    release = _release(args)
    wanted = asyncio.run(prewarm_on_kubernetes(release, args.name, stop=args.stop))
    print(
        f"class {args.name}: {wanted.replicas} placeholders of {wanted.cpu} CPU and {wanted.memory} "
        f"in {args.namespace} (StatefulSet {release.placeholders})"
    )
    return 0


def _prewarm(args: argparse.Namespace) -> int:
    from platform_tools.classes.lifecycle import prewarm_local
    from platform_tools.local.statedir import StateDir

    if args.kubernetes:
        return _prewarm_kubernetes(args)

    state = StateDir(_state_dir(args))
    if not state.runtime_file.exists():
        print(
            f"the local platform is not running (no {state.runtime_file}): start it with `make up`",
            file=sys.stderr,
        )
        return 1
    from platform_tools.classes.materials import summary

    done = asyncio.run(prewarm_local(state, args.name, NOTEBOOKS, jobs=args.jobs))
    print(
        f"class {args.name}: {len(done.created)} users created in the hub, {len(done.homes)} homes prepared"
    )
    if load_platform(state.platform_file).groups[args.name].course.materials is not None:
        print(summary(done.materials))
    return 1 if any(not pulled.ok for pulled in done.materials) else 0


def _close_kubernetes(args: argparse.Namespace) -> int:
    from platform_tools.classes.kubernetes import HubAccess, close_on_kubernetes
    from platform_tools.classes.revoke import summary

    release = _release(args)
    hub = HubAccess(args.hub_url, args.token_secret) if args.hub_url else None
    result, report = asyncio.run(
        close_on_kubernetes(release, args.name, args.snapshot_class, hub, args.report, args.snapshot_timeout)
    )
    print(f"class {args.name} closed in ConfigMap {args.namespace}/{release.configmap}")
    if hub is not None:
        for line in summary(result.revoked, result.kept_access):
            print(line)
        print(f"servers stopped: {len(result.stopped)}")
        print(f"final cost report: {report}")
    else:
        print(
            "tokens, servers, Dask clusters and the report need the hub: give --hub-url (and the "
            "token Secret); meanwhile the hub, the gateway and the accounting checks refuse the class"
        )
    for claim, what in sorted(result.homes.items()):
        print(f"home {claim}: {what}")
    return 0


def _close(args: argparse.Namespace) -> int:
    from platform_tools.classes.lifecycle import close_local
    from platform_tools.classes.revoke import summary
    from platform_tools.local.statedir import StateDir

    if args.kubernetes:
        return _close_kubernetes(args)

    state = StateDir(_state_dir(args))
    result = asyncio.run(close_local(state, args.name, _targets(args)))
    print(f"class {args.name} closed: members can no longer log in")
    if result.platform_running:
        for line in summary(result.revoked, result.kept_access):
            print(line)
    else:
        print(
            "the local platform is not running: no token, server or cluster to take back now "
            "(all are refused); run close again once it runs to revoke the tokens"
        )
    print(f"servers stopped: {len(result.stopped)}")
    kinds = sorted({state_.split()[0] for state_ in result.homes.values()})
    print("homes: " + ", ".join(f"{sum(s.startswith(k) for s in result.homes.values())} {k}" for k in kinds))
    print(f"final cost report: {result.report} (total ${result.total_usd:.2f})")
    return 0


def _guarded(command):
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (
            RosterError,
            ClassError,
            ConfigError,
            HubAdminError,
            GatewayAdminError,
            PasswordIssueError,
            AccountError,
        ) as error:
            print(error, file=sys.stderr)
            return 1
        except ApiException as error:  # the Kubernetes API said no: which call, and why
            print(
                f"Kubernetes API: {error.status} {error.reason}: {(error.body or '')[:300]}", file=sys.stderr
            )
            return 1

    return run


def add_commands(commands, local_options) -> None:
    classes = commands.add_parser("class", help="class mode: a roster to a ready classroom, close and report")
    actions = classes.add_subparsers(dest="class_command", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="a class from its roster CSV (every bad row named)")
    local_options(create)
    create.add_argument("name", help="the class's group name (lower-case letters, digits, '-')")
    create.add_argument("--roster", type=Path, required=True, help="CSV with a username column")
    create.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    create.add_argument("--end", required=True, help="last day, YYYY-MM-DD")
    create.add_argument(
        "--session", action="append", metavar="HH:MM-HH:MM", help="a daily session (repeatable)"
    )
    create.add_argument("--timezone", default="UTC", help="the sessions' timezone (IANA, default UTC)")
    create.add_argument("--profile", required=True, help="the students' profile")
    create.add_argument("--image", help="key in images: the class's image (default: the profile's)")
    create.add_argument("--quota", action="append", metavar="NAME=N", help="per-student quota (repeatable)")
    create.add_argument("--budget-usd", type=float, required=True, help="dollars per student over the course")
    create.add_argument("--class-budget-usd", type=float, help="dollars for the whole class")
    create.add_argument(
        "--homes", choices=["keep", "archive", "delete"], default="archive", help="homes at close"
    )
    create.add_argument("--title", default="", help="the course's name")
    create.add_argument("--prewarm-minutes", type=int, default=20, help="room made this long before sessions")
    create.add_argument(
        "--materials", metavar="REPOSITORY", help="git repository (https://...) pulled into every home"
    )
    create.add_argument("--materials-branch", help="its branch (default main)")
    create.add_argument("--materials-folder", help="the folder in each home (default: the repository's name)")
    create.add_argument(
        "--passwords",
        type=Path,
        metavar="FILE.csv",
        help="hub.auth first-use or native: issue each student a one-time password into this new "
        "CSV (username,password; mode 0600), stored hashed where the hub checks it",
    )
    create.add_argument(
        "--reissue", action="store_true", help="with --passwords: new passwords for students who have one"
    )
    create.set_defaults(func=_guarded(_create))

    show = actions.add_parser("show", help="the class, its window and spend so far")
    local_options(show)
    show.add_argument("name")
    show.add_argument(
        "--hub-url", help="the hub's public address for the materials' link (default: the local platform's)"
    )
    show.set_defaults(func=_guarded(_show))

    prewarm = actions.add_parser(
        "prewarm", help="room for the class: users and homes (local), placeholders (--kubernetes)"
    )
    local_options(prewarm)
    prewarm.add_argument("name")
    prewarm.add_argument("--kubernetes", action="store_true", help="scale the chart's placeholders instead")
    prewarm.add_argument(
        "--jobs", type=int, default=DEFAULT_JOBS, help="homes the materials are pulled into at once (local)"
    )
    prewarm.add_argument("--stop", action="store_true", help="with --kubernetes: back to no placeholders")
    prewarm.add_argument("--namespace", default="parhelion", help="the release's namespace (--kubernetes)")
    prewarm.add_argument("--release", default="parhelion", help="the release's name (--kubernetes)")
    prewarm.add_argument(
        "--kubeconfig", type=Path, help="kubeconfig (default: in-cluster, then ~/.kube/config)"
    )
    prewarm.set_defaults(func=_guarded(_prewarm))

    close = actions.add_parser("close", help="remove access, stop servers, archive homes, final cost report")
    local_options(close)
    close.add_argument("name")
    close.add_argument("--kubernetes", action="store_true", help="close it on the cluster instead")
    close.add_argument("--namespace", default="parhelion", help="the release's namespace (--kubernetes)")
    close.add_argument("--release", default="parhelion", help="the release's name (--kubernetes)")
    close.add_argument(
        "--kubeconfig", type=Path, help="kubeconfig (default: in-cluster, then ~/.kube/config)"
    )
    close.add_argument(
        "--hub-url", help="the hub's public URL: stop servers, fetch the report (--kubernetes)"
    )
    close.add_argument(
        "--token-secret", default="parhelion-accounting-token", help="Secret with the hub token (key token)"
    )
    close.add_argument("--snapshot-class", help="VolumeSnapshotClass for archived homes (--kubernetes)")
    close.add_argument("--report", type=Path, help="where the final cost report goes (--kubernetes)")
    close.add_argument(
        "--snapshot-timeout",
        type=float,
        default=900.0,
        help="seconds to wait for home snapshots to be ready before their claims go (--kubernetes)",
    )
    close.set_defaults(func=_guarded(_close))
