"""platform.yaml for a pod that cannot mount it: from its ConfigMap, kept current.

The dask-gateway chart gives its API pod environment variables but no extra volumes. So
the chart hands the gateway platform.yaml's text in ``PARHELION_CONFIG_YAML`` (a
``configMapKeyRef``) for its start, and the gateway follows later changes by reading the
ConfigMap through the Kubernetes API (one GET of one object, allowed by a Role naming
just that ConfigMap). Both land in a file, so everything that follows files (LiveConfig:
quotas and budgets that change with no restart) works as it does with a mounted one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from platform_tools.config.loader import ConfigError, ConfigIssue, load_platform, parse_platform
from platform_tools.config.models import PlatformConfig

log = logging.getLogger(__name__)

PATH_VARIABLE = "PARHELION_CONFIG"
TEXT_VARIABLE = "PARHELION_CONFIG_YAML"
CONFIGMAP_VARIABLE = "PARHELION_CONFIG_CONFIGMAP"
KEY = "platform.yaml"


def write_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    """Readers see the old file or the new one, never half of it.

    The new file keeps the old one's mode and owner (an admin's 0640 platform.yaml stays
    0640, not the umask's 0644); a new file gets ``mode``. The partial file is private from
    its first byte and unique to this writer.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        before = path.stat()
    except FileNotFoundError:
        before = None
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            if before is not None:
                if (before.st_uid, before.st_gid) != (os.geteuid(), os.getegid()):
                    with contextlib.suppress(PermissionError):
                        os.fchown(handle.fileno(), before.st_uid, before.st_gid)
                mode = stat.S_IMODE(before.st_mode)
            os.fchmod(handle.fileno(), mode)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise


def platform_from_environment(
    environ: Mapping[str, str] = os.environ, directory: str | Path | None = None
) -> tuple[Path, PlatformConfig]:
    """platform.yaml as a file and validated: a mounted one, or the text of the ConfigMap.

    ``PARHELION_CONFIG`` names a mounted file; otherwise ``PARHELION_CONFIG_YAML`` holds
    the text, which is validated (errors name the ConfigMap, line and field) and then
    written to ``directory`` (default: a new private temporary directory).
    """
    if environ.get(PATH_VARIABLE):
        path = Path(environ[PATH_VARIABLE])
        return path, load_platform(path)
    text = environ.get(TEXT_VARIABLE)
    if text is None:
        problem = f"neither {PATH_VARIABLE} (a platform.yaml path) nor {TEXT_VARIABLE} (its text) is set"
        raise ConfigError([ConfigIssue("environment", None, None, (), problem)])
    configmap = environ.get(CONFIGMAP_VARIABLE, "?")
    platform = parse_platform(text, source=f"ConfigMap {configmap}, key {KEY} (${TEXT_VARIABLE})")
    path = Path(directory or tempfile.mkdtemp(prefix="parhelion-")) / KEY
    write_atomically(path, text)
    return path, platform


class ConfigMapMirror:
    """Copies one key of a ConfigMap into a file whenever it changes.

    ``core_api`` is a kubernetes_asyncio ``CoreV1Api``. A text that does not validate is
    still copied: the file's reader (LiveConfig) rejects it with a message naming the
    problem and keeps the last good version, exactly as for a mounted file.
    """

    def __init__(
        self,
        core_api: Any,
        namespace: str,
        name: str,
        path: Path,
        key: str = KEY,
        interval: float = 30.0,
        logger: logging.Logger | None = None,
    ):
        self.core_api = core_api
        self.namespace = namespace
        self.name = name
        self.path = Path(path)
        self.key = key
        self.interval = interval
        self.log = logger or log

    @property
    def where(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name}, key {self.key}"

    async def refresh(self) -> bool:
        """Copy the key if it changed; True when the file was rewritten."""
        configmap = await self.core_api.read_namespaced_config_map(self.name, self.namespace)
        text = (configmap.data or {}).get(self.key)
        if text is None:
            self.log.error("%s: no such key; keeping %s as it is", self.where, self.path)
            return False
        try:
            if self.path.read_text(encoding="utf-8") == text:
                return False
        except FileNotFoundError:
            pass
        write_atomically(self.path, text)
        self.log.info("%s changed; copied to %s", self.where, self.path)
        return True

    async def follow(self) -> None:
        """Refresh every ``interval`` seconds until cancelled; API errors are retried."""
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API server restarting, RBAC being changed, ...
                self.log.warning(
                    "%s: cannot read it (%s); trying again in %gs", self.where, exc, self.interval
                )
            await asyncio.sleep(self.interval)
