"""Index an S3 prefix into a CloudCatalog dataset: what `parhelion catalog build` does.

Listing is parallel: the prefix's sub-prefixes (an archive's day or wavelength folders)
are listed concurrently. Each file's time span comes either from its name (a timestamp
such as ``20100513T000002`` or ``2010-05-13T00:00:02`` in the key) or from its FITS
header, read with small ranged GETs (the first 8640 bytes, more only for a header that
does not fit), never the whole file. Files whose time cannot be found are an error that
lists them: nothing is silently left out of the index.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from astropy.io import fits

from platform_tools.catalog.spec import CatalogEntry
from platform_tools.catalog.writer import IndexedFile, catalog_entry, write_dataset

HEADER_BLOCK = 2880
FIRST_READ = 3 * HEADER_BLOCK
LIST_WORKERS = 32
DEFAULT_NAME_PATTERN = re.compile(
    r"(?P<Y>(19|20)\d{2})-?(?P<m>[01]\d)-?(?P<d>[0-3]\d)[T_ ]?(?P<H>[0-2]\d)[:_-]?(?P<M>[0-5]\d)[:_-]?"
    r"(?P<S>[0-6]\d)(?:[._](?P<f>\d{1,6}))?"
)
START_KEYWORDS = ("DATE-OBS", "DATE_OBS", "DATE-BEG", "T_OBS")
FILETYPES_BY_SUFFIX = {
    ".fits": "fits",
    ".fts": "fits",
    ".fit": "fits",
    ".cdf": "cdf",
    ".nc": "netcdf4",
    ".h5": "hdf5",
}


class BuildError(Exception):
    """A dataset that cannot be indexed, saying which files and why."""


@dataclass(frozen=True)
class Listed:
    url: str
    size: int


@dataclass
class BuildReport:
    entry: CatalogEntry
    files: int
    written: list[str]
    header_bytes_read: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)


def _url(path: str) -> str:
    return path if "://" in path else "s3://" + path


def list_objects(fs, prefix: str, exclude: tuple[str, ...] = ()) -> list[Listed]:
    """Every object under ``prefix``, its sub-prefixes listed concurrently."""
    prefix = prefix.rstrip("/") + "/"
    try:
        top = fs.ls(prefix, detail=True, refresh=True)
    except FileNotFoundError:
        raise BuildError(f"{prefix}: nothing there (no such prefix)") from None
    except PermissionError:
        raise BuildError(
            f"{prefix}: access denied listing it (credentials, or --anon for a public bucket)"
        ) from None
    found = [Listed(_url(o["name"]), int(o["size"])) for o in top if o["type"] == "file"]
    folders = [o["name"] for o in top if o["type"] == "directory"]
    with ThreadPoolExecutor(LIST_WORKERS) as pool:
        for listing in pool.map(lambda folder: fs.find(folder, detail=True), folders):
            found += [
                Listed(_url(name), int(o["size"])) for name, o in listing.items() if o["type"] == "file"
            ]
    excluded = tuple(_url(x) for x in exclude)
    return sorted((o for o in found if not o.url.startswith(excluded)), key=lambda o: o.url)


def time_from_name(url: str, pattern: re.Pattern = DEFAULT_NAME_PATTERN) -> datetime | None:
    """The last timestamp in the key's file name (else in its folders), or None."""
    name = url.rsplit("/", 1)[-1]
    for text in (name, url):
        matches = list(pattern.finditer(text))
        if matches:
            parts = matches[-1].groupdict()
            fraction = (parts.get("f") or "0").ljust(6, "0")
            try:
                fields = [int(parts.get(k) or 0) for k in ("Y", "m", "d", "H", "M", "S")]
                return datetime(*fields, int(fraction))
            except ValueError:
                return None
    return None


def _header_end(data: bytes, offset: int) -> int | None:
    """The offset just past the header that starts at ``offset``, or None if not all read."""
    for block in range(offset, len(data) - HEADER_BLOCK + 1, HEADER_BLOCK):
        chunk = data[block : block + HEADER_BLOCK]
        for card in range(0, HEADER_BLOCK, 80):
            if chunk[card : card + 8] == b"END     ":
                return block + HEADER_BLOCK
    return None


def _time_span(header: fits.Header) -> tuple[datetime, datetime] | None:
    for keyword in START_KEYWORDS:
        if keyword in header:
            start = _fits_time(str(header[keyword]))
            if start is None:
                continue
            if keyword == "T_OBS" and "EXPTIME" in header:  # T_OBS is mid-exposure
                start -= timedelta(seconds=float(header["EXPTIME"]) / 2)
            if "DATE-END" in header and (end := _fits_time(str(header["DATE-END"]))):
                return start, end
            exposure = header.get("EXPTIME", header.get("XPOSURE", 0.0))
            return start, start + timedelta(seconds=float(exposure or 0.0))
    return None


def _fits_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.strip().rstrip("Z").replace(" ", "T"))
    except ValueError:
        return None


def header_times(
    fs, urls: list[str], concurrency: int = 64
) -> tuple[dict[str, tuple[datetime, datetime]], int]:
    """{url: (start, stop)} from FITS headers with ranged GETs; and the bytes read.

    Reads the primary header, and for files whose primary HDU is empty (tile-compressed
    images, as AIA ships) the first extension's header too.
    """
    spans: dict[str, tuple[datetime, datetime]] = {}
    heads: dict[str, bytes] = {}
    pending = {url: FIRST_READ for url in urls}
    total = 0
    while pending:
        batch = list(pending)
        ends = [pending[u] for u in batch]
        starts = [len(heads.get(u, b"")) for u in batch]
        chunks = fs.cat_ranges(batch, starts, ends, batch_size=concurrency, on_error="return")
        pending = {}
        for url, start, end, chunk in zip(batch, starts, ends, chunks, strict=True):
            if isinstance(chunk, Exception):
                raise BuildError(f"{url}: could not read its header: {chunk}")
            total += len(chunk)
            data = heads.get(url, b"") + chunk
            heads[url] = data
            span, more = _span_from(data)
            if span is not None:
                spans[url] = span
            elif more and len(chunk) == end - start:  # a longer header; a short read is the file's end
                pending[url] = len(data) + 2 * FIRST_READ
    return spans, total


def _span_from(data: bytes) -> tuple[tuple[datetime, datetime] | None, bool]:
    """(span, need more bytes) from the start of a FITS file."""
    end = _header_end(data, 0)
    if end is None:
        return None, True
    primary = fits.Header.fromstring(data[:end].decode("ascii", "replace"))
    span = _time_span(primary)
    if span is not None or primary.get("NAXIS", 0) != 0 or not primary.get("EXTEND", False):
        return span, False
    extension_end = _header_end(data, end)
    if extension_end is None:
        return None, True
    return _time_span(fits.Header.fromstring(data[end:extension_end].decode("ascii", "replace"))), False


def build_dataset(
    fs,
    prefix: str,
    dataset_id: str,
    *,
    title: str | None = None,
    times: Literal["name", "header"] = "name",
    name_pattern: re.Pattern | None = None,
    duration: timedelta = timedelta(0),
    suffixes: tuple[str, ...] = (".fits", ".fts", ".fit"),
    index: str | None = None,
    indextype: str = "csv",
    description: str | None = None,
) -> BuildReport:
    """List, time and index ``prefix``; write the indices and the bucket's catalog.json entry."""
    began = time.monotonic()
    prefix = _url(prefix.rstrip("/"))
    bucket = prefix.split("/")[2]
    bucket_url = f"s3://{bucket}/"
    index = index or f"{bucket_url}index/"
    if not index.startswith(bucket_url) or not index.endswith("/"):
        raise BuildError(f"--index {index!r} must be a folder (ending in /) in {bucket_url}")
    listed = [
        o
        for o in list_objects(fs, prefix, exclude=(index, bucket_url + "catalog.json"))
        if o.url.endswith(suffixes)
    ]
    if not listed:
        raise BuildError(f"{prefix}/: no files ending in {', '.join(suffixes)}")
    bytes_read = 0
    if times == "name":
        pattern = name_pattern or DEFAULT_NAME_PATTERN
        starts = {o.url: time_from_name(o.url, pattern) for o in listed}
        spans = {url: (start, start + duration) for url, start in starts.items() if start is not None}
        how = f"time in their name matching {pattern.pattern!r}"
    else:
        spans, bytes_read = header_times(fs, [o.url for o in listed])
        how = f"time in their FITS header ({', '.join(START_KEYWORDS)})"
    untimed = [o.url for o in listed if o.url not in spans]
    if untimed:
        shown = ", ".join(untimed[:5]) + (" ..." if len(untimed) > 5 else "")
        raise BuildError(f"{len(untimed)} of {len(listed)} files have no {how}: {shown}")
    rows = [IndexedFile(*spans[o.url], o.url, o.size) for o in listed]
    suffix = "." + listed[0].url.rsplit(".", 1)[-1].lower()
    entry = catalog_entry(
        dataset_id=dataset_id,
        index=index,
        title=title or f"{dataset_id} ({prefix}/)",
        files=rows,
        filetype=FILETYPES_BY_SUFFIX.get(suffix, "other"),
        description=description,
        indextype=indextype,
    )
    written = write_dataset(fs, bucket_url, entry, rows, bucket_name=bucket)
    return BuildReport(entry, len(rows), written, bytes_read, time.monotonic() - began)
