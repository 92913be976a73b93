"""Files and buckets for catalog tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from platform_tools.catalog import IndexedFile


def make_files(start: datetime, count: int, step: timedelta, bucket: str = "bkt") -> list[IndexedFile]:
    return [
        IndexedFile(
            start + i * step,
            start + i * step + timedelta(seconds=3),
            f"s3://{bucket}/data/f{i:05d}.fits",
            1000 + i,
        )
        for i in range(count)
    ]
