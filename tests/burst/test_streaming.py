"""Burst at scale: a plan of many small tasks, and results streamed to parquet instead of held."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from platform_tools.burst import burst_map
from platform_tools.burst.plan import plan_batches
from tests.burst.conftest import SERIES

pytestmark = pytest.mark.integration


@pytest.mark.unit
def test_a_big_job_is_planned_in_small_steps_quickly():
    """130k tiny files on 2 threads: enough tasks for a smooth bar, each bounded, in O(n)."""
    items = [(f"s3://b/aia/{i:06d}.fits", 2880) for i in range(129_758)]
    started = time.perf_counter()
    batches = plan_batches(items, threads=2)
    seconds = time.perf_counter() - started
    assert [url for batch in batches for url, _ in batch] == [url for url, _ in items]  # all, in order
    assert 200 <= len(batches) <= 2000  # the bar moves by at most 0.5 % of the files
    assert max(len(batch) for batch in batches) <= 2000
    assert seconds < 1.0, seconds
    few = plan_batches([(f"s3://b/{i}", 2880) for i in range(1000)], threads=2)
    assert min(len(batch) for batch in few[:-1]) >= 16  # a small job keeps full fetch groups


def picky(image, header):
    if header["DATE-OBS"].startswith("2024-05-08T01:00"):
        raise ValueError("this one is odd")
    return {"rate": float(image.mean()) / header["EXPTIME"], "date_obs": header["DATE-OBS"]}


def test_streamed_results_equal_the_in_memory_ones(aia_bucket, local_client, s3_server, tmp_path):
    files = aia_bucket.query("aia_94")
    corrupt = s3_server.root / "burst-aia" / "stream" / "corrupt.fits"
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(SERIES.fits_bytes(0)[:5000])
    extra = files.iloc[:2].copy()
    extra["datakey"] = ["s3://burst-aia/stream/corrupt.fits", "s3://burst-aia/stream/never-uploaded.fits"]
    files = pd.concat([files.iloc[:10], extra, files.iloc[10:]], ignore_index=True)
    options = s3_server.storage_options
    seen = []

    in_memory = burst_map(picky, files, client=local_client, storage_options=options, progress=False)
    streamed = burst_map(
        picky,
        files,
        client=local_client,
        storage_options=options,
        progress=lambda done, total: seen.append((done, total)),
        output=tmp_path / "run.parquet",
    )

    assert streamed.output == str(tmp_path / "run.parquet") and in_memory.output is None
    parts = sorted(p.name for p in (tmp_path / "run.parquet").iterdir())
    # the first batch's rows written at once (values parquet cannot hold stop the run there),
    # the rest gathered into parts of up to PART_ROWS rows: one more for this small job
    assert parts == ["part-00000.parquet", "part-00001.parquet"]
    results = streamed.results
    pd.testing.assert_frame_equal(results, in_memory.results)
    pd.testing.assert_frame_equal(streamed.failures, in_memory.failures)
    # every file exactly once: in results or in failures
    ended = list(results["datakey"]) + list(streamed.failures["datakey"])
    assert sorted(ended) == sorted(files["datakey"]) and len(set(ended)) == len(ended)
    assert dict(zip(streamed.failures["datakey"], streamed.failures["kind"], strict=True)) == {
        "s3://burst-aia/stream/corrupt.fits": "decode",
        "s3://burst-aia/stream/never-uploaded.fits": "missing",
        files["datakey"].iloc[2]: "function",
    }
    assert list(results["datakey"]) == [
        k for k in files["datakey"] if k not in set(streamed.failures["datakey"])
    ]
    assert (streamed.report.succeeded, streamed.report.failed) == (len(files) - 3, 3)
    # the callback bar: the pilot's files, then every batch moved it, up to every file
    counts = [done for done, _ in seen]
    assert seen[-1] == (len(files), len(files)) and counts == sorted(set(counts))
    assert len(seen) == streamed.report.tasks + 1
    # the folder is a parquet dataset of its own, catalog columns and values
    on_disk = pd.read_parquet(tmp_path / "run.parquet")
    assert {"start", "filesize", "rate", "date_obs"} <= set(on_disk.columns) and len(on_disk) == len(results)


def test_output_must_be_a_new_folder(aia_bucket, local_client, s3_server, tmp_path):
    (tmp_path / "run.parquet").mkdir()
    (tmp_path / "run.parquet" / "part-00000.parquet").write_bytes(b"an earlier run")
    with pytest.raises(ValueError, match="already has files"):
        burst_map(
            picky,
            aia_bucket.query("aia_94").head(2),
            client=local_client,
            storage_options=s3_server.storage_options,
            output=tmp_path / "run.parquet",
        )


@pytest.mark.unit
def test_slow_files_make_short_tasks_so_the_bar_keeps_moving():
    """At 10 ms a file on 2 threads, a task of about 2 s: one ends about every second."""
    items = [(f"s3://b/aia/{i:06d}.fits", 2880) for i in range(129_758)]
    quick = plan_batches(items, threads=2)
    slow = plan_batches(items, threads=2, seconds_per_file=0.01)
    assert max(len(batch) for batch in slow) == 200 < max(len(batch) for batch in quick)
    heavy = plan_batches(items[:1000], threads=2, seconds_per_file=1.0)  # AIA decode: whole groups still
    assert min(len(batch) for batch in heavy[:-1]) >= 32


@pytest.mark.unit
def test_parts_whose_value_types_differ_are_one_readable_dataset(tmp_path, monkeypatch):
    """Integers in one part and floats or nulls in another: pandas' read of the folder refused
    it (ArrowInvalid) until the parts were given one schema at the run's end."""
    import numpy as np

    from platform_tools.burst import output

    monkeypatch.setattr(output, "PART_ROWS", 3)
    frame = pd.DataFrame({"datakey": [f"s3://b/{i}" for i in range(8)], "filesize": range(8)})
    store = output.ParquetResults(frame, tmp_path / "run.parquet")
    store.add(np.array([0, 1]), [1, 2])  # the first batch: written at once, integers
    store.add(np.array([2, 3, 4]), [3, 4.5, None])
    store.add(np.array([5, 6, 7]), [6, 7, 8])
    store.close()
    assert len(list((tmp_path / "run.parquet").iterdir())) == 3
    on_disk = pd.read_parquet(tmp_path / "run.parquet").sort_index()
    assert on_disk["value"].tolist()[:4] == [1.0, 2.0, 3.0, 4.5] and on_disk["value"].isna().sum() == 1
    pd.testing.assert_frame_equal(store.results(), on_disk.reset_index(drop=True))
