"""Prometheus metrics: per-user spend in the current period, enforcement counters."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from platform_tools.accounting.budgets import standings
from platform_tools.config.models import PlatformConfig
from platform_tools.ledger.store import Ledger


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.spend = Gauge(
            "parhelion_user_spend_usd",
            "Spend in the user's current budget period",
            ["user"],
            registry=self.registry,
        )
        self.budget = Gauge(
            "parhelion_user_budget_usd", "The user's budget for the period", ["user"], registry=self.registry
        )
        self.running_rate = Gauge(
            "parhelion_user_rate_usd_per_hour",
            "What runs for the user costs now",
            ["user"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "parhelion_refusals_total",
            "Servers and clusters refused",
            ["kind", "rule"],
            registry=self.registry,
        )
        self.samples = Counter("parhelion_meter_samples_total", "Samples recorded", registry=self.registry)
        self.sample_failures = Counter(
            "parhelion_meter_sample_failures_total",
            "Samples skipped because a source did not answer",
            registry=self.registry,
        )
        self.ledger_write_failures = Counter(
            "parhelion_ledger_write_failures_total",
            "Samples that could not be written to the ledger (full disk, lost database)",
            registry=self.registry,
        )
        self.clock_steps = Counter(
            "parhelion_meter_clock_steps_total",
            "Wall clock steps the meter saw and did not charge",
            registry=self.registry,
        )
        self.unpriced_nodes = Gauge(
            "parhelion_unpriced_nodes",
            "Nodes the price catalog lacks, charged by its per-vCPU/GiB fallback",
            registry=self.registry,
        )
        self.ledger_recoveries = Counter(
            "parhelion_ledger_recoveries_total",
            "Corrupt ledgers moved aside at start (the fresh ledger holds what could be read)",
            registry=self.registry,
        )
        self.ledger_rows_salvaged = Gauge(
            "parhelion_ledger_rows_salvaged",
            "Rows copied from the corrupt ledger at the last recovery, by table",
            ["table"],
            registry=self.registry,
        )
        self.home_used = Gauge(
            "parhelion_home_used_bytes",
            "Disk blocks the user's home holds, as last measured (one machine)",
            ["user"],
            registry=self.registry,
        )
        self.storage_pass_seconds = Gauge(
            "parhelion_storage_pass_seconds",
            "How long the last walk of every home took (one machine)",
            registry=self.registry,
        )
        self.events = Gauge(
            "parhelion_enforcement_events",
            "Enforcement events recorded, by action",
            ["action"],
            registry=self.registry,
        )

    def update_spend(self, config: PlatformConfig, ledger: Ledger, now: datetime | None = None) -> None:
        """Refresh the per-user gauges (a few queries for all users; blocking)."""
        now = now or datetime.now(UTC)
        rates = ledger.rates_by_user()
        for username, standing in standings(config, ledger, config.allowed_users | set(rates), now).items():
            own = standing.own
            if own is not None:
                self.spend.labels(username).set(own.spend_usd)
                self.budget.labels(username).set(own.cap_usd)
            self.running_rate.labels(username).set(rates.get(username, 0.0))
        for action, count in ledger.event_counts().items():
            self.events.labels(action).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
