"""The local platform's virtual node, priced: what one machine's servers and workers cost.

On one machine there are no instances to read prices from; ``accounting.virtual_node`` says
which EC2 instance the machine stands for, and the cost rule charges pods their share of it,
as on EKS. ``parhelion up`` refuses to start when it cannot be priced; the meter and the
environment given to servers (burst reports price clusters with it) use the same function.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from platform_tools.pricing.catalog import Node, PriceCatalog, catalog_path

if TYPE_CHECKING:
    from platform_tools.config import PlatformConfig


def priced_node(config: PlatformConfig, catalog: PriceCatalog) -> Node:
    """``accounting.virtual_node`` priced from ``catalog`` (PriceError if it has no price)."""
    virtual = config.accounting.virtual_node
    return catalog.node(virtual.instance_type, virtual.region, virtual.capacity_type)


def configured_node(config: PlatformConfig, state_dir: Path) -> Node:
    """The virtual node priced from the catalog ``accounting.price_catalog`` names."""
    return priced_node(config, PriceCatalog.load(catalog_path(config.accounting.price_catalog, state_dir)))
