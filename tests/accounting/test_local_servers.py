"""The local meter's servers, from the hub's user models: what is charged and from when."""

from __future__ import annotations

from platform_tools.accounting.local_sources import server_observations
from platform_tools.config import parse_platform
from platform_tools.pricing.catalog import Node

CONFIG = parse_platform(
    """
name: servers
images: {base: "example.org/base:2026.11.0"}
profiles:
  small: {display_name: Small, cpu_guarantee: 1, cpu_limit: 1, mem_guarantee_gib: 2,
          mem_limit_gib: 2, image: base, price_per_hour_usd: 0.1}
"""
)
NODE = Node("m6i.xlarge", "us-east-1", "on-demand", vcpu=4, memory_gib=16, price_per_hour=0.192)


def user(name: str, **server) -> dict:
    return {"name": name, "servers": {"": {"started": "2026-11-28T09:00:00.000000Z", **server}}}


def test_a_server_waiting_in_the_spawn_line_is_not_charged_until_it_runs():
    """A student in line has no process at all; the line stamps ``started`` when their turn
    comes (hub/spawnqueue.py), and the server is charged from then once it runs."""
    users = [
        user("waiting", pending="spawn", ready=False),
        user("running", pending=None, ready=True),
        user("stopping", pending="stop", ready=False),
        {"name": "none", "servers": {}},
    ]
    observed = {o.username: o for o in server_observations(users, CONFIG, NODE)}
    assert set(observed) == {"running", "stopping"}
    assert observed["running"].started_at == observed["stopping"].started_at > 0
