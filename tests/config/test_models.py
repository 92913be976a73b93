"""The platform.yaml model: the example is valid, defaults are sane, rules hold."""

from __future__ import annotations

import re

import pytest

from platform_tools.config import ConfigError, parse_platform
from platform_tools.config.models import PlatformConfig

pytestmark = pytest.mark.unit

MINIMAL = """
name: tiny
images: {base: "example.org/base:2026.11.0"}
profiles:
  small: {display_name: Small, cpu_guarantee: 1, cpu_limit: 1, mem_guarantee_gib: 1,
          mem_limit_gib: 2, image: base, price_per_hour_usd: 0.1}
"""


def test_example_config_is_valid(example_text):
    config = parse_platform(example_text, "platform.local.yaml")
    assert config.name == "parhelion-local"
    assert config.default_profile == "small"
    assert config.default_archive == "sample"
    assert config.allowed_users == {"admin", "demo"}
    assert config.archives["sample"].local is not None
    assert config.archives["sdo"].access == "anonymous"
    assert config.dask_gateway.worker_cores.max == 2


def test_minimal_config_gets_defaults():
    config = parse_platform(MINIMAL)
    assert config.hub.cull_idle_servers_after_minutes == 60
    assert config.hub.default_ui == "lab"
    assert config.local.ports.hub == 8000
    assert config.local.ports.s3 is None
    assert config.local.spawner is None  # decided by who can log in: config.local_spawner
    assert config.local_spawner == "simple" and not config.local.trusted
    assert config.dask_gateway.enabled
    assert config.dask_gateway.worker_memory_gib.default == 2
    assert config.groups == {} and config.archives == {}
    assert config.default_profile == "small"
    assert config.default_archive is None


def test_config_is_immutable():
    config = parse_platform(MINIMAL)
    with pytest.raises(ValueError):
        config.name = "other"  # type: ignore[misc]


def test_model_validate_also_checks_references():
    """Code paths that skip the loader (the chart, Ansible) still get reference checks."""
    data = parse_platform(MINIMAL).model_dump()
    data["profiles"]["small"]["image"] = "missing"
    with pytest.raises(ValueError, match="unknown image 'missing'"):
        PlatformConfig.model_validate(data)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            ("cpu_guarantee: 1,", "cpu_guarantee: 3,"),
            "profiles.small",
            "cpu_guarantee (3.0) is larger than cpu_limit",
        ),
        (
            ("mem_guarantee_gib: 1", "mem_guarantee_gib: 4"),
            "profiles.small",
            "mem_guarantee_gib (4.0) is larger",
        ),
        (
            ("price_per_hour_usd: 0.1", "price_per_hour_usd: -1"),
            "profiles.small.price_per_hour_usd",
            "greater than or equal to 0",
        ),
        (("cpu_limit: 1,", "cpu_limit: 0,"), "profiles.small.cpu_limit", "greater than 0"),
        (("base:2026.11.0", "base:latest"), "images.base", "the tag 'latest' moves"),
        (("base:2026.11.0", "base"), "images.base", "explicit tag"),
        (("name: tiny", "name: Tiny Hub"), "name", "a name is 1-63 lower-case letters"),
    ],
)
def test_invalid_values_are_named(change, field, words):
    with pytest.raises(ConfigError) as caught:
        parse_platform(MINIMAL.replace(*change), "p.yaml")
    messages = [f"{issue.field}: {issue.message}" for issue in caught.value.issues]
    assert any(m.startswith(field + ":") and words in m for m in messages), messages


def test_ranges_must_be_ordered():
    text = MINIMAL + "dask_gateway:\n  worker_cores: {min: 4, max: 2, default: 3}\n"
    with pytest.raises(ConfigError) as caught:
        parse_platform(text)
    (issue,) = caught.value.issues
    assert issue.field == "dask_gateway.worker_cores"
    assert "min <= default <= max" in issue.message


def test_local_archive_cannot_have_an_endpoint():
    text = MINIMAL + (
        "archives:\n  a:\n    bucket: abc\n    endpoint_url: http://example.org\n    local: {}\n"
    )
    with pytest.raises(ConfigError, match="remove endpoint_url"):
        parse_platform(text)


def test_local_archives_share_an_access_mode():
    text = MINIMAL + (
        "archives:\n"
        "  a: {bucket: aaa, access: keyed, local: {}}\n"
        "  b: {bucket: bbb, access: anonymous, local: {seed: empty}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_platform(text)
    assert [issue.field for issue in caught.value.issues] == ["archives.b.access"]


def test_every_reference_problem_is_reported_at_once():
    text = MINIMAL.replace("image: base", "image: nope") + (
        "  big: {display_name: Big, cpu_guarantee: 1, cpu_limit: 1, mem_guarantee_gib: 1,\n"
        "        mem_limit_gib: 2, image: base, price_per_hour_usd: 0.1, default: true}\n"
        "  huge: {display_name: Huge, cpu_guarantee: 1, cpu_limit: 1, mem_guarantee_gib: 1,\n"
        "        mem_limit_gib: 2, image: base, price_per_hour_usd: 0.1, default: true}\n"
        "groups:\n  class: {members: [ann, bob, ann], profiles: [small, tiny]}\n"
        "hub: {admin_users: [root, root]}\n"
        "local: {ports: {hub: 8000, s3: 8000}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_platform(text, "p.yaml")
    found = {issue.field: issue.message for issue in caught.value.issues}
    assert found == {
        "profiles.small.image": "unknown image 'nope' (known: base)",
        "profiles.huge.default": "only one profile can be the default; 'big' already is",
        "groups.class.profiles[1]": "unknown profile 'tiny' (known: big, huge, small)",
        "groups.class.members[2]": "'ann' is already listed at [0]",
        "hub.admin_users[1]": "'root' is already listed at [0]",
        "local.ports.s3": "port 8000 is already used by local.ports.hub",
    }


@pytest.mark.parametrize(
    ("window", "field", "words"),
    [
        ("{start: 2027-06-14, end: 9999-12-31}", "end", "9999-12-31 is outside the dates Parhelion supports"),
        (
            "{start: 0001-01-01, end: 2027-06-25}",
            "start",
            "0001-01-01 is outside the dates Parhelion supports",
        ),
        ("{start: 2027-06-25, end: 2027-06-14}", "", "end (2027-06-14) is before start (2027-06-25)"),
    ],
)
def test_a_course_window_is_within_supported_dates(window, field, words):
    """A far end date used to validate and then make every budget check raise OverflowError."""
    text = (
        MINIMAL
        + f"""
groups:
  school:
    members: [ann]
    budget: {{usd: 5, period: course, course: {window}}}
"""
    )
    with pytest.raises(ConfigError) as error:
        parse_platform(text, "platform.yaml")
    [issue] = error.value.issues
    assert issue.field == "groups.school.budget.course" + (f".{field}" if field else "")
    assert words in issue.message
    assert issue.line is not None


def test_system_users_take_any_hub_name_through_the_account_prefix():
    """With system-users each hub user runs as ``local.accounts.prefix`` + their name
    (contract.accounts): names useradd would refuse as they are (an '@', all digits, longer
    than 32) are valid hub names, each with an account name useradd takes, no two the same."""
    from platform_tools.contract.accounts import user_account

    long_name = "a" * 33
    text = (
        MINIMAL
        + f"""
hub:
  admin_users: [root-admin]
  users: [ann@uni.edu, {long_name}, root]
groups:
  school:
    members: [ok, "12345"]
users:
  {long_name}: {{}}
local: {{spawner: system-users}}
"""
    )
    config = parse_platform(text, "platform.yaml")
    names = ["ann@uni.edu", long_name, "root", "ok", "12345", "root-admin"]
    accounts = [user_account(config, name) for name in names]
    assert all(re.fullmatch(r"jupyter-[a-z0-9_.-]{1,24}", account) for account in accounts), accounts
    assert len(set(accounts)) == len(names) and "root" not in accounts
