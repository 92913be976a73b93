"""What runs inside a Dask task: fetch a batch of objects and apply the user's function.

Done right for object stores:

* one filesystem per worker process, made once and reused by every task (no session per
  file, as naive recipes do);
* a task fetches its files ``concurrency`` at a time with one concurrent ``cat`` (s3fs
  gathers the GETs), and fetches the next group while it decodes this one;
* FITS is decoded from bytes in memory with astropy (tile-compressed images included);
  RICE_1 integer images, as AIA's, take a faster tile decoder with astropy's exact
  answer where imagecodecs is installed (``rice.py`` says which files and why);
* every file ends as an outcome: its value, or why it failed. Fetch errors are retried
  with back-off; a missing key or a corrupt file is reported at once (retrying cannot
  fix it). Nothing is dropped.
"""

from __future__ import annotations

import io
import json
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import fsspec
import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from platform_tools.burst import rice

Reader = Literal["image", "fits", "bytes", "lazy"]
Item = tuple[str, int]  # (url, size in bytes)

_FILESYSTEMS: dict[str, Any] = {}
_LOCK = threading.Lock()


def filesystem(url: str, storage_options: dict | None) -> Any:
    """This process's filesystem for ``url``'s protocol and these options, made once."""
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    key = json.dumps([protocol, storage_options or {}], sort_keys=True, default=str)
    with _LOCK:
        fs = _FILESYSTEMS.get(key)
        if fs is None:
            fs = _FILESYSTEMS[key] = fsspec.filesystem(protocol, **(storage_options or {}))
    return fs


class DecodeError(ValueError):
    """Bytes that are not what the reader expects (e.g. a corrupt FITS file)."""


def decode_image(data: bytes, *, fast: bool = True) -> tuple[np.ndarray, fits.Header]:
    """The first image HDU's pixels and header, from a FITS file's bytes.

    ``fast=False`` decodes with astropy alone: the reference the fast RICE path is measured
    and tested against (it gives the same pixels and header, only sooner).
    """
    try:
        with warnings.catch_warnings():  # astropy only warns about a truncated file, then drops HDUs
            warnings.simplefilter("error", VerifyWarning)
            with fits.open(io.BytesIO(data), memmap=False) as hdul:
                for hdu in hdul:
                    if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2:
                        pixels = rice.decode(hdu, data) if fast else None
                        if pixels is None:
                            pixels = np.asarray(hdu.data)
                        return pixels, hdu.header.copy()
    except Exception as exc:  # astropy raises many kinds for a broken file
        raise DecodeError(f"not a readable FITS file: {' '.join(str(exc).split())}") from None
    raise DecodeError("no image in this FITS file")


def decode_fits(data: bytes) -> fits.HDUList:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", VerifyWarning)
            hdul = fits.open(io.BytesIO(data), memmap=False)
            hdul.verify("exception")
        return hdul
    except Exception as exc:
        raise DecodeError(f"not a readable FITS file: {' '.join(str(exc).split())}") from None


def _apply(func: Callable, reader: Reader, data: bytes) -> Any:
    if reader == "image":
        image, header = decode_image(data)
        return func(image, header)
    if reader == "fits":
        with decode_fits(data) as hdul:
            return func(hdul)
    return func(data)


def _outcome(url: str, value: Any = None, error: str | None = None, nbytes: int = 0, kind: str = "") -> dict:
    return {"datakey": url, "value": value, "error": error, "kind": kind, "bytes": nbytes}


def _fetch(fs, urls: list[str], retries: int) -> dict[str, bytes | Exception]:
    """{url: bytes or the last error}; transient errors retried with back-off."""
    got: dict[str, bytes | Exception] = {}
    pending = list(urls)
    for attempt in range(retries + 1):
        answers = fs.cat(pending, on_error="return") if pending else {}
        if not isinstance(answers, dict):  # one path: fsspec returns the bytes themselves
            answers = {pending[0]: answers}
        retry = []
        for url in pending:
            value = answers.get(url, answers.get(url.split("://", 1)[-1]))
            if value is None:
                value = FileNotFoundError(url)
            got[url] = value
            if isinstance(value, Exception) and not isinstance(value, FileNotFoundError | PermissionError):
                retry.append(url)
        if not retry or attempt == retries:
            break
        time.sleep(0.2 * 2**attempt)
        pending = retry
    return got


def outcome_bytes(outcome: dict) -> int:
    """Bytes fetched for a file: counted by the task, or by a lazy reader (``bytes_read``)."""
    value = outcome.get("value")
    return outcome.get("bytes", 0) + (value.get("bytes_read", 0) if isinstance(value, dict) else 0)


def _reason(error: Exception) -> tuple[str, str]:
    if isinstance(error, FileNotFoundError):
        return "missing", "no such object"
    if isinstance(error, PermissionError):
        return "denied", f"access denied: {error}"
    return "fetch", f"could not fetch: {type(error).__name__}: {error}"


def run_batch(
    items: list[Item],
    func: Callable,
    reader: Reader = "image",
    storage_options: dict | None = None,
    concurrency: int = 16,
    fetch_retries: int = 2,
) -> list[dict]:
    """Outcomes of ``func`` over ``items``, one per item, in order."""
    if not items:
        return []
    fs = filesystem(items[0][0], storage_options)
    if reader == "lazy":
        return _run_lazy(fs, items, func, concurrency)
    groups = [[url for url, _ in items[i : i + concurrency]] for i in range(0, len(items), concurrency)]
    outcomes = []
    with ThreadPoolExecutor(1, thread_name_prefix="burst-prefetch") as prefetch:
        upcoming = prefetch.submit(_fetch, fs, groups[0], fetch_retries)
        for number, group in enumerate(groups):
            fetched = upcoming.result()
            if number + 1 < len(groups):  # fetch the next group while this one decodes
                upcoming = prefetch.submit(_fetch, fs, groups[number + 1], fetch_retries)
            for url in group:
                data = fetched[url]
                if isinstance(data, Exception):
                    kind, reason = _reason(data)
                    outcomes.append(_outcome(url, error=reason, kind=kind))
                    continue
                try:
                    outcomes.append(_outcome(url, _apply(func, reader, data), nbytes=len(data)))
                except DecodeError as exc:
                    outcomes.append(_outcome(url, error=str(exc), nbytes=len(data), kind="decode"))
                except Exception as exc:  # the user's function: report, never lose the file
                    outcomes.append(
                        _outcome(url, error=_function_error(exc), nbytes=len(data), kind="function")
                    )
            del fetched
    return outcomes


def _run_lazy(fs, items: list[Item], func: Callable, concurrency: int) -> list[dict]:
    """``func(fs, url)`` does its own (ranged) reads; files run ``concurrency`` at a time."""

    def one(url: str) -> dict:
        try:
            return _outcome(url, func(fs, url))
        except FileNotFoundError:
            return _outcome(url, error="no such object", kind="missing")
        except DecodeError as exc:
            return _outcome(url, error=str(exc), kind="decode")
        except Exception as exc:
            return _outcome(url, error=_function_error(exc), kind="function")

    with ThreadPoolExecutor(max(1, min(concurrency, len(items))), thread_name_prefix="burst-lazy") as pool:
        return list(pool.map(one, [url for url, _ in items]))


def _function_error(exc: Exception) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {exc} (at {where.name}, line {where.lineno})"
