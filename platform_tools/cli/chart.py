"""`parhelion chart schema`: helm/parhelion/values.schema.json, generated from the models."""

from __future__ import annotations

import argparse
import sys


def chart_schema(args: argparse.Namespace) -> int:
    from platform_tools.chart.values import SCHEMA_PATH, render_schema, write_schema

    if args.write:
        print(f"wrote {write_schema()}")
        return 0
    current = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
    if current != render_schema():
        print(f"{SCHEMA_PATH} is stale: run `parhelion chart schema --write`", file=sys.stderr)
        return 1
    print(f"{SCHEMA_PATH} is up to date")
    return 0


def add_commands(commands) -> None:
    chart = commands.add_parser("chart", help="the Helm chart (helm/parhelion)")
    actions = chart.add_subparsers(dest="chart_command", required=True, metavar="ACTION")
    schema = actions.add_parser("schema", help="check (default) or --write values.schema.json")
    schema.add_argument("--write", action="store_true")
    schema.set_defaults(func=chart_schema)
