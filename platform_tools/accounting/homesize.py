"""How much disk one home takes: the measurement behind the storage quota.

What a home costs the machine is the blocks its files hold, so that is what is counted
(``st_blocks`` x 512), not their apparent size: a sparse file of 100 GiB that holds 4 KiB
must not lock its owner out, and a quota counted in apparent sizes would be beaten by
nothing (and beaten the other way by a truncate). A file hard-linked several times inside
the home holds its blocks once and is counted once.

The walk never follows a symbolic link (a link to ``/`` or a loop of links must not be
walked, nor another user's home counted as this one's) and never crosses into another
file system mounted inside the home (a bind mount of the archive or a scratch disk is not
the home's disk). What it cannot read (a folder the user made 0000, or one the service is
not allowed into) is counted as unreadable and skipped: the figure is then a lower bound,
which is still a proof when it is already over the quota. Entries removed while the walk
runs are skipped; a home that is gone (or out of the service's reach) when the walk
begins measures as None: not known.

The walk is ``os.scandir`` plus one ``lstat`` per entry (and an ``open`` per folder, checked
to be the folder listed): about 0.5 s per 100,000 entries on two quiet cores, several times
that on busy ones (``benchmarks/storage.py``; README, "Measured"), so the accounting service
measures every home on its own, slower cadence and keeps the figures (``storage.StorageGauge``).
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

#: The unit of st_blocks (POSIX leaves it open; Linux, and every file system here, uses 512).
BLOCK = 512


@dataclass(frozen=True)
class HomeSize:
    """One home's measurement: allocated bytes, and how sure they are."""

    used_bytes: int
    files: int  # entries counted (files, folders, links), each hard-linked file once
    unreadable: int  # folders that could not be listed: used_bytes is then a lower bound
    at: float  # when the walk finished (time.time())
    seconds: float  # how long the walk took

    @property
    def used_gib(self) -> float:
        return self.used_bytes / 2**30

    @property
    def complete(self) -> bool:
        return self.unreadable == 0


def measure_home(home: Path) -> HomeSize | None:
    """The blocks under ``home`` (None when ``home`` is not a folder that exists)."""
    started = time.monotonic()
    try:
        top = os.lstat(home)
    except OSError:  # gone, or a parent the service may not enter: not known
        return None
    if not stat.S_ISDIR(top.st_mode):
        return None  # a home replaced by a link or a file is not walked
    device = top.st_dev
    used = top.st_blocks * BLOCK
    files = 0
    unreadable = 0
    linked: set[int] = set()  # inodes of files with several links, seen already
    folders = [(os.fspath(home), top.st_ino)]
    while folders:
        folder, inode = folders.pop()
        try:
            fd = _open_folder(folder, device, inode)
        except FileNotFoundError:  # removed since its parent was listed
            continue
        except OSError:  # PermissionError, an I/O error, or no longer the folder listed
            unreadable += 1
            continue
        try:
            entries = os.scandir(fd)
        except OSError:
            os.close(fd)
            unreadable += 1
            continue
        with entries:
            for entry in _entries(entries):
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError:
                    unreadable += 1
                    continue
                if info.st_dev != device:
                    continue  # a file system mounted inside the home: not the home's disk
                if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                    if info.st_ino in linked:
                        continue
                    linked.add(info.st_ino)
                files += 1
                used += info.st_blocks * BLOCK
                if stat.S_ISDIR(info.st_mode):
                    folders.append((os.path.join(folder, entry.name), info.st_ino))
        os.close(fd)
    return HomeSize(used, files, unreadable, time.time(), time.monotonic() - started)


def _open_folder(path: str, device: int, inode: int) -> int:
    """The folder at ``path``, opened only if it is still the one listed (``device``,
    ``inode``). Its owner may rename folders and put links in their place while the walk
    (as root) runs: by path alone, ``a/b`` listed as a folder and then reached through an
    ``a`` made a link to ``/`` or to another home would walk there, counting (and telling)
    what the student cannot read, or the whole disk at every pass."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    info = os.fstat(fd)
    if (info.st_dev, info.st_ino) != (device, inode):
        os.close(fd)
        raise NotADirectoryError(f"{path} is no longer the folder that was listed")
    return fd


def _entries(iterator):
    """A scandir iterator's entries; a folder removed or made unreadable while it is listed
    ends its listing (what was listed still counts)."""
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except OSError:
            return
