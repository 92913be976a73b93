"""`parhelion plan class`: a class's nodes and dollars on EKS, simulated before it happens."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from platform_tools.classes.plan import Burst, ClassPlan, PlanError, Pod, Pool, simulate, table, write_plot
from platform_tools.config import ConfigError, load_platform
from platform_tools.pricing.catalog import LiveCatalog, PriceError, catalog_path


def _plan_class(args: argparse.Namespace) -> int:
    try:
        config = load_platform(args.config)
        if args.profile not in config.profiles:
            raise PlanError(
                f"--profile {args.profile!r}: not in {args.config} ({', '.join(config.profiles)})"
            )
        profile = config.profiles[args.profile]
        state_dir = args.state_dir or config.local.state_dir
        catalog = LiveCatalog(catalog_path(config.accounting.price_catalog, state_dir)).current()
        region = args.region or config.accounting.virtual_node.region
        users = catalog.node(args.users_instance, region, "on-demand")
        workers = catalog.node(args.workers_instance, region, args.workers_capacity)
        gateway = config.dask_gateway
        plan = ClassPlan(
            students=args.students,
            session_minutes=round(args.hours * 60),
            days=args.days,
            server=Pod(profile.cpu_guarantee, profile.mem_guarantee_gib),
            users_pool=Pool(users, consolidate_minutes=args.users_consolidate),
            workers_pool=Pool(workers, consolidate_minutes=args.workers_consolidate),
            burst=Burst.parse(args.burst) if args.burst else None,
            worker=Pod(float(gateway.worker_cores.default), float(gateway.worker_memory_gib.default)),
            prewarm_minutes=args.prewarm,
            cull_minutes=config.hub.cull_idle_servers_after_minutes if args.cull is None else args.cull,
            placeholders=not args.no_placeholders,
        )
        result = simulate(plan)
        print(table(result))
        if args.plot:
            write_plot(result, args.plot)
            print(f"plot: {args.plot}")
    except (PlanError, PriceError, ConfigError) as error:
        print(error, file=sys.stderr)
        return 1
    return 0


def add_commands(commands, local_options) -> None:
    plan = commands.add_parser("plan", help="simulate what something will cost before it runs")
    kinds = plan.add_subparsers(dest="plan_command", required=True, metavar="WHAT")
    cls = kinds.add_parser("class", help="a class on EKS: nodes over a day, total $ and $ per student-day")
    local_options(cls)
    cls.add_argument("--students", type=int, required=True)
    cls.add_argument("--hours", type=float, required=True, help="session length per day")
    cls.add_argument("--days", type=int, default=1)
    cls.add_argument("--profile", required=True, help="the students' profile (its guarantees are requests)")
    cls.add_argument("--burst", help="each student's Dask burst, e.g. '8 workers x 30 min'")
    cls.add_argument("--users-instance", default="m6i.xlarge", help="users pool instance type (on-demand)")
    cls.add_argument("--workers-instance", default="m6i.2xlarge", help="dask-workers pool instance type")
    cls.add_argument("--workers-capacity", choices=["spot", "on-demand"], default="spot")
    cls.add_argument(
        "--users-consolidate", type=int, default=5, help="minutes before an empty users node goes"
    )
    cls.add_argument("--workers-consolidate", type=int, default=1, help="the same for the dask-workers pool")
    cls.add_argument(
        "--prewarm", type=int, default=20, help="placeholders this many minutes before the session"
    )
    cls.add_argument(
        "--no-placeholders", action="store_true", help="no prewarm: nodes start when students do"
    )
    cls.add_argument("--cull", type=int, help="idle minutes before servers stop (default: platform.yaml's)")
    cls.add_argument("--region", help="price region (default: accounting.virtual_node.region)")
    cls.add_argument("--plot", type=Path, help="write nodes over time (.png or .svg)")
    cls.set_defaults(func=_plan_class)
