"""Cluster options users may set, bounded by platform.yaml's dask_gateway section.

Shared by the local and Kubernetes backends: a user asks for worker cores and memory
within the configured ranges; the handler turns the choice into backend settings.
"""

from __future__ import annotations

from typing import Any

from dask_gateway_server.options import Float, Options

from platform_tools.config.models import DaskGatewayConfig

GIB = 2**30


def size_fields(gateway: DaskGatewayConfig) -> list[Float]:
    """Worker cores and memory, within platform.yaml's ranges (every backend offers them)."""
    cores, memory = gateway.worker_cores, gateway.worker_memory_gib
    return [
        Float("worker_cores", default=cores.default, min=cores.min, max=cores.max, label="Cores per worker"),
        Float(
            "worker_memory",
            default=memory.default,
            min=memory.min,
            max=memory.max,
            label="Memory per worker (GiB)",
        ),
    ]


def cluster_options(gateway: DaskGatewayConfig) -> Options:
    return Options(*size_fields(gateway), handler=options_handler)


def options_handler(options: Any, user: Any = None) -> dict[str, Any]:
    """Backend settings for the chosen options.

    Only per-worker sizes are set here: combining cluster_max_workers with
    cluster_max_cores in one handler made dask-gateway ignore the cores bound, so the
    per-cluster worker bound stays in static configuration.
    """
    return {
        "worker_cores": options.worker_cores,
        "worker_memory": int(options.worker_memory * GIB),
    }
