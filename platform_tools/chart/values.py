"""The chart's own values, as models, and helm/parhelion/values.schema.json generated from them.

The schema is the platform.yaml model (under ``platform:``) plus these models, every object
closed (additionalProperties false), so ``helm template`` rejects a misspelt or invalid key
and names it. The upstream charts' values (``jupyterhub:``, ``dask-gateway:``) are theirs
to check. ``parhelion chart schema --write`` regenerates the file; a test fails when it is
stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from platform_tools.config.models import PlatformConfig

CHART_DIR = Path(__file__).resolve().parents[2] / "helm" / "parhelion"
SCHEMA_PATH = CHART_DIR / "values.schema.json"
Quantity = str
# repository:tag (helm checks this; "latest" is refused by the model and the chart tests)
IMAGE_PATTERN = r"^[^:\s]+:[A-Za-z0-9._-]+$"


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resources(Closed):
    requests: dict[Literal["cpu", "memory"], Quantity]
    limits: dict[Literal["cpu", "memory"], Quantity]


class Database(Closed):
    existingSecret: str = Field("", description="Secret with a PostgreSQL URL; empty: SQLite on a volume.")  # noqa: N815
    secretKey: str = "database-url"  # noqa: N815
    size: Quantity = "5Gi"
    storageClassName: str = "gp3"  # noqa: N815


class Accounting(Closed):
    enabled: bool = True
    image: str = Field(pattern=IMAGE_PATTERN, description="repository:tag, never latest")
    apiTokenSecret: str  # noqa: N815
    database: Database
    resources: Resources
    nodeSelector: dict[str, str] = Field(  # noqa: N815
        default_factory=lambda: {"parhelion.dev/pool": "core"},
        description="Where it runs: the core pool (null on a cluster without Parhelion's pools).",
    )
    serviceAccountAnnotations: dict[str, str] = Field(default_factory=dict)  # noqa: N815


class UsersServiceAccount(Closed):
    create: bool = True
    name: str = "parhelion-user"
    annotations: dict[str, str] = Field(default_factory=dict)


class Users(Closed):
    serviceAccount: UsersServiceAccount  # noqa: N815


class NetworkPolicies(Closed):
    enabled: bool = True
    metadataCidr: str = "169.254.169.254/32"  # noqa: N815
    privateCidrs: list[str] = Field(default_factory=list)  # noqa: N815


class Taint(Closed):
    key: str
    value: str
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class PoolLimits(Closed):
    cpu: Quantity
    memory: Quantity


class Pool(Closed):
    capacityTypes: list[Literal["on-demand", "spot"]] = Field(min_length=1)  # noqa: N815
    instanceFamilies: list[str] = Field(min_length=1)  # noqa: N815
    taints: list[Taint] = Field(default_factory=list)
    expireAfter: str = "720h"  # noqa: N815
    consolidationPolicy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"]  # noqa: N815
    consolidateAfter: str  # noqa: N815
    limits: PoolLimits


class Karpenter(Closed):
    enabled: bool = True
    clusterName: str  # noqa: N815
    nodeRole: str  # noqa: N815
    amiAlias: str = "al2023@latest"  # noqa: N815
    rootVolumeSize: Quantity = "80Gi"  # noqa: N815
    # on every instance, root volume and launch template Karpenter makes; parhelion.dev/cluster
    # (the cost-allocation tag) is always there, set to clusterName unless given here
    tags: dict[str, str] = Field(default_factory=dict)
    pools: dict[Literal["core", "users", "dask-workers"], Pool]


class Placeholders(Closed):
    replicas: int = Field(0, ge=0)
    image: str = Field(pattern=IMAGE_PATTERN)
    cpu: Quantity = "1"
    memory: Quantity = "4Gi"


class Homes(Closed):
    createStorageClass: bool = True  # noqa: N815
    storageClassName: str = "gp3"  # noqa: N815


class Scratch(Closed):
    enabled: bool = False
    fileSystemId: str = ""  # noqa: N815
    capacity: Quantity = "1Ti"


class Storage(Closed):
    homes: Homes
    scratch: Scratch


class ChartValues(Closed):
    """Parhelion's own top-level keys (the upstream charts' are added as open objects)."""

    platform: PlatformConfig
    accounting: Accounting
    users: Users
    networkPolicies: NetworkPolicies  # noqa: N815
    karpenter: Karpenter
    placeholders: Placeholders
    storage: Storage


def render_schema() -> str:
    schema = ChartValues.model_json_schema(mode="validation")
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["title"] = "Parhelion chart values"
    schema["properties"]["jupyterhub"] = {"type": "object", "description": "zero-to-jupyterhub's values."}
    schema["properties"]["dask-gateway"] = {
        "type": "object",
        "description": "dask-gateway's values.",
        "properties": {"enabled": {"type": "boolean"}},
        "additionalProperties": True,  # upstream's own keys, and helm's `global`
    }
    schema["properties"]["global"] = {"type": "object"}
    _close(schema)
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _close(node) -> None:
    """additionalProperties false on every object that lists its properties."""
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close(value)
    elif isinstance(node, list):
        for value in node:
            _close(value)


def write_schema() -> Path:
    SCHEMA_PATH.write_text(render_schema())
    return SCHEMA_PATH
