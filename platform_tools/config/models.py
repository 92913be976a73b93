"""The one configuration model for a Parhelion deployment: ``platform.yaml``.

Every component reads this model and nothing else: the local launcher, the hub
configuration, the dask-gateway configuration and (later) the accounting service, the
Helm chart's values schema and the Ansible playbooks that write the file. A difference
between the single-machine platform and Kubernetes is a backend choice inside this
model, never a second configuration.

Named collections (images, profiles, groups, archives) are mappings keyed by name, so
error messages read ``profiles.small.cpu_limit`` and Ansible can merge them per key.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, StringConstraints, model_validator

from platform_tools.config.auth import HubAuth, SharedPasswordAuth
from platform_tools.config.courses import CourseSettings
from platform_tools.config.models_base import (  # noqa: F401 - PATTERN_MEANINGS is re-exported for the loader
    PATTERN_MEANINGS,
    REGION_PATTERN,
    URL_PATTERN,
    BucketName,
    ImageReference,
    Name,
    StrictModel,
    Username,
)
from platform_tools.config.quotas import AccountingConfig, Budget, Quota, UserOverride
from platform_tools.config.references import ReferenceIssues, reference_issues

# --------------------------------------------------------------------------- hub


class HubConfig(StrictModel):
    """The hub: who may log in, who administers, and when idle servers are stopped."""

    admin_users: list[Username] = Field(
        default_factory=list, description="Users with admin rights on the hub."
    )
    users: list[Username] = Field(
        default_factory=list,
        description="Users allowed to log in, besides admins and group members.",
    )
    auth: HubAuth = Field(
        default_factory=SharedPasswordAuth,
        description="How people log in: shared-password (one trusted person), first-use or native "
        "(one machine: each person their own password), github, cilogon or oidc.",
    )
    cull_idle_servers_after_minutes: Annotated[int, Field(ge=0)] = Field(
        60,
        description="Stop a user's server after this many idle minutes (0: never).",
    )
    default_ui: Literal["lab", "notebook"] = Field(
        "lab", description="The interface a server opens: JupyterLab or Notebook 7."
    )


# ---------------------------------------------------------------------- profiles


class Profile(StrictModel):
    """A server size users pick when they start a server, with its price."""

    display_name: str = Field(min_length=1, description="The name users see.")
    description: str = ""
    cpu_guarantee: PositiveFloat = Field(description="CPU cores reserved for the server.")
    cpu_limit: PositiveFloat = Field(description="CPU cores the server may use at most.")
    mem_guarantee_gib: PositiveFloat = Field(description="Memory reserved, in GiB.")
    mem_limit_gib: PositiveFloat = Field(description="Memory the server may use at most, GiB.")
    image: Name = Field(description="Key of the image in `images`.")
    price_per_hour_usd: NonNegativeFloat = Field(
        description="The price shown to users for one hour of this server, in US dollars."
    )
    default: bool = Field(False, description="The profile selected by default.")

    @model_validator(mode="after")
    def _guarantees_within_limits(self) -> Profile:
        if self.cpu_guarantee > self.cpu_limit:
            raise ValueError(
                f"cpu_guarantee ({self.cpu_guarantee}) is larger than cpu_limit ({self.cpu_limit})"
            )
        if self.mem_guarantee_gib > self.mem_limit_gib:
            raise ValueError(
                f"mem_guarantee_gib ({self.mem_guarantee_gib}) is larger than "
                f"mem_limit_gib ({self.mem_limit_gib})"
            )
        return self


# ------------------------------------------------------------------------ groups


class Group(StrictModel):
    """A set of users sharing what they may run and what they may spend.

    Per-user exceptions live in the top-level ``users`` section; how a user's groups
    and overrides combine is ``platform_tools.config.policy``'s to decide.
    """

    description: str = ""
    members: list[Username] = Field(default_factory=list)
    profiles: list[Name] | None = Field(
        None, description="Profiles the members may use (absent: all profiles)."
    )
    quota: Quota | None = None
    budget: Budget | None = None
    course: CourseSettings | None = Field(
        None, description="Makes the group a class: sessions, image, homes at close, open or closed."
    )

    @property
    def closed(self) -> bool:
        return self.course is not None and self.course.status == "closed"


# ---------------------------------------------------------------------- archives


class LocalArchive(StrictModel):
    """A bucket served on this machine by the local platform's S3 server (rclone)."""

    seed: Literal["sample", "empty"] = Field(
        "sample",
        description="Fill the bucket on first start with the sample heliophysics archive.",
    )
    sample_files: Annotated[int, Field(ge=1, le=100_000)] = Field(
        288, description="Number of images in the generated AIA-like series."
    )
    sample_image_size: Annotated[int, Field(ge=64, le=4096, multiple_of=64)] = Field(
        512, description="Side of the generated square images, in pixels (AIA: 4096)."
    )
    sample_cadence_minutes: Annotated[int, Field(ge=1, le=1440)] = Field(
        20, description="Minutes between two generated images."
    )


class Archive(StrictModel):
    """An S3 bucket that users' notebooks and Dask workers read."""

    description: str = ""
    bucket: BucketName
    region: Annotated[str, StringConstraints(pattern=REGION_PATTERN)] = "us-east-1"
    endpoint_url: Annotated[str, StringConstraints(pattern=URL_PATTERN)] | None = Field(
        None, description="An S3-compatible endpoint; absent for AWS itself."
    )
    access: Literal["anonymous", "keyed"] = Field(
        "anonymous", description="Public data is read anonymously; keyed needs credentials."
    )
    local: LocalArchive | None = Field(
        None,
        description="Serve this bucket from the local platform (its endpoint and keys are "
        "then made at start).",
    )
    default: bool = Field(False, description="Notebooks and workers get this archive's endpoint by default.")

    @model_validator(mode="after")
    def _local_has_no_endpoint(self) -> Archive:
        if self.local is not None and self.endpoint_url is not None:
            raise ValueError("a local archive gets its endpoint from the local platform: remove endpoint_url")
        return self


# ------------------------------------------------------------------ dask-gateway


class Range(StrictModel):
    """A bounded user choice with its default."""

    min: PositiveFloat
    max: PositiveFloat
    default: PositiveFloat

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.min <= self.default <= self.max:
            raise ValueError(
                f"need min <= default <= max, got min={self.min}, default={self.default}, max={self.max}"
            )
        return self


class DaskGatewayConfig(StrictModel):
    """What users may ask of dask-gateway, per cluster."""

    enabled: bool = True
    image: Name | None = Field(
        None,
        description="The image (a key of `images:`) Dask schedulers and workers run when the "
        "user's own server image is not known; absent: the default profile's image.",
    )
    worker_cores: Range = Field(default_factory=lambda: Range(min=1, max=4, default=1))
    worker_memory_gib: Range = Field(default_factory=lambda: Range(min=1, max=8, default=2))
    max_workers_per_cluster: PositiveInt = 8
    idle_timeout_minutes: Annotated[int, Field(ge=0)] = Field(
        30, description="Shut a cluster down after this many idle minutes (0: never)."
    )


# --------------------------------------------------------------- local platform


class LocalPorts(StrictModel):
    """Ports on 127.0.0.1; absent means a free port picked at start."""

    hub: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        8000, description="The public port people open in a browser."
    )
    hub_api: Annotated[int, Field(ge=1, le=65535)] | None = None
    proxy_api: Annotated[int, Field(ge=1, le=65535)] | None = None
    gateway: Annotated[int, Field(ge=1, le=65535)] | None = None
    gateway_scheduler: Annotated[int, Field(ge=1, le=65535)] | None = None
    s3: Annotated[int, Field(ge=1, le=65535)] | None = None
    accounting: Annotated[int, Field(ge=1, le=65535)] | None = None


class LocalAccounts(StrictModel):
    """The Unix accounts of hub users in system-users mode (as TLJH's ``jupyter-<name>``): a
    prefix keeps a hub user called ``root`` or ``daemon`` from becoming that system account."""

    prefix: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,15}$")] = Field(
        "jupyter-",
        description="Each hub user's account is this prefix + their name (a hash when the name "
        "does not fit an account name).",
    )
    home_root: Path = Field(
        Path("/home"), description="Where the accounts' homes are made (each 0700, its user's)."
    )


class LocalPlatform(StrictModel):
    """Settings only the single-machine platform (`parhelion up`) reads."""

    state_dir: Path = Field(
        Path(".parhelion"),
        description="Where all state lives: hub database, archive, homes, logs, secrets. "
        "Relative paths are relative to the directory `parhelion up` runs in.",
    )
    ports: LocalPorts = Field(default_factory=LocalPorts)
    spawner: Literal["simple", "system-users"] | None = Field(
        None,
        description="system-users: each hub user runs as their own Unix account (made on first "
        "start or by `class create`), never as root; simple: every server runs as the platform's "
        "own OS user, for ONE person or a group that trusts each other (needs `trusted: true` "
        "when more than one person can log in). Absent: system-users when more than one person "
        "can log in, else simple.",
    )
    trusted: bool = Field(
        False,
        description="Everyone who can log in trusts everyone else with their files, processes and "
        "password: allows the simple spawner and the shared password for more than one person.",
    )
    accounts: LocalAccounts = Field(default_factory=lambda: LocalAccounts())
    concurrent_spawns: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        None,
        description="Servers that start at once; more students wait in line, first come first "
        "served, each shown their place on the spawn-pending page. Absent: two per CPU core.",
    )


# ------------------------------------------------------------------------- root


class PlatformConfig(StrictModel):
    """``platform.yaml``: the whole description of one Parhelion deployment."""

    version: Literal[1] = Field(1, description="Version of this file's format.")
    name: Name = Field(description="The deployment's name.")
    hub: HubConfig = Field(default_factory=HubConfig)
    images: dict[Name, ImageReference] = Field(
        min_length=1, description="Image name -> reference (repository:tag)."
    )
    profiles: dict[Name, Profile] = Field(min_length=1)
    groups: dict[Name, Group] = Field(default_factory=dict)
    users: dict[Username, UserOverride] = Field(
        default_factory=dict, description="Per-user overrides of their groups' settings."
    )
    archives: dict[Name, Archive] = Field(default_factory=dict)
    dask_gateway: DaskGatewayConfig = Field(default_factory=DaskGatewayConfig)
    accounting: AccountingConfig = Field(default_factory=AccountingConfig)
    local: LocalPlatform = Field(default_factory=LocalPlatform)

    @model_validator(mode="after")
    def _references_resolve(self) -> PlatformConfig:
        issues = reference_issues(self)
        if issues:
            raise ReferenceIssues(issues)
        return self

    # ------------------------------------------------------------ derived views

    @property
    def default_profile(self) -> str:
        """The profile preselected for users: the one marked default, else the first."""
        for name, profile in self.profiles.items():
            if profile.default:
                return name
        return next(iter(self.profiles))

    @property
    def default_archive(self) -> str | None:
        """The archive whose endpoint servers and workers get by default."""
        for name, archive in self.archives.items():
            if archive.default:
                return name
        return next(iter(self.archives), None)

    @property
    def dask_image(self) -> str:
        """The image reference Dask clusters run by default (the gateway's image option)."""
        name = self.dask_gateway.image or self.profiles[self.default_profile].image
        return self.images[name]

    @property
    def local_spawner(self) -> Literal["simple", "system-users"]:
        """The spawner for one machine: as chosen, else system-users when more than one person
        can log in. `parhelion up` decides once, at start, and records it in the runtime: a
        roster added while it runs does not switch a running hub (the pre-spawn check refuses
        instead, see config.policy.isolation_problem)."""
        if self.local.spawner:
            return self.local.spawner
        return "system-users" if len(self.allowed_users) > 1 else "simple"

    @cached_property
    def groups_by_member(self) -> dict[str, list[str]]:
        """Each user's groups in file order, computed once per loaded file: resolving 2,000
        users against classes of 300 by scanning member lists took over a second."""
        index: dict[str, list[str]] = {}
        for name, group in self.groups.items():
            for member in dict.fromkeys(group.members):
                index.setdefault(member, []).append(name)
        return index

    @cached_property
    def allowed_users(self) -> frozenset[str]:
        """Everyone who may log in: admins, listed users and members of any group that is
        not a closed class (once per loaded file: every check asks)."""
        users = set(self.hub.admin_users) | set(self.hub.users)
        for group in self.groups.values():
            if not group.closed:
                users.update(group.members)
        return frozenset(users)
