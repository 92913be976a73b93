"""The one Kubernetes client setup: in-cluster, from a kubeconfig, or a given configuration.

Every Parhelion process that talks to the Kubernetes API (the accounting service's meter and
placeholders, `parhelion class ... --kubernetes`) gets its ``kubernetes_asyncio`` ``ApiClient``
here (dask-gateway's kubernetes backend, which also follows the platform ConfigMap, keeps its
own upstream client), so credentials are found one way everywhere:
an explicit configuration (tests, a stand-in API server) first, then a kubeconfig file if
one is named, then the pod's service account, then the default kubeconfig.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any


async def configuration(kubeconfig: Path | str | None = None) -> Any:
    """A ``kubernetes_asyncio`` client Configuration, found as the module docstring says."""
    from kubernetes_asyncio import client, config

    loaded = client.Configuration()
    if kubeconfig:
        await config.load_kube_config(config_file=str(kubeconfig), client_configuration=loaded)
        return loaded
    try:
        config.load_incluster_config(client_configuration=loaded)
    except config.ConfigException:
        await config.load_kube_config(client_configuration=loaded)
    return loaded


@contextlib.asynccontextmanager
async def api_client(configured: Any = None, kubeconfig: Path | str | None = None) -> AsyncIterator[Any]:
    """An open ``ApiClient``: with ``configured`` if given, else as :func:`configuration` finds."""
    from kubernetes_asyncio import client

    settings = configured if configured is not None else await configuration(kubeconfig)
    async with client.ApiClient(configuration=settings) as api:
        yield api
