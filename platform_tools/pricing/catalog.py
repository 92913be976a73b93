"""The price catalog: EC2 instance prices (on-demand and spot, per region) and storage.

A dated JSON file ships with the package (``data/aws_prices.json``) so costs work with
no network; ``parhelion prices refresh`` rewrites a copy from the AWS Pricing and EC2
spot-price APIs. Every price is USD; instances per hour, storage per GiB-month.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from platform_tools.config.live import LiveFile

DEFAULT_CATALOG = Path(__file__).with_name("data") / "aws_prices.json"
HOURS_PER_MONTH = 730.0  # AWS's convention for monthly prices
CapacityType = Literal["on-demand", "spot"]


class InstancePrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    vcpu: PositiveInt
    memory_gib: PositiveFloat
    on_demand: PositiveFloat
    spot: PositiveFloat | None = None


class RegionPrices(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    instances: dict[str, InstancePrice]
    storage_per_gib_month: dict[str, PositiveFloat]


class PriceCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = 1
    as_of: str = Field(description="When these prices were read (YYYY-MM-DD).")
    source: str
    regions: dict[str, RegionPrices]

    @classmethod
    def load(cls, path: Path = DEFAULT_CATALOG) -> PriceCatalog:
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise PriceError(f"{path}: not a usable price catalog: {exc}") from None

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=True) + "\n")
        tmp.replace(path)

    def node(self, instance_type: str, region: str, capacity_type: CapacityType) -> Node:
        """A node of this type with its $/hour for the capacity type."""
        prices = self._region(region).instances.get(instance_type)
        if prices is None:
            known = ", ".join(sorted(self._region(region).instances))
            raise PriceError(f"no price for instance type {instance_type!r} in {region} (known: {known})")
        hourly = prices.on_demand if capacity_type == "on-demand" else prices.spot
        if hourly is None:
            raise PriceError(f"no spot price for {instance_type} in {region}")
        return Node(instance_type, region, capacity_type, prices.vcpu, prices.memory_gib, hourly)

    def estimate(
        self, instance_type: str, region: str, capacity_type: CapacityType, vcpu: float, memory_gib: float
    ) -> Node:
        """A node the catalog lacks, priced by its size (flagged ``estimated``).

        The rule: the catalog's highest on-demand $/vCPU-hour and $/GiB-hour in the region
        (the first region the catalog lists when it lacks this one), applied as the cost
        rule applies shares: ``max(vcpu x per_vcpu, memory x per_gib)``. Spot capacity is
        priced on demand too. It never prices a node below what any known type would cost
        for its size, so an unknown node cannot be a way around a cap; a node whose size is
        unknown is priced as the region's most expensive known type.
        """
        prices = (self.regions.get(region) or next(iter(self.regions.values()))).instances
        per_vcpu = max(price.on_demand / price.vcpu for price in prices.values())
        per_gib = max(price.on_demand / price.memory_gib for price in prices.values())
        if vcpu <= 0 or memory_gib <= 0:
            biggest = max(prices.values(), key=lambda price: price.on_demand)
            vcpu, memory_gib = biggest.vcpu, biggest.memory_gib
        hourly = max(vcpu * per_vcpu, memory_gib * per_gib)
        return Node(instance_type, region, capacity_type, vcpu, memory_gib, hourly, estimated=True)

    def storage_per_gib_hour(self, region: str, kind: str = "ebs-gp3") -> float:
        per_month = self._region(region).storage_per_gib_month.get(kind)
        if per_month is None:
            raise PriceError(f"no storage price for {kind!r} in {region}")
        return per_month / HOURS_PER_MONTH

    def _region(self, region: str) -> RegionPrices:
        try:
            return self.regions[region]
        except KeyError:
            raise PriceError(
                f"no prices for region {region!r} (known: {', '.join(sorted(self.regions))}); "
                f"run `parhelion prices refresh --region {region}`"
            ) from None


class PriceError(LookupError):
    """A price the catalog does not have, naming what is missing."""


def catalog_path(configured: Path | None, state_dir: Path) -> Path:
    """The catalog ``accounting.price_catalog`` names: relative to the state directory."""
    if configured is None:
        return DEFAULT_CATALOG
    return configured if configured.is_absolute() else Path(state_dir) / configured


class LiveCatalog(LiveFile[PriceCatalog]):
    """The catalog a running service prices with; a refreshed file is taken at once."""

    what = "price catalog"
    errors = (PriceError,)

    def load(self, path: Path) -> PriceCatalog:
        return PriceCatalog.load(path)


@dataclass(frozen=True)
class Node:
    """A machine pods are charged a share of."""

    instance_type: str
    region: str
    capacity_type: CapacityType
    vcpu: float
    memory_gib: float
    price_per_hour: float
    estimated: bool = False  # priced by size, not from the catalog (``PriceCatalog.estimate``)
