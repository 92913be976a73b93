"""Burst analysis: a function mapped over thousands of S3 objects on a Dask cluster."""

from platform_tools.burst.cluster import BurstCluster, BurstClusterError, burst_cluster
from platform_tools.burst.cutout import Cutout, read_cutout
from platform_tools.burst.price import BurstBudgetError, BurstPlan, burst_plan
from platform_tools.burst.run import BurstReport, BurstResult, burst_map
from platform_tools.burst.worker import DecodeError, decode_image

__all__ = [
    "BurstBudgetError",
    "BurstPlan",
    "BurstCluster",
    "BurstClusterError",
    "BurstReport",
    "BurstResult",
    "Cutout",
    "DecodeError",
    "burst_cluster",
    "burst_map",
    "burst_plan",
    "decode_image",
    "read_cutout",
]
