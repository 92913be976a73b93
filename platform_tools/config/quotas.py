"""Quotas, budgets and accounting settings in platform.yaml.

Quotas bound what runs at once; budgets bound what it costs over a period. Both are
set per group, with per-user overrides; ``platform_tools.config.policy`` resolves what
applies to one user (the precedence rules are documented there and in the README).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from platform_tools.config.models_base import Name, StrictModel

Percent = Annotated[float, Field(gt=0, le=1000)]


class Quota(StrictModel):
    """Limits on what a user runs at once. A field left out sets no limit here (it may be
    inherited, see the precedence rules); dask limits are summed over ALL the user's
    clusters, not per cluster."""

    max_servers: PositiveInt | None = Field(None, description="Notebook servers at once.")
    max_dask_clusters: NonNegativeInt | None = Field(None, description="Dask clusters at once.")
    max_dask_cores: PositiveFloat | None = Field(
        None, description="Cores of all the user's Dask schedulers and workers together."
    )
    max_dask_memory_gib: PositiveFloat | None = Field(
        None, description="Memory of all the user's Dask schedulers and workers together, GiB."
    )
    storage_gib: PositiveFloat | None = Field(None, description="Home directory size, GiB.")


#: The dates a course window may name. Budgets compute the day after the end, timestamps
#: and week starts from these dates: ``9999-12-31`` validated once made every budget check
#: raise OverflowError. Two centuries either side of now is every course there will be.
FIRST_COURSE_DAY = date(2000, 1, 1)
LAST_COURSE_DAY = date(2199, 12, 31)


class CourseWindow(StrictModel):
    """The dates a course runs, both included (UTC), between 2000-01-01 and 2199-12-31."""

    start: date
    end: date

    @field_validator("start", "end")
    @classmethod
    def _supported(cls, day: date) -> date:
        if not FIRST_COURSE_DAY <= day <= LAST_COURSE_DAY:
            raise ValueError(
                f"{day} is outside the dates Parhelion supports ({FIRST_COURSE_DAY} to {LAST_COURSE_DAY})"
            )
        return day

    @model_validator(mode="after")
    def _ordered(self) -> CourseWindow:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self

    def overlaps(self, other: CourseWindow) -> bool:
        return self.start <= other.end and other.start <= self.end


class BudgetFields(StrictModel):
    """Budget settings; in a user override every field is optional."""

    usd: PositiveFloat | None = Field(None, description="Dollars each user may spend per period.")
    period: Literal["day", "week", "month", "course"] | None = Field(
        None,
        description="day, week (from Monday) and month are UTC calendar periods; course is "
        "the course window.",
    )
    course: CourseWindow | None = Field(None, description="Required when period is course.")
    warn_at_percent: list[Percent] | None = Field(
        None, description="Soft thresholds: the user is warned as spend crosses each."
    )
    on_hard_cap: Literal["refuse-new", "refuse-new-and-stop"] | None = Field(
        None,
        description="At 100%: refuse new servers and clusters; and (default) stop running "
        "ones after the grace period.",
    )
    grace_minutes: NonNegativeFloat | None = Field(
        None, description="Minutes between crossing the cap and stopping what runs."
    )

    @model_validator(mode="after")
    def _thresholds_increase(self) -> BudgetFields:
        marks = self.warn_at_percent or []
        if any(b <= a for a, b in zip(marks, marks[1:], strict=False)):
            raise ValueError(f"warn_at_percent must increase, got {marks}")
        return self


class Budget(BudgetFields):
    """A group's budget: each member gets ``usd`` per period; ``group_usd`` caps the
    whole group's spend together (a class total)."""

    usd: PositiveFloat = Field(description="Dollars each user may spend per period.")
    period: Literal["day", "week", "month", "course"] = "month"
    warn_at_percent: list[Percent] = Field(default_factory=lambda: [50.0, 80.0, 100.0])
    on_hard_cap: Literal["refuse-new", "refuse-new-and-stop"] = "refuse-new-and-stop"
    grace_minutes: NonNegativeFloat = 5
    group_usd: PositiveFloat | None = Field(
        None, description="Dollars the group's members may spend together per period."
    )

    @model_validator(mode="after")
    def _course_needs_window(self) -> Budget:
        if self.period == "course" and self.course is None:
            raise ValueError("period 'course' needs a course window (course: {start:, end:})")
        if self.period != "course" and self.course is not None:
            raise ValueError(f"a course window is only used with period 'course', not {self.period!r}")
        return self


class UserOverride(StrictModel):
    """Settings for one user that take precedence over their groups'."""

    primary_group: Name | None = Field(
        None,
        description="The group whose budget applies to this user (default: the first group, "
        "in file order, that lists the user and has a budget).",
    )
    profiles: list[Name] | None = Field(None, description="Profiles this user may use.")
    quota: Quota | None = None
    budget: BudgetFields | None = None


class VirtualNode(StrictModel):
    """The machine the local platform pretends to be, so local spend is realistic."""

    instance_type: str = Field("m6i.xlarge", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    capacity_type: Literal["on-demand", "spot"] = "on-demand"
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


class UnavailablePolicy(StrictModel):
    """What new spawns and clusters do while the accounting service does not answer."""

    budgets: Literal["closed", "open"] = Field(
        "closed", description="closed: refuse new servers and clusters of users with a budget."
    )
    quotas: Literal["closed", "open"] = Field(
        "open", description="open: allow, since quotas are also enforced once it is back."
    )


CostMetric = Literal["UnblendedCost", "AmortizedCost", "BlendedCost", "NetUnblendedCost", "NetAmortizedCost"]


class ReconcileConfig(StrictModel):
    """`parhelion cost reconcile` and the admin page: the ledger against the AWS bill."""

    tag_key: str = Field(
        "parhelion.dev/cluster",
        min_length=1,
        max_length=128,
        description="The cost-allocation tag on the deployment's AWS resources (provision.yml and "
        "Karpenter's EC2NodeClass apply it; it must be activated for cost allocation).",
    )
    tag_value: str | None = Field(
        None, description="The tag's value for this deployment (absent: the deployment's name)."
    )
    metric: CostMetric = Field("UnblendedCost", description="The Cost Explorer metric the bill is read in.")
    fold: bool = Field(
        False,
        description="Fold what users were not charged into their shares, in proportion (the 2i2c "
        "rule); false: name it in buckets (placeholders, system pods, idle, storage, network, other).",
    )


class AccountingConfig(StrictModel):
    """The accounting service: metering, the ledger, enforcement."""

    enabled: bool = True
    contact: str = Field("your platform's administrators", description="Whom users are told to contact.")
    sample_interval_seconds: Annotated[int, Field(ge=1, le=300)] = 15
    enforce_interval_seconds: Annotated[int, Field(ge=1, le=300)] = 15
    storage_check_interval_seconds: Annotated[int, Field(ge=1, le=3600)] = Field(
        60,
        description="One machine: how often every home is measured against its storage quota "
        "(longer when walking the homes would take over 5% of the time).",
    )
    storage_warn_at_percent: list[Percent] = Field(
        default_factory=lambda: [80.0, 100.0],
        description="One machine: a user is warned as their home crosses each percentage of their "
        "storage quota (once per crossing); at 100% new servers are refused.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the ledger (default: SQLite in the state directory); "
        "postgresql+psycopg://... for PostgreSQL.",
    )
    price_catalog: Path | None = Field(
        None,
        description="The price catalog `parhelion prices refresh` writes (relative paths are in "
        "local.state_dir); absent: the dated catalog shipped with Parhelion. Re-read when it changes.",
    )
    virtual_node: VirtualNode = Field(default_factory=VirtualNode)
    when_unavailable: UnavailablePolicy = Field(default_factory=UnavailablePolicy)
    defaults_quota: Quota = Field(
        default_factory=Quota, description="Quota of users who are in no group with one."
    )
    defaults_budget: Budget | None = Field(
        None, description="Budget of users who are in no group with one (absent: none)."
    )
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)

    @field_validator("storage_warn_at_percent")
    @classmethod
    def _storage_thresholds_increase(cls, marks: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(marks, marks[1:], strict=False)):
            raise ValueError(f"storage_warn_at_percent must increase, got {marks}")
        return marks
