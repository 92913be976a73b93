"""Files re-read when they change, in long-running processes: platform.yaml, price catalogs.

Quotas and budgets change while the hub runs (the Ansible quotas play relies on it), and
`parhelion prices refresh` rewrites the price catalog the accounting service uses. Each
reader holds a live file; ``current()`` re-reads it when its path, modification time or
size changed. A file that does not load is rejected with a logged error that names the
problem, and the last good version stays in force.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from platform_tools.config.loader import ConfigError, load_platform
from platform_tools.config.models import PlatformConfig

log = logging.getLogger(__name__)
T = TypeVar("T")
Stamp = tuple[Path, int, int]


class LiveFile(Generic[T]):
    """The last good contents of a file that may change under a running process.

    ``path`` may be a callable, for a file whose location is itself configured (and so
    may change); the first load must succeed, later bad versions are only logged.
    """

    what: ClassVar[str] = "file"
    errors: ClassVar[tuple[type[Exception], ...]] = (ValueError,)

    def __init__(self, path: str | Path | Callable[[], Path], logger: logging.Logger | None = None):
        self._where = path if callable(path) else (lambda fixed=Path(path): fixed)
        self.log = logger or log
        self._lock = threading.Lock()
        self.path = Path(self._where())
        self._value: T = self.load(self.path)
        self._stamp = self._file_stamp(self.path)
        self.rejected: str | None = None  # why the newest version was not taken, if it was not

    def load(self, path: Path) -> T:
        raise NotImplementedError

    @staticmethod
    def _file_stamp(path: Path) -> Stamp | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return path, stat.st_mtime_ns, stat.st_size

    def current(self) -> T:
        path = Path(self._where())
        stamp = self._file_stamp(path)
        if stamp is None:  # a file being replaced, or a newly configured path not there yet
            missing = f"{path}: no such file"
            if path != self.path and self.rejected != missing:
                self.rejected = missing
                self.log.error("%s: keeping the last good one from %s", missing, self.path)
            return self._value
        if stamp == self._stamp:
            return self._value
        with self._lock:
            if stamp == self._stamp:
                return self._value
            self._stamp = stamp
            try:
                self._value = self.load(path)
                self.path = path
                self.rejected = None
                self.log.info("%s reloaded from %s", self.what, path)
            except self.errors as exc:
                self.rejected = str(exc)
                self.log.error("%s changed but is not valid; keeping the last good one:\n%s", self.what, exc)
            return self._value


class LiveConfig(LiveFile[PlatformConfig]):
    """platform.yaml: quotas, budgets and profiles take effect with no restart."""

    what = "platform.yaml"
    errors = (ConfigError,)

    def load(self, path: Path) -> PlatformConfig:
        return load_platform(path)
