"""Changing a deployed platform.yaml as the Ansible plays do: whole entries replaced,
everything else (comments, order, other sections) kept, nothing written if invalid."""

from __future__ import annotations

import pytest

from platform_tools.config import ConfigError, parse_platform
from platform_tools.config.edit import PlatformChange, change_file, changed_text
from tests.platform import REPO_ROOT

pytestmark = pytest.mark.unit

SCHOOL = {
    "members": ["student001", "student002"],
    "profiles": ["small"],
    "quota": {"max_servers": 1, "max_dask_clusters": 1},
    "budget": {"usd": 5, "period": "course", "course": {"start": "2027-06-14", "end": "2027-06-25"}},
}


def test_a_group_is_added_and_the_rest_kept_with_its_comments(example_text):
    text = changed_text(example_text, PlatformChange(groups={"school": SCHOOL}, hub_users=["guest"]))
    config = parse_platform(text)
    assert config.groups["school"].members == ["student001", "student002"]
    assert config.groups["researchers"] == parse_platform(example_text).groups["researchers"]
    assert "# dask limits are summed over all of a user's clusters" in text
    assert config.hub.users[-1] == "guest"
    assert changed_text(text, PlatformChange(groups={"school": SCHOOL}, hub_users=["guest"])) == text


def test_a_group_is_replaced_whole_not_blended(example_text):
    text = changed_text(example_text, PlatformChange(groups={"researchers": {"members": ["ana"]}}))
    researchers = parse_platform(text).groups["researchers"]
    assert researchers.members == ["ana"] and researchers.quota is None and researchers.budget is None


def test_removing_a_group(example_text):
    with_school = changed_text(example_text, PlatformChange(groups={"school": SCHOOL}))
    text = changed_text(with_school, PlatformChange(remove_groups=["school", "never-there"]))
    assert "school" not in parse_platform(text).groups


def test_an_invalid_change_names_the_field_and_writes_nothing(example_text, tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text(example_text)
    bad = dict(SCHOOL, profiles=["huge"])
    with pytest.raises(ConfigError) as error:
        change_file(path, PlatformChange(groups={"school": bad}))
    assert "(with the change)" in str(error.value) and "groups.school.profiles" in str(error.value)
    assert "huge" in str(error.value)
    assert path.read_text() == example_text
    no_period = dict(SCHOOL, budget={"usd": 5, "course": {"start": "2027-06-14", "end": "2027-06-25"}})
    with pytest.raises(ConfigError, match="groups.school.budget"):
        change_file(path, PlatformChange(groups={"school": no_period}))
    assert path.read_text() == example_text


def test_change_file_writes_only_when_different(example_text, tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text(example_text)
    before, after = change_file(path, PlatformChange(groups={"school": SCHOOL}))
    assert before == example_text and path.read_text() == after != before
    stamp = path.stat().st_mtime_ns
    change_file(path, PlatformChange(groups={"school": SCHOOL}))
    assert path.stat().st_mtime_ns == stamp
    _, dry = change_file(path, PlatformChange(remove_groups=["school"]), write=False)
    assert "school" in path.read_text() and "school" not in dry


def test_an_entry_that_says_the_same_keeps_its_layout(example_text):
    """A play run against a file it did not write changes nothing that means nothing."""
    same = parse_platform(example_text).groups["researchers"].model_dump(exclude_none=True)
    same["budget"]["usd"] = 25.0  # Ansible passes numbers as floats
    assert changed_text(example_text, PlatformChange(groups={"researchers": same})) == example_text
    with_school = changed_text(example_text, PlatformChange(groups={"school": SCHOOL}))
    by_hand = with_school.replace("'2027-06-14'", "2027-06-14").replace("'2027-06-25'", "2027-06-25")
    assert by_hand != with_school  # YAML dates now, where the change has ISO strings
    assert changed_text(by_hand, PlatformChange(groups={"school": SCHOOL})) == by_hand


def test_an_edit_keeps_the_files_mode(example_text, tmp_path):
    """An admin's 0640 (or 0600) platform.yaml stays so; it used to come back 0644."""
    import os

    path = tmp_path / "platform.yaml"
    path.write_text(example_text)
    for mode in (0o640, 0o600):
        os.chmod(path, mode)
        change_file(path, PlatformChange(hub_users=[f"guest{mode:o}"]))
        assert f"guest{mode:o}" in parse_platform(path.read_text()).hub.users
        assert os.stat(path).st_mode & 0o777 == mode
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def _add_users(path: str, worker: int, start, count: int) -> None:
    start.wait()
    for n in range(count):
        change_file(path, PlatformChange(hub_users=[f"w{worker}u{n}"]))


def test_concurrent_edits_lose_nothing(example_text, tmp_path):
    """Edits at once (two plays, a play and `class close`) each keep their change: the
    read-modify-write is one step under a lock. Without it most of these were lost."""
    import multiprocessing

    path = tmp_path / "platform.yaml"
    path.write_text(example_text)
    context = multiprocessing.get_context("fork")
    start = context.Barrier(4)
    workers = [context.Process(target=_add_users, args=(str(path), w, start, 5)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    users = set(parse_platform(path.read_text()).hub.users)
    assert {f"w{w}u{n}" for w in range(4) for n in range(5)} <= users


def test_one_value_given_to_two_groups_is_written_out_twice():
    """The loader refuses YAML aliases (issue 17): an edit must never write one."""
    window = {"start": "2027-06-14", "end": "2027-06-25"}
    budget = {"usd": 5, "period": "course", "course": window}
    text = (REPO_ROOT / "hub_config" / "platform.local.yaml").read_text()
    change = PlatformChange(
        groups={"a": {"members": ["x"], "budget": budget}, "b": {"members": ["y"], "budget": budget}}
    )
    new_text = changed_text(text, change)
    assert "&" not in new_text.split("groups:")[1] and new_text.count("2027-06-25") == 2
