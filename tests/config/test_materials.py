"""``course.materials``: what may be pulled into students' homes, each refusal naming its field.

The repository, branch and folder reach git's command line (run as every student), a link
students click and a pod's postStart hook: the tests try what an attacker or a typo would put
there (git's ``ext::`` transport runs a command, ``--upload-pack=`` is an option, credentials
would be copied into every clone) and check each is refused at load, with the field's path."""

from __future__ import annotations

import pytest

from platform_tools.config import ConfigError, parse_platform
from platform_tools.config.materials import materials_of

pytestmark = pytest.mark.unit

MINIMAL = """
name: tiny
images: {base: "example.org/base:2026.11.0"}
profiles:
  small: {display_name: Small, cpu_guarantee: 1, cpu_limit: 1, mem_guarantee_gib: 1,
          mem_limit_gib: 2, image: base, price_per_hour_usd: 0.1}
groups:
  school:
    members: [ann, bob]
    profiles: [small]
    budget: {usd: 5, period: course, course: {start: 2027-06-14, end: 2027-06-25}}
    course:
      materials: MATERIALS
"""


def load(materials: str):
    return parse_platform(MINIMAL.replace("MATERIALS", materials), "platform.yaml")


def refusal(materials: str):
    with pytest.raises(ConfigError) as error:
        load(materials)
    [issue] = error.value.issues
    assert issue.line is not None  # pointed at in the file
    return issue


@pytest.mark.parametrize(
    ("materials", "folder"),
    [
        ("{repo: 'https://github.com/heliocloud/summer-school.git'}", "summer-school"),
        ("{repo: 'https://github.com/heliocloud/summer-school/'}", "summer-school"),
        ("{repo: 'https://git.example.org:8443/a/b/c.git', branch: release/2027}", "c"),
        ("{repo: /srv/course.git}", "course"),
        ("{repo: 'file:///srv/course.git', folder: my_course}", "my_course"),
    ],
)
def test_a_repository_students_can_read(materials, folder):
    config = load(materials)
    [(name, found)] = materials_of(config, "ann")
    assert name == "school" and found.target == folder
    assert found.branch in ("main", "release/2027")
    assert materials_of(config, "somebody-else") == []


@pytest.mark.parametrize(
    ("repo", "words"),
    [
        ("'ext::sh -c touch% /tmp/pwned'", "spaces or control characters"),
        ("'ext::sh'", "not allowed"),
        ("'fd::3'", "not allowed"),
        ("'--upload-pack=touch'", "starts with '-'"),
        ("'-u/tmp/x'", "starts with '-'"),
        ("'http://github.com/a/b'", "not allowed"),
        ("'ssh://git@github.com/a/b'", "not allowed"),
        ("'git@github.com:a/b.git'", "not allowed"),
        ("'git://github.com/a/b'", "not allowed"),
        ("'https://student:token@github.com/a/b'", "credentials"),
        ("'https://github.com/a/b?ref=x'", "?query"),
        ("'https://github.com'", "path"),
        ("'https://-x.org/a'", "host name"),
        ("'file://otherhost/srv/c.git'", "file:///absolute/path"),
        ("'relative/course.git'", "not allowed"),
        ("'/srv/../etc'", "'..'"),
        ('"https://github.com/a/b\\ncore.sshCommand=x"', "control characters"),
    ],
)
def test_git_argument_tricks_and_unsafe_transports_are_refused(repo, words):
    issue = refusal(f"{{repo: {repo}}}")
    assert issue.field == "groups.school.course.materials.repo"
    assert words in issue.message


@pytest.mark.parametrize(
    "branch", ["-b", "--upload-pack=x", "a..b", "x.lock", ".hidden", "a b", "a/-b", "a//b"]
)
def test_a_branch_is_a_plain_ref_name(branch):
    issue = refusal(f"{{repo: 'https://github.com/a/b', branch: '{branch}'}}")
    assert issue.field == "groups.school.course.materials.branch"
    assert "not a plain git branch name" in issue.message


@pytest.mark.parametrize(
    ("materials", "words"),
    [
        ("{repo: 'https://github.com/a/b', folder: '../bob'}", "one name in the home"),
        ("{repo: 'https://github.com/a/b', folder: 'x/y'}", "one name in the home"),
        ("{repo: 'https://github.com/a/b', folder: '.git'}", "one name in the home"),
        ("{repo: 'https://github.com/a/b', folder: '-rf'}", "one name in the home"),
        ("{repo: 'https://github.com/a/notebooks.git'}", "platform's example notebooks"),
        ("{repo: 'https://github.com/a/b', folder: notebooks}", "platform's example notebooks"),
        ("{repo: 'https://github.com/a/b%20c'}", "set folder"),
    ],
)
def test_the_folder_is_one_name_in_the_home(materials, words):
    issue = refusal(materials)
    assert issue.field == "groups.school.course.materials"
    assert words in issue.message and "folder" in issue.message


def test_unknown_keys_and_limits_are_named():
    issue = refusal("{repo: 'https://github.com/a/b', brnach: main}")
    assert issue.field == "groups.school.course.materials.brnach"
    issue = refusal("{repo: 'https://github.com/a/b', timeout_seconds: 1}")
    assert issue.field == "groups.school.course.materials.timeout_seconds"


def test_a_closed_class_brings_no_materials_and_one_folder_is_one_clone():
    budget = "    budget: {{usd: 5, period: course, course: {{start: 2027-{0}-01, end: 2027-{0}-10}}}}\n"
    text = MINIMAL.replace("MATERIALS", "{repo: 'https://github.com/a/first.git', folder: course}") + (
        f"  later:\n    members: [ann]\n    profiles: [small]\n{budget.format('07')}    course:\n"
        "      materials: {repo: 'https://github.com/b/second', folder: course}\n"
        f"  other:\n    members: [ann]\n    profiles: [small]\n{budget.format('08')}    course:\n"
        "      materials: {repo: 'https://github.com/c/third'}\n"
    )
    config = parse_platform(text)
    assert [(name, m.repo) for name, m in materials_of(config, "ann")] == [
        ("school", "https://github.com/a/first.git"),  # the first class's ~/course wins
        ("other", "https://github.com/c/third"),
    ]
    closed = parse_platform(
        text.replace(
            "    course:\n      materials: {repo: 'https://github.com/a/",
            "    course:\n      status: closed\n      materials: {repo: 'https://github.com/a/",
        )
    )
    assert [name for name, _ in materials_of(closed, "ann")] == ["later", "other"]
