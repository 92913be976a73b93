"""What a running local platform looks like: ports, URLs, paths and pids.

`parhelion up` writes it to ``runtime.json`` before starting anything; the thin
hub_config files read it (through ``PARHELION_RUNTIME``) to learn where everything
listens, and `parhelion status` reads it to report. Secrets are not in it: they stay
in the state directory's secrets/ folder and are read from there.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from platform_tools.contract.services import GATEWAY_PREFIX, hub_api

if TYPE_CHECKING:
    from platform_tools.config import PlatformConfig

HOST = "127.0.0.1"


@dataclass
class Ports:
    hub: int
    hub_api: int
    proxy_api: int
    gateway: int
    gateway_scheduler: int
    s3: int
    accounting: int


@dataclass
class LocalRuntime:
    state_dir: str
    hub_config_dir: str
    notebooks_dir: str
    proxy_command: str
    public_host: str
    ports: Ports
    supervisor_pid: int = 0
    started_at: float = 0.0
    pids: dict[str, int] = field(default_factory=dict)
    kernel_socket_dir: str = ""  # users' kernels listen on Unix sockets here (local/kernels.py)
    # what enforces CPU and memory limits (local/cgroups.py enforcement): servers, dask_workers
    limits: dict[str, str] = field(default_factory=dict)
    #: "simple" or "system-users", decided once by `parhelion up` (PlatformConfig.local_spawner):
    #: hub, gateway, accounting and `class` commands read it here, so a platform.yaml edited
    #: while the platform runs never makes them disagree about whose account a user runs as.
    spawner: str = ""

    def spawner_of(self, platform: PlatformConfig) -> str:
        """The running spawner (a runtime.json from before it was recorded: the config's)."""
        return self.spawner or platform.local_spawner

    # --------------------------------------------------------------------- URLs

    @property
    def hub_url(self) -> str:
        """What people open in a browser."""
        return f"http://{self.public_host}:{self.ports.hub}"

    @property
    def hub_internal_url(self) -> str:
        return f"http://{HOST}:{self.ports.hub}"

    @property
    def hub_api_url(self) -> str:
        return hub_api(f"http://{HOST}:{self.ports.hub_api}")

    @property
    def gateway_url(self) -> str:
        """The gateway's own HTTP proxy, behind the hub's at /services/dask-gateway."""
        return f"http://{HOST}:{self.ports.gateway}"

    @property
    def gateway_public_url(self) -> str:
        return f"{self.hub_internal_url}{GATEWAY_PREFIX}"

    @property
    def gateway_scheduler_address(self) -> str:
        return f"gateway://{HOST}:{self.ports.gateway_scheduler}"

    @property
    def accounting_url(self) -> str:
        """The accounting service's origin, as registered with the hub (``contract.accounting_api``
        adds its prefix and a route)."""
        return f"http://{HOST}:{self.ports.accounting}"

    @property
    def s3_url(self) -> str:
        return f"http://{HOST}:{self.ports.s3}"

    # -------------------------------------------------------------- persistence

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> LocalRuntime:
        data = json.loads(Path(path).read_text())
        data["ports"] = Ports(**data["ports"])
        return cls(**data)

    @classmethod
    def from_environment(cls) -> LocalRuntime:
        """The runtime of the platform this process belongs to (set by `parhelion up`)."""
        path = os.environ.get("PARHELION_RUNTIME")
        if not path:
            raise RuntimeError(
                "PARHELION_RUNTIME is not set: this configuration is started by `parhelion up`"
            )
        return cls.load(path)
