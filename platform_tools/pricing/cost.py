"""The cost rule: a pod pays its share of its node.

    share = max(cpu_request / node_vcpu, memory_request / node_memory)
    cost per hour = share x node price per hour (spot or on-demand, as the node runs)

The larger of the two fractions is what the pod keeps other pods from using, so it is
what it costs: a memory-heavy pod on a CPU-heavy node pays for the memory it blocks.
Dask schedulers and workers are charged to the user who owns the cluster; storage is
charged per GiB-hour of its provisioned size. The local platform uses the same rule
with a configured virtual node, so its spend is what the same work would cost on EKS.
"""

from __future__ import annotations

from platform_tools.pricing.catalog import Node


def node_share(cpu: float, memory_gib: float, node: Node) -> float:
    """The fraction of ``node`` a pod with these requests takes (may exceed 1 if oversized)."""
    if cpu < 0 or memory_gib < 0:
        raise ValueError(f"requests must not be negative: cpu={cpu}, memory_gib={memory_gib}")
    return max(cpu / node.vcpu, memory_gib / node.memory_gib)


def hourly_cost(cpu: float, memory_gib: float, node: Node) -> float:
    """Dollars per hour for a pod with these requests on ``node``."""
    return node_share(cpu, memory_gib, node) * node.price_per_hour


def storage_hourly_cost(size_gib: float, price_per_gib_hour: float) -> float:
    return size_gib * price_per_gib_hour
