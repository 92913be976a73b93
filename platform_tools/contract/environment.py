"""The environment that lets a notebook or a Dask worker reach data and Dask with no setup.

Standard variables only, so every library does the right thing unprompted:

* ``AWS_ENDPOINT_URL_S3`` and the ``AWS_*`` keys are read by botocore itself, so
  ``s3fs.S3FileSystem()``, ``fsspec.open("s3://...")``, astropy's ``use_fsspec`` and
  boto3 all reach the default archive with no arguments;
* ``FSSPEC_S3`` (JSON) carries fsspec's own defaults, e.g. anonymous access to public
  AWS Open Data buckets;
* ``DASK_GATEWAY__*`` is dask's config, so ``dask_gateway.Gateway()`` needs no
  arguments;
* ``PARHELION_ARCHIVE`` names the default archive's bucket for notebooks;
* ``PARHELION_ARCHIVES`` (JSON) maps every configured bucket to the fsspec options
  that reach it, read by ``platform_tools.archives.storage_options``.

The same dictionary goes to users' servers (hub) and to their Dask schedulers and
workers (gateway): a notebook and its workers see the same data.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: kernels and Dask workers import this module at start
    from platform_tools.config.models import Archive, PlatformConfig

# Parhelion's own variables, read by platform_tools.archives and platform_tools.burst in
# users' kernels and Dask workers.
ARCHIVE_VARIABLE = "PARHELION_ARCHIVE"
ARCHIVES_VARIABLE = "PARHELION_ARCHIVES"
NODE_VARIABLE = "PARHELION_NODE"
# The origin at which kernels reach the accounting service (through the hub's proxy, as they
# reach dask-gateway); ``contract.services.accounting_api`` adds its prefix. A kernel asks it
# what is left of its user's budget with the server's own token (JUPYTERHUB_API_TOKEN).
ACCOUNTING_ADDRESS_VARIABLE = "PARHELION_ACCOUNTING_ADDRESS"


def archive_environment(
    archive: Archive,
    *,
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> dict[str, str]:
    """Variables for reaching ``archive`` by default; ``endpoint_url`` overrides its own."""
    env = {
        ARCHIVE_VARIABLE: f"s3://{archive.bucket}",
        "AWS_DEFAULT_REGION": archive.region,
        # S3-compatible servers (rclone, MinIO) do not send the CRC checksums newer
        # botocore validates by default; ranged reads then fail without these.
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }
    endpoint = endpoint_url or archive.endpoint_url
    if endpoint:
        env["AWS_ENDPOINT_URL_S3"] = endpoint
    if archive.access == "keyed" and access_key and secret_key:
        env["AWS_ACCESS_KEY_ID"] = access_key
        env["AWS_SECRET_ACCESS_KEY"] = secret_key
    elif archive.access == "anonymous":
        env["FSSPEC_S3"] = json.dumps({"anon": True})
    return env


def archive_storage_options(
    archive: Archive,
    *,
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> dict:
    """fsspec/s3fs options that reach ``archive`` whatever the default endpoint is.

    Public buckets on AWS get AWS's regional endpoint and anonymous access explicitly,
    so they stay reachable on a platform whose default endpoint is a local S3 server.
    """
    options: dict = {"client_kwargs": {"region_name": archive.region}}
    endpoint = endpoint_url or archive.endpoint_url
    options["endpoint_url"] = endpoint or f"https://s3.{archive.region}.amazonaws.com"
    if endpoint:  # S3-compatible servers do not send the checksums newer botocore validates
        options["config_kwargs"] = {
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
    if archive.access == "anonymous":
        options["anon"] = True
    elif access_key and secret_key:
        options["key"], options["secret"] = access_key, secret_key
    return options


def gateway_client_environment(address: str, proxy_address: str, public_address: str) -> dict[str, str]:
    """dask config so ``Gateway()`` finds the gateway and authenticates through the hub."""
    return {
        "DASK_GATEWAY__ADDRESS": address,
        "DASK_GATEWAY__PROXY_ADDRESS": proxy_address,
        "DASK_GATEWAY__PUBLIC_ADDRESS": public_address,
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
    }


# dask's configuration for JupyterLab's Dask integration, as environment (the daskhub chart and
# Pangeo's images set the same variables). A LocalCluster's dashboard is served by
# jupyter-server-proxy under the user's own server, behind the server's login, instead of a
# port of the node nobody can reach: dask formats the link with the environment, and
# JUPYTERHUB_SERVICE_PREFIX is the server's ``/user/NAME/``.
DASHBOARD_LINK_VARIABLE = "DASK_DISTRIBUTED__DASHBOARD__LINK"
SERVER_PROXY_DASHBOARD_LINK = "{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status"
LAB_FACTORY_MODULE_VARIABLE = "DASK_LABEXTENSION__FACTORY__MODULE"
LAB_FACTORY_CLASS_VARIABLE = "DASK_LABEXTENSION__FACTORY__CLASS"


def dask_lab_environment(gateway: bool) -> dict[str, str]:
    """dask config for servers: dashboards through the server's proxy, and, with a gateway,
    the Dask panel's "+ NEW" making a gateway cluster (as the user: the gateway's per-user
    limits and budget checks apply to it as to a notebook's) instead of a LocalCluster inside
    the Jupyter server's own process."""
    env = {DASHBOARD_LINK_VARIABLE: SERVER_PROXY_DASHBOARD_LINK}
    if gateway:
        env[LAB_FACTORY_MODULE_VARIABLE] = "dask_gateway"
        env[LAB_FACTORY_CLASS_VARIABLE] = "GatewayCluster"
    return env


def accounting_client_environment(origin: str) -> dict[str, str]:
    """Where kernels ask the accounting service about their user's spend and budget."""
    return {ACCOUNTING_ADDRESS_VARIABLE: origin}


def default_archive(platform: PlatformConfig) -> Archive | None:
    name = platform.default_archive
    return platform.archives[name] if name else None
