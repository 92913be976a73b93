"""Quotas and budgets: the documented precedence, and bad input named by field."""

from __future__ import annotations

import pytest

from platform_tools.config import ConfigError, parse_platform
from platform_tools.config.policy import resolve

pytestmark = pytest.mark.unit

BASE = """
name: school
images: {base: "example.org/base:2026.11.0"}
profiles:
  small: {display_name: S, cpu_guarantee: 1, cpu_limit: 1, mem_guarantee_gib: 1, mem_limit_gib: 2,
          image: base, price_per_hour_usd: 0.1}
  large: {display_name: L, cpu_guarantee: 4, cpu_limit: 4, mem_guarantee_gib: 8, mem_limit_gib: 16,
          image: base, price_per_hour_usd: 0.8}
  gpu: {display_name: G, cpu_guarantee: 4, cpu_limit: 4, mem_guarantee_gib: 8, mem_limit_gib: 16,
        image: base, price_per_hour_usd: 3.0}
hub: {users: [loner]}
groups:
  students:
    members: [ann, bob, cat]
    profiles: [small]
    quota: {max_servers: 1, max_dask_cores: 4, max_dask_memory_gib: 8}
    budget: {usd: 10, period: course, course: {start: 2026-07-01, end: 2026-07-12}, group_usd: 200}
  staff:
    members: [bob, dan]
    profiles: [small, large]
    quota: {max_servers: 2, max_dask_cores: 16, max_dask_clusters: 3}
    budget: {usd: 100, period: month, grace_minutes: 2}
  observers:
    members: [cat]
accounting:
  defaults_quota: {max_servers: 1, storage_gib: 5}
"""


def config(extra: str = ""):
    return parse_platform(BASE + extra, "platform.yaml")


def test_group_member_gets_the_group_settings():
    ann = resolve(config(), "ann")
    assert ann.groups == ["students"]
    assert ann.profiles == ["small"]
    assert (ann.quota.max_servers, ann.quota.max_dask_cores, ann.quota.max_dask_memory_gib) == (1, 4, 8)
    assert ann.quota.max_dask_clusters is None  # nobody sets it: no limit
    assert ann.quota.storage_gib == 5  # from accounting.defaults_quota
    assert ann.budget.usd == 10 and ann.budget.period == "course"
    assert ann.budget_source == "group:students"
    assert list(ann.group_totals) == ["students"] and ann.group_totals["students"].group_usd == 200


def test_quota_fields_take_the_largest_group_value():
    bob = resolve(config(), "bob")  # students and staff
    assert bob.quota.max_servers == 2 and bob.quota.max_dask_cores == 16
    assert bob.quota.max_dask_memory_gib == 8  # only students set it
    assert bob.quota.max_dask_clusters == 3  # only staff set it
    assert bob.profiles == ["small", "large"]  # the union, in file order


def test_budget_comes_from_the_first_group_in_file_order():
    bob = resolve(config(), "bob")
    assert bob.budget_source == "group:students" and bob.budget.usd == 10


def test_primary_group_chooses_the_budget():
    bob = resolve(config("users:\n  bob: {primary_group: staff}\n"), "bob")
    assert bob.budget_source == "group:staff" and bob.budget.usd == 100 and bob.budget.grace_minutes == 2


def test_a_group_without_profiles_allows_all():
    cat = resolve(config(), "cat")  # students (small) and observers (all)
    assert cat.profiles == ["small", "large", "gpu"]


def test_user_override_wins_field_by_field():
    text = "users:\n  ann: {profiles: [large], quota: {max_dask_cores: 32}, budget: {usd: 25}}\n"
    ann = resolve(config(text), "ann")
    assert ann.profiles == ["large"]
    assert ann.quota.max_dask_cores == 32 and ann.quota.max_servers == 1
    assert ann.budget.usd == 25 and ann.budget.period == "course"  # the rest from students
    assert ann.budget.course.start.isoformat() == "2026-07-01"
    assert ann.budget.group_usd is None  # a group total is not a user's budget
    assert ann.budget_source == "user"


def test_user_in_no_group_gets_defaults():
    loner = resolve(config(), "loner")
    assert loner.groups == [] and loner.profiles == ["small", "large", "gpu"]
    assert loner.quota.max_servers == 1 and loner.quota.max_dask_cores is None
    assert loner.budget is None and loner.budget_source is None


def test_default_budget_applies_to_users_without_one():
    text = BASE.replace(
        "accounting:\n  defaults_quota: {max_servers: 1, storage_gib: 5}\n",
        "accounting:\n  defaults_budget: {usd: 3, period: day}\n",
    )
    loner = resolve(parse_platform(text), "loner")
    assert loner.budget.usd == 3 and loner.budget_source == "defaults"
    assert loner.budget.warn_at_percent == [50, 80, 100] and loner.budget.grace_minutes == 5


def issues(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_platform(text, "platform.yaml")
    return {issue.field: issue.message for issue in caught.value.issues}


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("budget: {usd: 100,", "budget: {usd: 0,", "groups.staff.budget.usd", "greater than 0"),
        ("budget: {usd: 100,", "budget: {usd: -5,", "groups.staff.budget.usd", "greater than 0"),
        ("group_usd: 200", "group_usd: 0", "groups.students.budget.group_usd", "greater than 0"),
        ("max_dask_cores: 16", "max_dask_cores: 0", "groups.staff.quota.max_dask_cores", "greater than 0"),
        ("max_servers: 2", "max_servers: -1", "groups.staff.quota.max_servers", "greater than 0"),
        ("period: month", "period: year", "groups.staff.budget.period", "'day', 'week', 'month' or 'course'"),
        (
            "end: 2026-07-12",
            "end: 2026-06-12",
            "groups.students.budget.course",
            "end (2026-06-12) is before start",
        ),
        ("period: month", "period: course", "groups.staff.budget", "needs a course window"),
        (
            "grace_minutes: 2",
            "grace_minutes: 2, warn_at_percent: [80, 50]",
            "groups.staff.budget",
            "warn_at_percent must increase",
        ),
        (
            "quota: {max_servers: 2,",
            "quota: {max_server: 2,",
            "groups.staff.quota.max_server",
            "did you mean 'max_servers'?",
        ),
    ],
)
def test_bad_quotas_and_budgets_are_named(old, new, field, words):
    assert old in BASE
    found = issues(BASE.replace(old, new, 1))
    assert field in found and words in found[field], found


def test_unknown_names_in_user_overrides():
    found = issues(
        BASE
        + (
            "users:\n"
            "  ann: {primary_group: teachers, profiles: [huge]}\n"
            "  dan: {primary_group: students}\n"
            "  cat: {primary_group: observers}\n"
            "  zed: {quota: {max_servers: 1}}\n"
        )
    )
    assert found == {
        "users.ann.primary_group": "unknown group 'teachers' (known: observers, staff, students)",
        "users.ann.profiles[0]": "unknown profile 'huge' (known: gpu, large, small)",
        "users.dan.primary_group": "'dan' is not a member of group 'students'",
        "users.cat.primary_group": "group 'observers' has no budget",
        "users.zed": "'zed' is not a user of this hub (list them in hub.users, hub.admin_users or a "
        "group's members)",
    }


def test_incomplete_budget_override_is_named():
    found = issues(BASE + "users:\n  loner: {budget: {period: week}}\n")
    assert found == {"users.loner.budget": "no group or default budget to override: set usd (and period)"}


def with_summer_course(start: str, end: str) -> str:
    summer = (
        "  summer:\n    members: [ann]\n"
        f"    budget: {{usd: 5, period: course, course: {{start: {start}, end: {end}}}}}\n"
    )
    return BASE.replace("accounting:\n", summer + "accounting:\n")


def test_overlapping_course_windows_are_refused():
    found = issues(with_summer_course("2026-07-10", "2026-07-20"))
    assert found == {
        "groups.summer.budget.course": "overlaps the course window of group 'students' "
        "(2026-07-01 to 2026-07-12); 'ann' is in both"
    }


def test_touching_course_windows_that_do_not_overlap_are_fine():
    ann = resolve(parse_platform(with_summer_course("2026-07-13", "2026-07-20")), "ann")
    assert ann.budget_source == "group:students"


# ------------------------------------------------------------------- access


CLOSED_CLASS = """
  school:
    members: [ann, bob, eve, root]
    profiles: [small]
    budget: {usd: 5, period: course, course: {start: 2026-06-01, end: 2026-06-12}}
    course: {title: Summer school, status: closed}
"""


def test_a_closed_class_shuts_out_only_those_with_no_other_way_in():
    from platform_tools.config.policy import access_problem

    text = BASE.replace("hub: {users: [loner]}", "hub: {users: [loner], admin_users: [root]}")
    text = text.replace("    members: [cat]\n", "    members: [cat]\n" + CLOSED_CLASS.lstrip("\n"))
    closed = parse_platform(text, "platform.yaml")
    # eve is only in the closed class: out, told which class and whom to ask
    assert "Your class (Summer school) has closed" in access_problem(closed, "eve")
    assert "Contact your platform's administrators" in access_problem(closed, "eve")
    # ann's other group is the (open) students group, bob is staff (a TA), root an admin: in
    assert [access_problem(closed, name) for name in ("ann", "bob", "root", "loner")] == [None] * 4
    assert "is not a user of this platform" in access_problem(closed, "mallory")
    # the same rule as the hub's allowed users
    everyone = {"ann", "bob", "cat", "dan", "eve", "root", "loner", "mallory"}
    assert {n for n in everyone if access_problem(closed, n) is None} == closed.allowed_users
