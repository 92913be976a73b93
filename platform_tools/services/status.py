"""`parhelion status`: what runs from a state directory, and whether it answers."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

from platform_tools.contract.services import AccountingPath, GatewayPath, accounting_api, gateway_api
from platform_tools.local.runtime import LocalRuntime
from platform_tools.local.statedir import StateDir
from platform_tools.services.processes import pid_alive


def _answers(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return f"HTTP {answer.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"no answer ({getattr(exc, 'reason', exc)})"


def status_report(state_dir: Path) -> tuple[bool, str]:
    """(running, text) for the platform of ``state_dir``."""
    state = StateDir(state_dir)
    holder = state.lock_holder()
    if holder is None:
        return False, f"Parhelion is not running from {state.root}."
    try:
        runtime = LocalRuntime.load(state.runtime_file)
    except FileNotFoundError:
        return True, f"Parhelion is starting from {state.root} (pid {holder})."
    uptime = time.time() - runtime.started_at
    checks = {
        "s3": f"{runtime.s3_url}/",
        "dask-gateway": gateway_api(runtime.gateway_url, GatewayPath.HEALTH),
        "accounting": accounting_api(runtime.accounting_url, AccountingPath.HEALTH),
        "jupyterhub": f"{runtime.hub_internal_url}/hub/health",
        "idle-culler": None,
    }
    lines = [
        f"Parhelion is running from {state.root} (pid {holder}, up {uptime / 60:.0f} min)",
        f"  hub: {runtime.hub_url}",
        "  limits: " + (", ".join(f"{k.replace('_', ' ')} {v}" for k, v in runtime.limits.items()) or "-"),
        f"  {'service':<14}{'pid':>8}  {'process':<9} check",
    ]
    for name, pid in runtime.pids.items():
        alive = "running" if pid_alive(pid) else "exited"
        url = checks.get(name)
        lines.append(f"  {name:<14}{pid:>8}  {alive:<9} {_answers(url) if url else '-'}")
    lines.append(f"  logs: {state.logs}")
    return True, "\n".join(lines)
