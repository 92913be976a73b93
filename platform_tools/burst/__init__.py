"""Burst analysis: a function mapped over thousands of S3 objects on a Dask cluster."""

from .cluster import BurstCluster, BurstClusterError, burst_cluster
from .cutout import Cutout, read_cutout
from .run import BurstReport, BurstResult, burst_map
from .worker import DecodeError, decode_image

__all__ = [
    "BurstCluster",
    "BurstClusterError",
    "BurstReport",
    "BurstResult",
    "Cutout",
    "DecodeError",
    "burst_cluster",
    "burst_map",
    "decode_image",
    "read_cutout",
]
