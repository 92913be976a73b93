"""`parhelion prices show` and `parhelion prices refresh`: the price catalog costs come from.

refresh reads AWS with boto3's usual credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...);
AWS_ENDPOINT_URL_PRICING and AWS_ENDPOINT_URL_EC2 point it elsewhere (boto3's own
service-specific endpoint settings). The new catalog is written only once every price
was read and checked; on any error the file on disk stays as it was.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from platform_tools.config import ConfigError, PlatformConfig, load_platform
from platform_tools.pricing.catalog import DEFAULT_CATALOG, PriceCatalog, PriceError, catalog_path


def _config(args: argparse.Namespace) -> PlatformConfig | None:
    try:
        return load_platform(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _in_use(config: PlatformConfig, args: argparse.Namespace) -> Path:
    return catalog_path(config.accounting.price_catalog, args.state_dir or config.local.state_dir)


def prices_show(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return 1
    path = _in_use(config, args)
    try:
        catalog = PriceCatalog.load(path)
    except PriceError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"catalog   {path}{' (shipped with Parhelion)' if path == DEFAULT_CATALOG else ''}")
    print(f"as of     {catalog.as_of}")
    print(f"source    {catalog.source}")
    regions = [args.region] if args.region else sorted(catalog.regions)
    for region in regions:
        prices = catalog.regions.get(region)
        if prices is None:
            print(
                f"no prices for region {region!r} (known: {', '.join(sorted(catalog.regions))})",
                file=sys.stderr,
            )
            return 1
        storage = ", ".join(
            f"{kind} ${usd:g}/GiB-month" for kind, usd in sorted(prices.storage_per_gib_month.items())
        )
        print(f"\n{region}: {storage}")
        print(f"  {'instance type':<16}{'vCPU':>5}{'GiB':>8}{'on-demand $/h':>15}{'spot $/h':>10}")
        for name, price in sorted(prices.instances.items()):
            if args.instance_types and name not in args.instance_types:
                continue
            spot = "-" if price.spot is None else f"{price.spot:.4f}"
            print(f"  {name:<16}{price.vcpu:>5}{price.memory_gib:>8g}{price.on_demand:>15.4f}{spot:>10}")
    return 0


def prices_refresh(args: argparse.Namespace) -> int:
    from platform_tools.pricing.aws import AwsPriceReader, PriceRefreshError
    from platform_tools.pricing.refresh import changes, refresh_catalog

    config = _config(args)
    if config is None:
        return 1
    output = args.output
    if output is None and config.accounting.price_catalog is not None:
        output = _in_use(config, args)
    if output is None and not args.dry_run:
        print(
            f"where should the new catalog go? Set accounting.price_catalog in {args.config} "
            "(e.g. `price_catalog: aws_prices.json`, kept in the state directory) or pass --output FILE",
            file=sys.stderr,
        )
        return 2
    # compared with, and defaults taken from: the file being replaced, else the one shipped
    candidates = (output, _in_use(config, args), DEFAULT_CATALOG)
    base_path = next(path for path in candidates if path is not None and path.exists())
    try:
        base = PriceCatalog.load(base_path)
    except PriceError as exc:
        print(exc, file=sys.stderr)
        return 1
    virtual = config.accounting.virtual_node
    regions = args.regions or sorted(set(base.regions) | {virtual.region})
    instance_types = args.instance_types or sorted(
        {name for prices in base.regions.values() for name in prices.instances} | {virtual.instance_type}
    )
    print(f"reading prices of {len(instance_types)} instance types in {', '.join(regions)} from AWS ...")
    try:
        catalog = refresh_catalog(AwsPriceReader(), regions, instance_types, datetime.now(UTC))
    except PriceRefreshError as exc:
        print(f"prices refresh failed, nothing written: {exc}", file=sys.stderr)
        return 1
    try:  # the catalog must still price what this platform runs on
        catalog.node(virtual.instance_type, virtual.region, virtual.capacity_type)
    except PriceError as exc:
        print(f"not written: accounting.virtual_node in {args.config}: {exc}", file=sys.stderr)
        return 1
    lines = changes(base, catalog)
    for line in lines:
        print(f"  {line}")
    print(f"{len(lines)} change(s) against {base_path} (as of {base.as_of})")
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    catalog.save(output)
    print(f"wrote {output} (as of {catalog.as_of}); the accounting service picks it up on its next sample")
    return 0


def add_commands(commands, local_options) -> None:
    prices = commands.add_parser("prices", help="the price catalog costs come from")
    actions = prices.add_subparsers(dest="prices_command", required=True, metavar="ACTION")

    show = actions.add_parser("show", help="the catalog in use: date, source, prices")
    show.add_argument("instance_types", nargs="*", metavar="INSTANCE_TYPE", help="only these types")
    show.add_argument("--region", help="only this region")
    local_options(show)
    show.set_defaults(func=prices_show)

    refresh = actions.add_parser(
        "refresh",
        help="write a new dated catalog from the AWS Pricing and EC2 APIs",
        description=__doc__.split("\n\n")[1],
    )
    refresh.add_argument(
        "--region",
        dest="regions",
        action="append",
        metavar="REGION",
        help="price this region (repeatable; default: the regions of the current catalog)",
    )
    refresh.add_argument(
        "--instance-type",
        dest="instance_types",
        action="append",
        metavar="TYPE",
        help="price this instance type (repeatable; default: the types of the current catalog "
        "and the virtual node's)",
    )
    refresh.add_argument("--output", type=Path, help="where to write (default: accounting.price_catalog)")
    refresh.add_argument("--dry-run", action="store_true", help="read and compare; write nothing")
    local_options(refresh)
    refresh.set_defaults(func=prices_refresh)
