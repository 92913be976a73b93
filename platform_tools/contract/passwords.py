"""Where one machine's per-person passwords are kept, agreed between the hub and the CLI.

``hub.auth: first-use`` and ``native`` give each person their own password. The hub's
authenticators check them; `parhelion class create --passwords` issues one-time passwords
into the same stores, so a student's first login must use the password the instructor
handed out (nobody else can claim the name first). Both sides find the stores here:

* first-use: jupyterhub-firstuseauthenticator's dbm file, username -> bcrypt hash, in the
  state directory's ``secrets/`` (0700; the file 0600);
* native: NativeAuthenticator's ``users_info`` table in the hub's own database
  (``hub/``, 0700), written through JupyterHub's and NativeAuthenticator's ORM.

Only bcrypt hashes are stored; a clear password exists only in the instructor's CSV.
"""

from __future__ import annotations

import dbm
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bcrypt

#: first-use's password store, in ``secrets/``.
FIRST_USE_STORE = "first-use-passwords"


def first_use_store(state_root: str | Path) -> Path:
    """The dbm base name first-use's passwords are kept under (dbm.dumb adds .dat, .dir, .bak)."""
    return Path(state_root).absolute() / "secrets" / FIRST_USE_STORE


def hub_database(state_root: str | Path) -> Path:
    """The local hub's SQLite database (JupyterHub's tables, and native's ``users_info``)."""
    return Path(state_root).absolute() / "hub" / "jupyterhub.sqlite"


def hash_password(password: str) -> bytes:
    """bcrypt, as both authenticators check it (salt and cost inside the hash)."""
    return bcrypt.hashpw(password.encode("utf8"), bcrypt.gensalt())


@contextmanager
def first_use_store_lock(path: str | Path) -> Iterator[None]:
    """The store's lock, held by whoever opens it: the hub at each login and password change,
    `class create` while it writes. Python's dbm may be dbm.dumb (no gdbm in the interpreter),
    which locks nothing and rewrites its whole index at close: two writers at once would lose
    one's entries. Each holder keeps it for milliseconds (hashes are computed before)."""
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def open_first_use_store(path: str | Path, flag: str = "c") -> Iterator[Any]:
    """The first-use store, locked and opened for ``flag``; its files stay 0600."""
    with first_use_store_lock(path):
        try:
            with dbm.open(str(path), flag, 0o600) as db:
                yield db
        finally:
            for file in Path(path).parent.glob(Path(path).name + "*"):
                os.chmod(file, 0o600)
