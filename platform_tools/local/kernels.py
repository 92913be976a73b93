"""Where a local user's kernels listen: Unix sockets in a private directory, not TCP ports.

On one machine, many servers starting kernels at once (a class at 9:00) race for TCP ports:
jupyter_client finds a free port, closes it, and the kernel binds it a moment later, by when
another user's kernel may hold it. The kernel dies with "Address already in use", or one
kernel receives another's messages ("Invalid Signature"); either way the kernel restarts
and the cell the student ran is lost (the 20-student load test caught it). IPC transport has
no ports to race for, and its sockets sit in a directory only the user can enter, instead of
on 127.0.0.1 where every local account can reach them.

Unix socket paths are short (``sun_path``), so `parhelion up` makes a short base directory
for the platform's run and removes it at the end. A user's directory is named after them,
or after a hash of a name too long to fit (usernames may be 64 characters); if even that
does not fit (a very long TMPDIR) the user's kernels keep TCP, and the hub says so, rather
than kernels that cannot start.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

#: Longest Unix socket path Linux takes: sun_path is 108 bytes, with its NUL.
SOCKET_PATH_MAX = 107
#: jupyter_server names connection files ``kernel-<uuid4>.json`` in the runtime directory, and
#: jupyter_client puts a kernel's five sockets beside it as ``kernel-<uuid4>-ipc-<n>`` (n from 1,
#: past names still on disk; two digits allowed).
KERNEL_SOCKET_NAME = len("/kernel-") + 36 + len("-ipc-") + 2
IPC_ARGS = ["--KernelManager.transport=ipc"]
_HASHED = re.compile(r"^u-[0-9a-f]{16}$")


def fits(runtime_dir: Path) -> bool:
    """Whether a kernel's socket paths in ``runtime_dir`` stay within ``SOCKET_PATH_MAX``."""
    return len(os.fsencode(runtime_dir)) + KERNEL_SOCKET_NAME <= SOCKET_PATH_MAX


@contextlib.contextmanager
def socket_base() -> Iterator[Path]:
    """A short directory for a platform run's kernel sockets, removed when the run ends.

    Users may pass through it to their own directory, not list it (0711).
    """
    path = Path(tempfile.mkdtemp(prefix="parhelion-"))
    try:
        os.chmod(path, 0o711)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def user_runtime_dir(path: Path, uid: int | None = None, gid: int | None = None) -> Path:
    """The user's JUPYTER_RUNTIME_DIR: 0700, owned by the user's account."""
    path.mkdir(mode=0o700, exist_ok=True)
    owner = path.stat()
    if uid is not None and gid is not None and (owner.st_uid, owner.st_gid) != (uid, gid):
        os.chown(path, uid, gid)
    os.chmod(path, 0o700)
    return path


def runtime_dir_name(base: Path, username: str) -> str:
    """The username, or a short hash of it when the name would make the paths too long. A
    username shaped like a hash (``u-`` and 16 hex digits) is hashed too: kept as it is, it
    would be the folder, and the kernels' keys, of the long name it looks like."""
    if fits(base / username) and not _HASHED.match(username):
        return username
    return "u-" + hashlib.sha256(username.encode()).hexdigest()[:16]


def kernel_settings(
    base: str, username: str, uid: int | None = None, gid: int | None = None
) -> tuple[dict[str, str], list[str]]:
    """The environment and server arguments that put the user's kernels on IPC sockets.

    Nothing (TCP, jupyter_client's default) when there is no base or the paths would be too
    long for Unix sockets.
    """
    if not base:
        return {}, []
    path = Path(base) / runtime_dir_name(Path(base), username)
    if not fits(path):
        log.warning(
            "%s: kernel socket paths would exceed %d bytes; %s's kernels use TCP ports",
            path,
            SOCKET_PATH_MAX,
            username,
        )
        return {}, []
    user_runtime_dir(path, uid, gid)
    return {"JUPYTER_RUNTIME_DIR": str(path)}, list(IPC_ARGS)
