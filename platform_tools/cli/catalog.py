"""`parhelion catalog`: build, validate and query CloudCatalogs in S3 buckets.

S3 is reached as boto3 and s3fs usually do (AWS_PROFILE, AWS_ACCESS_KEY_ID,
AWS_ENDPOINT_URL_S3, ...); --endpoint-url points at an S3-compatible server and --anon
reads a public bucket without credentials.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta

from platform_tools.contract.exports import safe_cell


def _fs(args: argparse.Namespace):
    import s3fs

    return s3fs.S3FileSystem(**_storage_options(args))


def _storage_options(args: argparse.Namespace) -> dict:
    options: dict = {}
    if args.endpoint_url:
        options["endpoint_url"] = args.endpoint_url
        options["config_kwargs"] = {
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
    if args.anon:
        options["anon"] = True
    return options


def _bucket_url(text: str) -> str:
    if not text.startswith("s3://") or len(text) <= 5:
        raise argparse.ArgumentTypeError(f"not an s3:// URL: {text!r}")
    return text


def _pattern(text: str) -> re.Pattern:
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression: {exc}") from None
    missing = {"Y", "m", "d"} - set(pattern.groupindex)
    if missing:
        raise argparse.ArgumentTypeError(
            f"needs the named groups (?P<Y>...), (?P<m>...), (?P<d>...) (and optionally H, M, S, f); "
            f"missing {', '.join(sorted(missing))}"
        )
    return pattern


def catalog_build(args: argparse.Namespace) -> int:
    from platform_tools.catalog.builder import BuildError, build_dataset

    try:
        report = build_dataset(
            _fs(args),
            args.prefix,
            args.id,
            title=args.title,
            times=args.times,
            name_pattern=args.name_pattern,
            duration=timedelta(seconds=args.duration),
            suffixes=tuple(args.suffix or (".fits", ".fts", ".fit")),
            index=args.index,
            indextype=args.indextype,
            description=args.description,
        )
    except (BuildError, ValueError) as exc:
        print(f"catalog build failed, nothing written: {exc}", file=sys.stderr)
        return 1
    entry = report.entry
    print(f"{entry.id}: {report.files} files, {entry.start} to {entry.stop}, in {report.seconds:.1f} s")
    if args.times == "header":
        print(f"  headers: {report.header_bytes_read} bytes read with ranged GETs, never whole files")
    for key in report.written:
        print(f"  wrote {key}")
    return 0


def catalog_validate(args: argparse.Namespace) -> int:
    from platform_tools.catalog.validate import validate_bucket

    problems = validate_bucket(_fs(args), args.bucket, args.id or None)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{args.bucket}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.bucket}: valid")
    return 0


def catalog_query(args: argparse.Namespace) -> int:
    from platform_tools.catalog import CatalogError, CloudCatalog

    try:
        catalog = CloudCatalog(args.bucket, **_storage_options(args))
        frame = catalog.datasets() if args.id is None else catalog.query(args.id, args.start, args.stop)
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.csv:
        # Titles and descriptions come from whoever publishes the bucket: neutralised.
        frame.map(safe_cell).to_csv(sys.stdout, index=False)
    else:
        print(frame.to_string(index=False, max_rows=args.max_rows))
        if args.id is not None:
            print(f"{len(frame)} files, {frame['filesize'].sum() / 1e6:.1f} MB")
    return 0


def add_commands(commands) -> None:
    catalog = commands.add_parser("catalog", help="build, validate and query CloudCatalogs in S3")
    actions = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")

    def s3_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--endpoint-url", help="an S3-compatible server (default: AWS, or AWS_ENDPOINT_URL_S3)"
        )
        sub.add_argument("--anon", action="store_true", help="no credentials: a public bucket")

    build = actions.add_parser(
        "build", help="index an S3 prefix as a dataset; write its index files and catalog.json entry"
    )
    build.add_argument("prefix", type=_bucket_url, help="s3://bucket/prefix holding the dataset's files")
    build.add_argument("--id", required=True, help="the dataset id (letters, digits, - and _)")
    build.add_argument("--title", help="a title (default: the id and prefix)")
    build.add_argument("--description")
    build.add_argument(
        "--times",
        choices=["name", "header"],
        default="name",
        help="where each file's time comes from: its name (default) or its FITS header (small ranged reads)",
    )
    build.add_argument(
        "--name-pattern",
        type=_pattern,
        help="a regex with named groups Y, m, d (and H, M, S, f) finding the time in file names",
    )
    build.add_argument(
        "--duration", type=float, default=0.0, help="seconds each file covers, with --times name (default 0)"
    )
    build.add_argument(
        "--suffix",
        action="append",
        default=None,
        help="file endings to index (repeatable; default .fits .fts .fit)",
    )
    build.add_argument("--index", help="where the index files go (default: s3://bucket/index/)")
    build.add_argument("--indextype", choices=["csv", "csv-zip", "parquet"], default="csv")
    s3_options(build)
    build.set_defaults(func=catalog_build)

    validate = actions.add_parser(
        "validate", help="check a bucket's catalog against the spec; list every problem"
    )
    validate.add_argument("bucket", type=_bucket_url)
    validate.add_argument("--id", action="append", help="only this dataset (repeatable)")
    s3_options(validate)
    validate.set_defaults(func=catalog_validate)

    query = actions.add_parser("query", help="a bucket's datasets, or a dataset's files in a time range")
    query.add_argument("bucket", type=_bucket_url)
    query.add_argument("id", nargs="?", help="a dataset id (absent: list the datasets)")
    query.add_argument("--start", help="e.g. 2024-05-08T06:00Z (default: the dataset's start)")
    query.add_argument("--stop", help="exclusive (default: the dataset's stop)")
    query.add_argument("--csv", action="store_true", help="CSV instead of a table")
    query.add_argument("--max-rows", type=int, default=40)
    s3_options(query)
    query.set_defaults(func=catalog_query)
