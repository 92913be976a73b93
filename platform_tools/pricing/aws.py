"""All I/O to AWS for prices, behind one small class.

- On-demand instance prices and storage prices come from the Price List Query API
  (``pricing:GetProducts``), which answers only in a few regions (us-east-1 is one) but
  prices every region.
- Instance sizes (vCPU, memory) come from ``ec2:DescribeInstanceTypes`` and current spot
  prices from ``ec2:DescribeSpotPriceHistory``, in the region being priced.

Every failure becomes a :class:`PriceRefreshError` that says what was asked and what
permission or setting is missing; boto3's own exceptions never reach the user.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

PRICING_REGION = "us-east-1"
RETRIES = Config(retries={"mode": "adaptive", "max_attempts": 10})
DESCRIBE_LIMIT = 100  # instance types per DescribeInstanceTypes call


class PriceRefreshError(RuntimeError):
    """A refresh that could not complete; the catalog on disk is left as it was."""


class AwsPriceReader:
    """Reads prices and instance sizes from AWS (or an endpoint standing in for it)."""

    def __init__(
        self,
        session: boto3.session.Session | None = None,
        *,
        ec2_endpoint_url: str | None = None,
        pricing_endpoint_url: str | None = None,
        pricing_region: str = PRICING_REGION,
    ):
        self._session = session or boto3.session.Session()
        self._ec2_endpoint_url = ec2_endpoint_url
        self._pricing = self._session.client(
            "pricing", region_name=pricing_region, endpoint_url=pricing_endpoint_url, config=RETRIES
        )
        self._ec2_clients: dict[str, object] = {}

    def _ec2(self, region: str):
        if region not in self._ec2_clients:
            self._ec2_clients[region] = self._session.client(
                "ec2", region_name=region, endpoint_url=self._ec2_endpoint_url, config=RETRIES
            )
        return self._ec2_clients[region]

    def products(self, service_code: str, attributes: dict[str, str]) -> Iterator[dict]:
        """Price-list products whose attributes equal ``attributes``, parsed from JSON."""
        filters = [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in attributes.items()]
        pages = self._pricing.get_paginator("get_products").paginate(
            ServiceCode=service_code, Filters=filters, FormatVersion="aws_v1"
        )
        with _explained(f"pricing:GetProducts ({service_code}, {attributes})"):
            for page in pages:
                for item in page["PriceList"]:
                    yield json.loads(item) if isinstance(item, str) else item

    def instance_sizes(self, region: str, instance_types: Iterable[str]) -> dict[str, tuple[int, float]]:
        """{instance type: (default vCPUs, memory GiB)} as EC2 describes them."""
        wanted = sorted(set(instance_types))
        sizes: dict[str, tuple[int, float]] = {}
        paginator = self._ec2(region).get_paginator("describe_instance_types")
        for start in range(0, len(wanted), DESCRIBE_LIMIT):
            chunk = wanted[start : start + DESCRIBE_LIMIT]
            with _explained(f"ec2:DescribeInstanceTypes in {region}"):
                for page in paginator.paginate(InstanceTypes=chunk):
                    for kind in page["InstanceTypes"]:
                        sizes[kind["InstanceType"]] = (
                            kind["VCpuInfo"]["DefaultVCpus"],
                            kind["MemoryInfo"]["SizeInMiB"] / 1024,
                        )
        return sizes

    def spot_prices(
        self, region: str, instance_types: Iterable[str], at: datetime
    ) -> dict[str, dict[str, float]]:
        """{instance type: {availability zone: Linux spot $/hour in effect at ``at``}}."""
        latest: dict[tuple[str, str], tuple[datetime, float]] = {}
        paginator = self._ec2(region).get_paginator("describe_spot_price_history")
        with _explained(f"ec2:DescribeSpotPriceHistory in {region}"):
            for page in paginator.paginate(
                InstanceTypes=sorted(set(instance_types)),
                ProductDescriptions=["Linux/UNIX"],
                StartTime=at,
                EndTime=at,
            ):
                for entry in page["SpotPriceHistory"]:
                    key = (entry["InstanceType"], entry["AvailabilityZone"])
                    stamp = entry["Timestamp"]
                    if key not in latest or stamp > latest[key][0]:
                        latest[key] = (stamp, float(entry["SpotPrice"]))
        prices: dict[str, dict[str, float]] = {}
        for (instance_type, zone), (_, price) in latest.items():
            prices.setdefault(instance_type, {})[zone] = price
        return prices


class _explained:
    """Turn boto3's exceptions into one-line errors that say what to fix."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None:
            return False
        if isinstance(exc, NoCredentialsError):
            raise PriceRefreshError(
                f"{self.what}: no AWS credentials. Set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY; the identity needs pricing:GetProducts, "
                "ec2:DescribeInstanceTypes and ec2:DescribeSpotPriceHistory."
            ) from None
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "?"), error.get("Message", str(exc))
            hint = ""
            if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
                hint = f" (the AWS identity lacks the permission for {self.what.split(' ')[0]})"
            raise PriceRefreshError(f"{self.what}: {code}: {message}{hint}") from None
        if isinstance(exc, BotoCoreError):
            raise PriceRefreshError(f"{self.what}: {exc}") from None
        return False
