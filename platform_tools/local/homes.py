"""Users' home directories: created on first spawn, with the platform's notebooks."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from platform_tools.config import PlatformConfig
from platform_tools.config.materials import PLATFORM_NOTEBOOKS_FOLDER
from platform_tools.contract.accounts import user_home

log = logging.getLogger(__name__)

NOTEBOOKS_FOLDER = PLATFORM_NOTEBOOKS_FOLDER  # a class's materials never take it


def provide_notebooks(home: Path, notebooks: Path, uid: int | None = None, gid: int | None = None) -> bool:
    """Copy the platform's notebooks into ``home/notebooks`` unless that name exists.

    Never overwrites: a user's edits are theirs. A user who deletes the folder gets a
    fresh copy at the next start. Returns whether a copy was made.

    With ``uid`` (system-users) this runs as root in a home its user controls, while their
    other processes (a Dask worker, another server) may run: by name, a folder renamed and
    replaced by a link to ``/etc`` half-way would have root copy into it and chown it to the
    student. So the copy goes through open folders (``O_NOFOLLOW``, files ``O_EXCL``) and
    each one's owner is set on what was opened (``fchown``), never on a name.
    """
    target = home / NOTEBOOKS_FOLDER
    home.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(target) or not notebooks.is_dir():
        return False
    if uid is None:
        shutil.copytree(notebooks, target, ignore=shutil.ignore_patterns(*_NOT_COPIED))
    else:
        owner = (uid, gid if gid is not None else -1)
        home_fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            try:
                os.mkdir(NOTEBOOKS_FOLDER, 0o700, dir_fd=home_fd)
                fd = os.open(NOTEBOOKS_FOLDER, _FOLDER_FLAGS, dir_fd=home_fd)
            except OSError as exc:  # made, or swapped for a link, since: theirs, left alone
                log.warning("%s: not copying notebooks into %s: %s", home, NOTEBOOKS_FOLDER, exc)
                return False
            _copy_folder(notebooks, fd, owner)
            os.fchown(home_fd, *owner)
        finally:
            os.close(home_fd)
    log.info("copied notebooks into %s", target)
    return True


_NOT_COPIED = (".ipynb_checkpoints", "__pycache__")
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _copy_folder(source: Path, fd: int, owner: tuple[int, int]) -> None:
    """Fill the open folder ``fd``, just made by root, with ``source``'s files, then give it
    (and close it) to ``owner``: every step on descriptors, none on a path its owner can change."""
    try:
        for entry in sorted(os.scandir(source), key=lambda e: e.name):
            if entry.name in _NOT_COPIED:
                continue
            if entry.is_dir():
                os.mkdir(entry.name, 0o700, dir_fd=fd)  # in root's folder: nobody else's name
                _copy_folder(Path(entry.path), os.open(entry.name, _FOLDER_FLAGS, dir_fd=fd), owner)
            elif entry.is_file():
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                out = os.open(entry.name, flags, 0o600, dir_fd=fd)
                with open(entry.path, "rb") as reader, os.fdopen(out, "wb") as writer:
                    shutil.copyfileobj(reader, writer)
                    os.fchown(writer.fileno(), *owner)
                    os.fchmod(writer.fileno(), entry.stat().st_mode & 0o777)
        os.fchown(fd, *owner)
        os.fchmod(fd, source.stat().st_mode & 0o777)
    finally:
        os.close(fd)


def user_homes(platform: PlatformConfig, spawner: str, state_homes: Path) -> dict[str, Path]:
    """Every hub user's home that exists now, by hub name, where ``contract.accounts.user_home``
    puts it: what the meter charges (and the storage quota measures).

    ``simple``: the folders of the state directory's ``homes/`` (a home kept after its user left
    platform.yaml is still there, and still charged); ``system-users``: the home of every name
    platform.yaml lists anywhere (closed classes too), as the accounts' names cannot all be read
    back into hub names (a long name is a hash). A home being closed (``.<name>.closing``) is none.
    """
    if spawner == "system-users":
        names = set(platform.hub.admin_users) | set(platform.hub.users) | set(platform.users)
        for group in platform.groups.values():
            names.update(group.members)
    elif state_homes.is_dir():
        names = {path.name for path in state_homes.iterdir() if not path.name.startswith(".")}
    else:
        names = set()
    homes = {}
    for name in sorted(names):
        home = user_home(platform, spawner, state_homes, name)
        if home.is_dir() and not home.is_symlink():
            homes[name] = home
    return homes


_STATX_BTIME = 0x800
_AT_FDCWD = -100
_STATX_SIZE = 256  # struct statx, linux/stat.h
_BTIME_OFFSET = 80  # stx_btime: {__s64 tv_sec; __u32 tv_nsec; __s32 reserved}


def birth_time(path: Path) -> float | None:
    """When ``path`` was created (statx's btime), or None where the kernel, C library or
    filesystem does not say. Python's os.stat has no birth time on Linux; ctime is not one
    (it moves whenever a file is added to a folder)."""
    import ctypes
    import struct

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        statx = libc.statx
    except (OSError, AttributeError):
        return None
    buffer = ctypes.create_string_buffer(_STATX_SIZE)
    if statx(_AT_FDCWD, os.fsencode(path), 0, _STATX_BTIME, buffer) != 0:
        return None
    (mask,) = struct.unpack_from("<I", buffer.raw, 0)
    if not mask & _STATX_BTIME:
        return None
    seconds, nanoseconds = struct.unpack_from("<qI", buffer.raw, _BTIME_OFFSET)
    if seconds <= 0:  # files of an image made without birth times read as 1970
        return None
    return seconds + nanoseconds / 1e9


def home_lifetime(home: Path) -> tuple[str, float]:
    """(an identity of this home's life, when it began). A home deleted and made again is
    another life: it must not be charged for the time it did not exist, which it was when
    the meter knew it only by its user's name. Birth time (to the nanosecond) and inode name
    a life; where no birth time is known, the inode and the ctime first seen, a weaker proof
    (ext4 hands a new folder the inode just freed)."""
    info = home.stat()
    born = birth_time(home)
    if born is not None:
        return f"{info.st_ino}:{born:.9f}", born
    return f"{info.st_ino}", info.st_ctime
