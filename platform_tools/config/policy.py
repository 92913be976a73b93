"""What applies to one user: their groups, profiles, quota and budget.

Precedence, the same everywhere (hub, gateway, accounting, CLI):

* **Profiles** — ``users.<name>.profiles`` if set; otherwise every profile any of the
  user's groups allows (a group without ``profiles`` allows all); a user in no group
  may use every profile.
* **Quota**, field by field — ``users.<name>.quota`` if it sets the field; otherwise
  the largest value among the user's groups that set it (membership grants); otherwise
  ``accounting.defaults_quota``; otherwise no limit.
* **Budget** — one group's budget applies to a user: ``users.<name>.primary_group``,
  or else the first group in file order that lists the user and has a budget, or else
  ``accounting.defaults_budget``. Fields set in ``users.<name>.budget`` replace that
  budget's fields; a user with no group budget and no default needs a complete override.
* **Group totals** — ``group_usd`` caps every group separately: a user's spend counts
  towards each of their groups that has one, and any exhausted total caps the user.
* **Access** — admins, ``hub.users`` and members of any group that is not a closed class
  may use the platform; a member of closed classes only (or a name platform.yaml does not
  list) may not: ``access_problem``, which every gate asks.
* **Isolation** (one machine) — when more than one person can log in, each runs as their own
  Unix account and logs in with their own password, unless ``local.trusted`` says they all
  trust each other: ``isolation_problem``, which `parhelion up` and every spawn ask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from platform_tools.config.quotas import Budget, Quota

if TYPE_CHECKING:  # pragma: no cover
    from platform_tools.config.models import PlatformConfig


@dataclass(frozen=True)
class UserPolicy:
    username: str
    groups: list[str]
    profiles: list[str]
    quota: Quota
    budget: Budget | None
    budget_source: str | None  # "group:<name>", "user", "defaults" or None
    group_totals: dict[str, Budget] = field(default_factory=dict)
    image: str | None = None  # a class's image key (courses), over the profiles' own
    default_profile: str | None = None  # the platform's default if allowed, else the first allowed

    def profile_problem(self, profile: str, contact: str) -> str | None:
        """Why ``profile`` may not be started by this user (None if it may): the one rule the
        hub's pre-spawn check and the accounting service's spawn check both apply."""
        if profile in self.profiles:
            return None
        return (
            f"The profile {profile!r} is not available to you "
            f"(yours: {', '.join(self.profiles) or 'none'}). Contact {contact}."
        )


def access_problem(config: PlatformConfig, username: str) -> str | None:
    """Why ``username`` may not use the platform now, or None if they may.

    The one decision the hub's login and its pre-spawn check, the accounting service's spawn
    and cluster checks (which the gateway asks) and `parhelion class close` all take from the
    live platform.yaml: a closed class must shut out those it admitted, whatever they still
    hold (a cookie, an API token, a Gateway session), while its TAs and admins who are in
    other groups keep their way in.
    """
    if username in config.allowed_users:
        return None
    contact = config.accounting.contact
    closed = [
        group.course.title or name
        for name, group in config.groups.items()
        if group.closed and username in group.members
    ]
    if closed:
        return (
            f"Your class ({', '.join(closed)}) has closed: you can no longer start servers or "
            f"Dask clusters here. Contact {contact} if you need your work."
        )
    return f"{username} is not a user of this platform (platform.yaml does not list them). Contact {contact}."


def isolation_problem(config: PlatformConfig, spawner: str) -> str | None:
    """Why this platform.yaml must not be served on one machine with ``spawner``, or None.

    One OS account for several people lets any of them read the others' homes, the
    platform's secrets and ledger, and kill its services; one shared password lets any of
    them log in as any other. Both are allowed for one person, or with ``local.trusted``.
    """
    people = config.allowed_users
    if len(people) <= 1 or config.local.trusted:
        return None
    named = ", ".join(sorted(people)[:3]) + (f" and {len(people) - 3} more" if len(people) > 3 else "")
    if spawner != "system-users":
        return (
            f"local.spawner: {spawner} runs every server as one OS account, but {len(people)} people "
            f"can log in ({named}): use local.spawner: system-users (each person their own account), "
            "or set local.trusted: true if they all trust each other with their files"
        )
    if config.hub.auth.type == "shared-password":
        return (
            f"hub.auth: shared-password lets anyone who knows the password log in as any of the "
            f"{len(people)} people who can log in ({named}): choose first-use, native or oidc, "
            "or set local.trusted: true if they all trust each other"
        )
    return None


def class_image(config: PlatformConfig, username: str) -> str | None:
    """The image of the user's first open class that names one: students' servers and Dask
    clusters run what the course was prepared with, whatever the profile's default."""
    for name in groups_of(config, username):
        course = config.groups[name].course
        if course is not None and course.status == "open" and course.image:
            return course.image
    return None


def groups_of(config: PlatformConfig, username: str) -> list[str]:
    """The user's groups, in file order."""
    return list(config.groups_by_member.get(username, ()))


def resolve_profiles(config: PlatformConfig, username: str) -> list[str]:
    override = config.users.get(username)
    if override is not None and override.profiles is not None:
        return list(override.profiles)
    groups = [config.groups[name] for name in groups_of(config, username)]
    if not groups or any(group.profiles is None for group in groups):
        return list(config.profiles)
    allowed = {profile for group in groups for profile in group.profiles or []}
    return [name for name in config.profiles if name in allowed]


def resolve_quota(config: PlatformConfig, username: str) -> Quota:
    override = config.users.get(username)
    group_quotas = [
        config.groups[name].quota for name in groups_of(config, username) if config.groups[name].quota
    ]
    values = {}
    for name in Quota.model_fields:
        if override is not None and override.quota is not None:
            value = getattr(override.quota, name)
            if value is not None:
                values[name] = value
                continue
        from_groups = [getattr(quota, name) for quota in group_quotas if getattr(quota, name) is not None]
        values[name] = max(from_groups) if from_groups else getattr(config.accounting.defaults_quota, name)
    return Quota(**values)


def budget_base(config: PlatformConfig, username: str) -> tuple[Budget | None, str | None]:
    """The budget a user's override applies to, and where it comes from."""
    override = config.users.get(username)
    if override is not None and override.primary_group is not None:
        group = config.groups.get(override.primary_group)
        if group is not None and group.budget is not None:
            return group.budget, f"group:{override.primary_group}"
    for name in groups_of(config, username):
        group = config.groups[name]
        if group.budget is not None and not group.closed:  # a closed class's budget is spent
            return group.budget, f"group:{name}"
    if config.accounting.defaults_budget is not None:
        return config.accounting.defaults_budget, "defaults"
    return None, None


def resolve_budget(config: PlatformConfig, username: str) -> tuple[Budget | None, str | None]:
    """The user's own budget; raises ValueError when an override leaves it incomplete."""
    base, source = budget_base(config, username)
    override = config.users.get(username)
    fields = override.budget.model_dump(exclude_none=True) if override and override.budget else {}
    if not fields:
        return base, source
    merged = base.model_dump(exclude={"group_usd"}) if base is not None else {}
    merged.update(fields)
    if "usd" not in merged:
        raise ValueError("no group or default budget to override: set usd (and period)")
    return Budget.model_validate(merged), "user"


def resolve(config: PlatformConfig, username: str) -> UserPolicy:
    budget, source = resolve_budget(config, username)
    totals = {
        name: config.groups[name].budget
        for name in groups_of(config, username)
        if config.groups[name].budget is not None and config.groups[name].budget.group_usd
    }
    profiles = resolve_profiles(config, username)
    return UserPolicy(
        username=username,
        groups=groups_of(config, username),
        profiles=profiles,
        quota=resolve_quota(config, username),
        budget=budget,
        budget_source=source,
        group_totals=totals,
        image=class_image(config, username),
        default_profile=default_profile(config, profiles),
    )


def default_profile(config: PlatformConfig, allowed: list[str]) -> str | None:
    """The profile preselected for a user: the platform's default if they may use it."""
    if config.default_profile in allowed:
        return config.default_profile
    return allowed[0] if allowed else None
