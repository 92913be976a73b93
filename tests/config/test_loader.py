"""Validation messages name the file, line, column and field, in words a person reads."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from platform_tools.config import ConfigError, load_platform, parse_platform

pytestmark = pytest.mark.unit


def issues_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_platform(text, "platform.yaml")
    return [str(issue) for issue in caught.value.issues]


def test_unknown_field_points_at_its_line_and_suggests(example_text):
    text = example_text.replace("    cpu_limit: 1\n", "    cpu_limt: 1\n", 1)
    line = text.splitlines().index("    cpu_limt: 1") + 1
    messages = issues_of(text)
    assert (
        f"platform.yaml:{line}:5: profiles.small.cpu_limt: unknown field 'cpu_limt'; "
        "did you mean 'cpu_limit'?" in messages
    )
    # and the now-missing field is reported at its parent mapping
    assert any("profiles.small.cpu_limit: required field is missing" in m for m in messages)


def test_unknown_top_level_section_lists_nothing_wrong_elsewhere(example_text):
    messages = issues_of(example_text + "dask_gatway: {}\n")
    assert messages == [
        f"platform.yaml:{len(example_text.splitlines()) + 1}:1: dask_gatway: unknown field "
        "'dask_gatway'; did you mean 'dask_gateway'?"
    ]


def test_wrong_type_quotes_the_value(example_text):
    text = example_text.replace(
        "cull_idle_servers_after_minutes: 60", "cull_idle_servers_after_minutes: soon"
    )
    line = text.splitlines().index("  cull_idle_servers_after_minutes: soon") + 1
    (message,) = issues_of(text)
    assert message.startswith(f"platform.yaml:{line}:3: hub.cull_idle_servers_after_minutes: ")
    assert "valid integer" in message and "(got 'soon')" in message


def test_list_items_are_located(example_text):
    text = example_text.replace("members: [demo]", "members: [demo, Bad User]")
    line = next(i for i, line in enumerate(text.splitlines(), 1) if "Bad User" in line)
    (message,) = issues_of(text)
    assert message.startswith(f"platform.yaml:{line}:")
    assert "groups.researchers.members[1]: invalid value: a username is" in message
    assert "(got 'Bad User')" in message


def test_reference_errors_are_located(example_text):
    text = example_text.replace("profiles: [small, medium]", "profiles: [small, large]")
    line = next(i for i, line in enumerate(text.splitlines(), 1) if "[small, large]" in line)
    (message,) = issues_of(text)
    assert message == (
        f"platform.yaml:{line}:23: groups.researchers.profiles[1]: unknown profile 'large' "
        "(known: medium, small)"
    )


def test_yaml_syntax_error_has_a_line():
    (message,) = issues_of("name: x\nprofiles: [a, b\nimages: {}\n")
    assert message.startswith("platform.yaml:3:")
    assert "YAML:" in message


def test_duplicate_keys_are_errors():
    (message,) = issues_of("name: a\nname: b\n")
    assert message.startswith("platform.yaml:2:1: YAML:") and 'duplicate key "name"' in message


def test_not_a_mapping():
    assert issues_of("- just\n- a list\n") == [
        "platform.yaml:1:1: the file must be a mapping of sections (hub:, ...)"
    ]


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_platform(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: file not found"


def test_issues_are_sorted_by_line(example_text):
    text = example_text.replace("cpu_limit: 2\n", "cpu_limit: -2\n").replace(
        "name: parhelion-local", "name: X"
    )
    lines = [int(m.split(":")[1]) for m in issues_of(text)]
    assert lines == sorted(lines) and len(lines) == 2


BILLION_LAUGHS = (
    "name: x\n"
    + "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]\n" for n in range(1, 9))
)


def test_aliases_are_refused_before_they_expand(tmp_path):
    """Nine nested aliases (a few hundred bytes) expand to 9**9 strings once the tree is plain
    data (5.8 s and 261 MB before): refused at the first alias, quickly and with little memory.
    Loaded in a child process so the figures are its own and a regression cannot hang the suite."""
    path = tmp_path / "platform.yaml"
    path.write_text(BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 700
    child = textwrap.dedent(
        """
        import sys, time
        from platform_tools.config import ConfigError, load_platform
        started = time.perf_counter()
        try:
            load_platform(sys.argv[1])
        except ConfigError as exc:
            print(exc)
        print(time.perf_counter() - started)
        # VmHWM: this process's own peak (ru_maxrss would count the forked pytest's pages)
        status = open("/proc/self/status").read().split("VmHWM:")[1]
        print(status.split()[0])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child, str(path)], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0, done.stderr
    message, elapsed, max_rss_kib = done.stdout.splitlines()
    assert message == (
        f"{path}:3:10: YAML: alias *a0 is not accepted here; write the value out "
        "(aliases can expand a small file into a huge one)"
    )
    assert float(elapsed) < 0.5
    assert int(max_rss_kib) < 100 * 1024  # the interpreter and the config package: ~35 MiB


def test_a_harmless_alias_is_refused_too(example_text):
    """One rule, no judgement of how far an alias expands; merges (<<: *x) are aliases."""
    text = example_text + "\nextra: &people [demo]\nmore: *people\n"
    (message,) = issues_of(text)
    assert "alias *people is not accepted here" in message
    (message,) = issues_of("name: x\nbase: &b {a: 1}\nother:\n  <<: *b\n")
    assert message.startswith("platform.yaml:4:7: YAML: alias *b")
