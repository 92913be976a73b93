"""The local platform's state directory: everything it keeps, in one place.

::

    .parhelion/
      platform.yaml      the live configuration (what hub, gateway and tools read)
      runtime.json       ports, URLs and pids of the running platform (while it runs)
      parhelion.lock     held (flock) by the running `parhelion up`
      secrets/           generated tokens, keys and passwords (0700; files 0600)
      hub/               JupyterHub's database and proxy pid file
      gateway/           dask-gateway cluster working directories
      archive/<bucket>/  folders rclone serves as S3 buckets
      seed/              seed manifests that prove a bucket complete
      quarantine/        buckets set aside because they failed verification
      homes/<user>/      users' home directories
      logs/              one log per service
      tmp/               scratch space (same filesystem, for atomic renames)

Deleting the folder resets the platform; nothing outside it is written.

Everything in it is the platform's OS user's alone: the ledger holds everyone's spend and the
names of their Dask clusters (the gateway's own addresses; dashboards are served to their
owners only, gateway/dashboards.py), the logs hold URLs and names,
platform.yaml who is who. So directories are 0700 and files 0600 (``PRIVATE_UMASK`` for what
the platform's services create). With ``local.spawner: system-users`` the root and ``gateway/``
are 0711 instead: dask-gateway runs each user's scheduler as that user in a directory of theirs
under ``gateway/clusters/``, which they must reach without listing anything on the way.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
from collections.abc import Callable
from pathlib import Path

#: The platform's services create files only their own OS user reads (0600, dirs 0700).
PRIVATE_UMASK = 0o077
#: Files the platform made with the old 0644 that ``prepare`` makes private.
PRIVATE_FILES = (
    "platform.yaml",
    "platform.yaml.previous",
    "runtime.json",
    "parhelion.lock",
    "rclone.conf",
    "accounting.sqlite",
    "accounting.sqlite-wal",
    "accounting.sqlite-shm",
)


class AlreadyRunning(RuntimeError):
    """Another `parhelion up` holds this state directory."""


class StateDir:
    def __init__(self, root: str | Path):
        self.root = Path(root).absolute()
        self._lock_fd: int | None = None

    # Paths are properties so the layout above is the only place they are decided.
    @property
    def platform_file(self) -> Path:
        return self.root / "platform.yaml"

    @property
    def runtime_file(self) -> Path:
        return self.root / "runtime.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "parhelion.lock"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def hub(self) -> Path:
        return self.root / "hub"

    @property
    def gateway(self) -> Path:
        return self.root / "gateway"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def seed(self) -> Path:
        return self.root / "seed"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def homes(self) -> Path:
        return self.root / "homes"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def prepare(self, traversable: bool = False) -> None:
        """Create the layout, private to the platform's OS user (see the module's docstring);
        ``traversable``: the root and ``gateway/`` 0711, for system-users' Dask schedulers.
        A state directory made before this rule is tightened: its files become 0600."""
        passage = 0o711 if traversable else 0o700
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, passage)
        for path in (self.hub, self.archive, self.seed, self.homes, self.logs, self.tmp, self.secrets):
            path.mkdir(mode=0o700, exist_ok=True)
            os.chmod(path, 0o700)
        self.gateway.mkdir(mode=passage, exist_ok=True)
        os.chmod(self.gateway, passage)
        for path in [*(self.root / name for name in PRIVATE_FILES), *self.logs.iterdir()]:
            if path.is_file() and not path.is_symlink():
                os.chmod(path, 0o600)

    # ------------------------------------------------------------------ secrets

    def secret(self, name: str, make: Callable[[], str] = lambda: secrets.token_hex(32)) -> tuple[str, bool]:
        """The secret ``name``, made on first use. Returns (value, newly_made)."""
        path = self.secrets / name
        try:
            return path.read_text().strip(), False
        except FileNotFoundError:
            pass
        value = make()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        return value, True

    def secret_path(self, name: str) -> Path:
        return self.secrets / name

    # --------------------------------------------------------------------- lock

    def acquire(self) -> None:
        """Hold the state directory for this process, or raise AlreadyRunning."""
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                holder = self.lock_holder()
                raise AlreadyRunning(
                    f"Parhelion is already running from {self.root}"
                    + (f" (pid {holder})" if holder else "")
                    + ": see `parhelion status`, stop it with Ctrl-C or `parhelion down`"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def lock_holder(self) -> int | None:
        """The pid of the `parhelion up` holding the lock, or None if nobody does."""
        try:
            fd = os.open(self.lock_file, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                text = os.read(fd, 32).decode().strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)
