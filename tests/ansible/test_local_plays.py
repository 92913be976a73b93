"""quotas.yml and roster.yml for real, against inventories/local and a running local Daskhub.

The plays change the state directory's platform.yaml; the hub, the gateway and the
accounting service follow it live. So a new quota is enforced, and a roster's students can
log in (and dropped ones cannot), with the same hub process as before.
"""

from __future__ import annotations

import asyncio

import pytest

from platform_tools.clients.hubclient import HubError, HubUser
from platform_tools.config import load_platform
from tests.ansible.runner import ANSIBLE_DIR, run_playbook
from tests.platform import platform_config_text, run_in_a_users_kernel, running_platform

pytestmark = pytest.mark.ansible
INVENTORY = ANSIBLE_DIR / "inventories" / "local"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("plays"), platform_config_text(sample_files=4)) as running:
        yield running


def play(platform, name: str, tmp_path, **extra_vars):
    return run_playbook(
        name,
        tmp_path / "ansible-home",
        inventory=INVENTORY,
        extra_vars=extra_vars or None,
        env={"PARHELION_STATE_DIR": str(platform.state)},
    )


def logs_in(platform, username: str) -> bool:
    async def attempt() -> bool:
        async with HubUser(platform.url, username, platform.password()) as user:
            try:
                await user.login()
            except HubError:
                return False
            return True

    return asyncio.run(attempt())


def test_the_inventory_as_shipped_changes_nothing(platform, tmp_path):
    """inventories/local describes the platform `make up` starts: running quotas.yml is a no-op."""
    before = (platform.state / "platform.yaml").read_text()
    run = play(platform, "quotas.yml", tmp_path)
    assert run.returncode == 0, run.failures() or run.stderr
    assert run.changed == 0 and (platform.state / "platform.yaml").read_text() == before


def test_a_new_quota_is_enforced_without_a_restart(platform, tmp_path):
    hub_pid = platform.runtime["pids"]["jupyterhub"]
    live = platform.state / "platform.yaml"
    original = live.read_text()
    researchers = {
        "members": ["demo"],
        "profiles": ["small", "medium"],
        "quota": {"max_servers": 1, "max_dask_clusters": 0},
        "budget": {"usd": 25, "period": "month"},
    }
    try:
        run = play(platform, "quotas.yml", tmp_path, platform_config_groups={"researchers": researchers})
        assert run.returncode == 0, run.failures() or run.stderr
        assert run.changed == 1
        outputs = run_in_a_users_kernel(
            platform,
            "from dask_gateway import Gateway\n"
            "try:\n    Gateway().new_cluster()\n    print('created')\n"
            "except Exception as error:\n    print(error)\n",
            timeout=120,
        )
    finally:
        live.write_text(original)
    shown = "".join(o.get("text", "") for o in outputs)
    assert "the most your quota allows (0)" in shown
    assert platform.runtime["pids"]["jupyterhub"] == hub_pid


def test_a_roster_lets_its_students_in_and_a_bad_row_changes_nothing(platform, tmp_path):
    live = platform.state / "platform.yaml"
    original = live.read_text()
    hub_pid = platform.runtime["pids"]["jupyterhub"]
    bad = tmp_path / "bad.csv"
    bad.write_text("username,email\nstudent001,a@x.org\nStudent002,b@x.org\nstudent001,c@x.org\n")
    try:
        run = play(platform, "roster.yml", tmp_path, class_roster_path=str(bad))
        assert run.returncode != 0
        failure = "\n".join(run.failures())
        assert f"{bad}: row 3: username 'Student002' has capitals" in failure
        assert f"{bad}: row 4: username 'student001' is already on row 2" in failure
        assert live.read_text() == original and not logs_in(platform, "student001")

        run = play(platform, "roster.yml", tmp_path)  # the shipped example roster: three students
        assert run.returncode == 0, run.failures() or run.stderr
        school = load_platform(live).groups["example-school"]  # a class, as `parhelion class` makes them
        assert school.course.sessions == ["09:00-12:00", "14:00-17:00"] and school.budget.period == "course"
        assert logs_in(platform, "student001") and logs_in(platform, "student003")
        assert not logs_in(platform, "student004")

        dropped = tmp_path / "dropped.csv"
        dropped.write_text("username\nstudent002\nstudent003\n")
        run = play(platform, "roster.yml", tmp_path, class_roster_path=str(dropped))
        assert run.returncode == 0 and run.changed == 1
        assert not logs_in(platform, "student001") and logs_in(platform, "student002")
    finally:
        live.write_text(original)
    assert platform.runtime["pids"]["jupyterhub"] == hub_pid


def test_bad_inventory_values_stop_the_play_before_anything_changes(platform, tmp_path):
    live = platform.state / "platform.yaml"
    original = live.read_text()
    cases = {
        "platform_config_groups.school: unknown quotas": {"school": {"members": ["x"], "quotas": {}}},
        "platform_config_groups.school.budget has no period": {
            "school": {"members": ["x"], "budget": {"usd": 5}}
        },
        "groups.school.profiles": {"school": {"members": ["x"], "profiles": ["huge"]}},
    }
    for message, groups in cases.items():
        run = play(platform, "quotas.yml", tmp_path, platform_config_groups=groups)
        assert run.returncode != 0 and message in "\n".join(run.failures()), (message, run.failures())
        assert live.read_text() == original
    run = play(platform, "quotas.yml", tmp_path, parhelion_groups={})
    assert "parhelion_groups was removed: use platform_config_groups" in "\n".join(run.failures())
