"""A new dated price catalog from AWS: what `parhelion prices refresh` does.

For each region and instance type:

- on-demand $/hour: the price list's product for Linux, shared tenancy, no pre-installed
  software, capacity status "Used" (not reservations), market option on-demand; exactly one
  price must remain, or the refresh stops rather than guess;
- vCPU and memory: EC2's DescribeInstanceTypes (the sizes the cost rule divides by);
- spot $/hour: the median over availability zones of the Linux/UNIX spot price in effect
  now (spot nodes land in whichever zone has capacity; the median is the typical one);
  absent when EC2 offers no spot price for the type in the region.

Storage $/GiB-month: EBS gp3 volumes and EFS Standard ("General Purpose") storage.
AWS's storage "GB-Mo" is billed per GiB (2^30 bytes), so it is taken as $/GiB-month.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from statistics import median

from platform_tools.pricing.aws import AwsPriceReader, PriceRefreshError
from platform_tools.pricing.catalog import InstancePrice, PriceCatalog, RegionPrices

INSTANCE_ATTRIBUTES = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
    "marketoption": "OnDemand",
    "licenseModel": "No License required",
}


@dataclass(frozen=True)
class StorageQuery:
    service_code: str
    attributes: dict[str, str]
    usage_type: str  # the part of the product's usagetype that tells storage from I/O


STORAGE = {
    "ebs-gp3": StorageQuery(
        "AmazonEC2", {"productFamily": "Storage", "volumeApiName": "gp3"}, "VolumeUsage.gp3"
    ),
    "efs-standard": StorageQuery(
        "AmazonEFS", {"productFamily": "Storage", "storageClass": "General Purpose"}, "TimedStorage-ByteHrs"
    ),
}


def on_demand_usd(product: dict, unit: str) -> set[float]:
    """The first-tier USD prices of a product's on-demand terms, in ``unit``."""
    prices = set()
    for offer in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in offer.get("priceDimensions", {}).values():
            if dimension.get("unit") == unit and dimension.get("beginRange", "0") == "0":
                usd = dimension.get("pricePerUnit", {}).get("USD")
                if usd is not None:
                    prices.add(float(usd))
    return prices


def single_price(products: Iterable[dict], unit: str, usage_type: str, what: str) -> float:
    """The one non-zero price the matching products agree on; anything else is an error."""
    by_sku: dict[str, float] = {}
    for product in products:
        attributes = product.get("product", {}).get("attributes", {})
        if usage_type not in attributes.get("usagetype", ""):
            continue
        for price in on_demand_usd(product, unit):
            if price > 0:
                by_sku[f"{product['product'].get('sku', '?')}@{price:g}"] = price
    if not by_sku:
        raise PriceRefreshError(
            f"the AWS price list has no on-demand price for {what}: check the name, "
            "and that the type is offered in that region"
        )
    if len(set(by_sku.values())) > 1:
        raise PriceRefreshError(
            f"the AWS price list has {len(set(by_sku.values()))} different on-demand prices for "
            f"{what} ({', '.join(sorted(by_sku))}); refusing to guess"
        )
    return next(iter(by_sku.values()))


def region_prices(
    reader: AwsPriceReader, region: str, instance_types: list[str], now: datetime
) -> RegionPrices:
    sizes = reader.instance_sizes(region, instance_types)
    unknown = sorted(set(instance_types) - set(sizes))
    if unknown:
        raise PriceRefreshError(f"EC2 does not describe {', '.join(unknown)} in {region}")
    spot = reader.spot_prices(region, instance_types, now)
    instances = {}
    for instance_type in sorted(instance_types):
        products = reader.products(
            "AmazonEC2", {"regionCode": region, "instanceType": instance_type, **INSTANCE_ATTRIBUTES}
        )
        vcpu, memory_gib = sizes[instance_type]
        zones = spot.get(instance_type)
        instances[instance_type] = InstancePrice(
            vcpu=vcpu,
            memory_gib=memory_gib,
            on_demand=single_price(products, "Hrs", "BoxUsage", f"{instance_type} in {region}"),
            spot=round(median(zones.values()), 6) if zones else None,
        )
    storage = {
        kind: single_price(
            reader.products(query.service_code, {"regionCode": region, **query.attributes}),
            "GB-Mo",
            query.usage_type,
            f"{kind} storage in {region}",
        )
        for kind, query in STORAGE.items()
    }
    return RegionPrices(instances=instances, storage_per_gib_month=storage)


def refresh_catalog(
    reader: AwsPriceReader, regions: Iterable[str], instance_types: Iterable[str], now: datetime
) -> PriceCatalog:
    """A catalog of today's AWS prices; raises PriceRefreshError before anything is written."""
    types = sorted(set(instance_types))
    if not types:
        raise PriceRefreshError("no instance types to price: pass --instance-type")
    return PriceCatalog(
        as_of=now.date().isoformat(),
        source=(
            f"AWS Price List Query API (on-demand Linux, shared tenancy; EBS gp3 and EFS Standard "
            f"storage) and EC2 DescribeInstanceTypes / DescribeSpotPriceHistory, read "
            f"{now:%Y-%m-%dT%H:%MZ} by `parhelion prices refresh`. Spot: the median over "
            "availability zones of the Linux/UNIX price in effect then."
        ),
        regions={region: region_prices(reader, region, types, now) for region in sorted(set(regions))},
    )


def changes(old: PriceCatalog, new: PriceCatalog) -> list[str]:
    """One line per price that changed, appeared or went away: what an admin reviews."""
    lines = []
    for region in sorted(set(old.regions) | set(new.regions)):
        before = old.regions.get(region)
        after = new.regions.get(region)
        if before is None or after is None:
            lines.append(f"{region}: {'added' if before is None else 'not in the new catalog'}")
            continue
        for name in sorted(set(before.instances) | set(after.instances)):
            a, b = before.instances.get(name), after.instances.get(name)
            if a is None or b is None:
                lines.append(f"{region} {name}: {'added' if a is None else 'not in the new catalog'}")
                continue
            for field in ("on_demand", "spot"):
                x, y = getattr(a, field), getattr(b, field)
                if x != y:
                    lines.append(f"{region} {name} {field.replace('_', '-')}: {_usd(x)} -> {_usd(y)}")
        for kind in sorted(set(before.storage_per_gib_month) | set(after.storage_per_gib_month)):
            x, y = before.storage_per_gib_month.get(kind), after.storage_per_gib_month.get(kind)
            if x != y:
                lines.append(f"{region} {kind} $/GiB-month: {_usd(x)} -> {_usd(y)}")
    return lines


def _usd(value: float | None) -> str:
    return "none" if value is None else f"${value:g}"
