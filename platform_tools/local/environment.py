"""What a local platform's servers and Dask workers find in their environment.

The hub gives it to every server and the gateway to every Dask scheduler and worker, so a
notebook and the workers it starts reach the same archives with the same keys, and price
their clusters with the same node.
"""

from __future__ import annotations

import dataclasses
import json

from platform_tools.config import PlatformConfig
from platform_tools.contract.environment import (
    ARCHIVES_VARIABLE,
    NODE_VARIABLE,
    archive_environment,
    archive_storage_options,
    default_archive,
)
from platform_tools.local.runtime import LocalRuntime
from platform_tools.local.statedir import StateDir
from platform_tools.pricing.catalog import PriceError
from platform_tools.pricing.node import configured_node


def user_data_environment(platform: PlatformConfig, runtime: LocalRuntime, state: StateDir) -> dict[str, str]:
    """Archive variables for servers and Dask workers (local archives get the rclone URL).

    ``PARHELION_STATE_DIR`` marks every process of a local platform, down to Dask
    workers, so a supervisor or a test can find them all.
    """
    env = {"PARHELION_STATE_DIR": str(state.root)}
    local = {
        "endpoint_url": runtime.s3_url,
        "access_key": state.secret("s3-access-key")[0],
        "secret_key": state.secret("s3-secret-key")[0],
    }
    buckets = {
        archive.bucket: archive_storage_options(archive, **(local if archive.local else {}))
        for archive in platform.archives.values()
    }
    env[ARCHIVES_VARIABLE] = json.dumps(buckets, sort_keys=True)
    try:  # what burst reports price a cluster with (the cost rule's node)
        env[NODE_VARIABLE] = json.dumps(dataclasses.asdict(configured_node(platform, state.root)))
    except PriceError:  # `parhelion up` refuses to start without it; never fail a spawn over it
        pass
    archive = default_archive(platform)
    if archive is None:
        return env
    return env | archive_environment(archive, **(local if archive.local else {}))
