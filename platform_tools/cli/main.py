"""`parhelion`: run and inspect the platform, validate its configuration.

parhelion config validate FILE     every error, with file:line:column: field: message
parhelion config schema [--write]  the JSON schema of platform.yaml
parhelion up [--config FILE]       run the local platform in the foreground
parhelion status | down            inspect or stop a running local platform
parhelion quota show USER          what applies to a user, and their spend
parhelion cost report              spend per user (--group, --since, --csv)
parhelion prices show | refresh    the price catalog; a new one from the AWS APIs
parhelion catalog build | validate | query   CloudCatalogs of S3 archives
parhelion images list | lock | check | build | test | bump   the science images
parhelion chart schema [--write]   the chart's values.schema.json
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from platform_tools import __version__

DEFAULT_CONFIG = Path("hub_config/platform.local.yaml")


def _config_validate(args: argparse.Namespace) -> int:
    from platform_tools.config import ConfigError, load_platform

    status = 0
    for path in args.files:
        try:
            platform = load_platform(path)
        except ConfigError as exc:
            for issue in exc.issues:
                print(issue, file=sys.stderr)
            print(f"{path}: {len(exc.issues)} error(s)", file=sys.stderr)
            status = 1
            continue
        print(
            f"{path}: valid ({len(platform.profiles)} profiles, {len(platform.groups)} groups, "
            f"{len(platform.archives)} archives)"
        )
    return status


def _config_schema(args: argparse.Namespace) -> int:
    from platform_tools.config.schema import SCHEMA_PATH, render_schema, write_schema

    if args.write:
        print(f"wrote {write_schema()}")
    elif args.check:
        current = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
        if current != render_schema():
            print(f"{SCHEMA_PATH} is stale: run `parhelion config schema --write`", file=sys.stderr)
            return 1
        print(f"{SCHEMA_PATH} is up to date")
    else:
        sys.stdout.write(render_schema())
    return 0


def _state_dir(args: argparse.Namespace) -> Path:
    """--state-dir, else the one the configuration names."""
    if args.state_dir:
        return args.state_dir
    from platform_tools.config import ConfigError, load_platform

    try:
        return load_platform(args.config).local.state_dir
    except ConfigError:
        return Path(".parhelion")


def _up(args: argparse.Namespace) -> int:
    from platform_tools.services.supervisor import UpOptions, run_up

    return run_up(
        UpOptions(
            config=args.config,
            state_dir=args.state_dir,
            hub_port=args.port,
            free_ports=args.free_ports,
            sample_files=args.sample_files,
        )
    )


def _status(args: argparse.Namespace) -> int:
    from platform_tools.services.status import status_report

    running, text = status_report(_state_dir(args))
    print(text)
    return 0 if running else 3


def _down(args: argparse.Namespace) -> int:
    from platform_tools.services.supervisor import run_down

    return run_down(_state_dir(args))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100000, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parhelion", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"parhelion {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    config = commands.add_parser("config", help="validate platform.yaml, print its schema")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    validate = config_commands.add_parser("validate", help="check files; print every error")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.set_defaults(func=_config_validate)
    schema = config_commands.add_parser("schema", help="the JSON schema of platform.yaml")
    group = schema.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="write the committed schema file")
    group.add_argument("--check", action="store_true", help="fail if the committed file is stale")
    schema.set_defaults(func=_config_schema)

    def local_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config", type=Path, default=DEFAULT_CONFIG, help=f"platform.yaml (default: {DEFAULT_CONFIG})"
        )
        sub.add_argument("--state-dir", type=Path, help="overrides local.state_dir")

    up = commands.add_parser("up", help="run the local platform in the foreground")
    local_options(up)
    up.add_argument("--port", type=int, help="the hub's public port (overrides local.ports.hub)")
    up.add_argument("--free-ports", action="store_true", help="ignore configured ports and pick free ones")
    up.add_argument(
        "--sample-files",
        type=_positive_int,
        metavar="N",
        help="images in the generated AIA-like series (overrides archives.*.local.sample_files; "
        "a change re-seeds the sample archive)",
    )
    up.set_defaults(func=_up)

    status = commands.add_parser("status", help="what the local platform runs")
    local_options(status)
    status.set_defaults(func=_status)
    down = commands.add_parser("down", help="stop the local platform")
    local_options(down)
    down.set_defaults(func=_down)

    from platform_tools.cli import accounting, catalog, chart, classes, images, loadtest, plan, prices

    accounting.add_commands(commands, local_options)
    classes.add_commands(commands, local_options)
    plan.add_commands(commands, local_options)
    loadtest.add_commands(commands, local_options)
    prices.add_commands(commands, local_options)
    catalog.add_commands(commands)
    images.add_commands(commands)
    chart.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(message)s",
        datefmt="%H:%M:%S",
    )
    if not args.verbose:  # libraries' chatter (e.g. "Found credentials in environment variables")
        for name in ("botocore", "aiobotocore", "boto3", "s3fs", "fsspec", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
