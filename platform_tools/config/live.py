"""platform.yaml, re-read when it changes, in long-running processes.

Quotas and budgets change while the hub runs (the Ansible quotas play relies on it).
Each reader holds a LiveConfig; ``current()`` re-reads the file when its modification
time or size changed. A file that does not validate is rejected with a logged error
naming the field, and the last good configuration stays in force.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from .loader import ConfigError, load_platform
from .models import PlatformConfig

log = logging.getLogger(__name__)


class LiveConfig:
    def __init__(self, path: str | Path, logger: logging.Logger | None = None):
        self.path = Path(path)
        self.log = logger or log
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._config: PlatformConfig = load_platform(self.path)  # the first must be good
        self._stamp = self._file_stamp()
        self.rejected: str | None = None  # why the newest file was not taken, if it was not

    def _file_stamp(self) -> tuple[float, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def current(self) -> PlatformConfig:
        stamp = self._file_stamp()
        if stamp is None or stamp == self._stamp:
            return self._config
        with self._lock:
            if stamp == self._stamp:
                return self._config
            self._stamp = stamp
            try:
                self._config = load_platform(self.path)
                self.rejected = None
                self.log.info("platform.yaml reloaded from %s", self.path)
            except ConfigError as exc:
                self.rejected = str(exc)
                self.log.error("platform.yaml changed but is not valid; keeping the last good one:\n%s", exc)
            return self._config
