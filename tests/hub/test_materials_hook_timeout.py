"""A class's materials on Kubernetes: the postStart hook's pulls end before KubeSpawner gives
up on the pod (Kubernetes holds the container until the hook returns)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from platform_tools.hub.kubernetes import materials_hook
from tests.hub import test_materials_hook as hook_tests

pytestmark = pytest.mark.unit


def test_the_hooks_pulls_end_before_the_spawner_gives_up(example_text, monkeypatch):
    """Two classes' pulls of 300 s each (the default) must not outlast KubeSpawner's
    start_timeout (z2jh: 300 s), or a repository that hangs (GitHub down at 9:00) fails
    every student's start."""
    two = hook_tests.CLASS.replace(
        "  researchers:",
        """  school2:
    members: [student1]
    profiles: [small]
    budget: {usd: 5, period: course, course: {start: 2027-07-05, end: 2027-07-09}}
    course:
      materials: {repo: 'https://github.com/heliocloud/other.git'}
  researchers:""",
    )
    monkeypatch.setattr(hook_tests, "CLASS", two)
    platform = hook_tests.platform_with(
        example_text, "{repo: 'https://github.com/heliocloud/summer-school.git'}"
    )
    spawner = SimpleNamespace(
        user=SimpleNamespace(name="student1"),
        lifecycle_hooks={},
        log=logging.getLogger("t"),
        start_timeout=300,
    )
    materials_hook(spawner, platform)
    command = spawner.lifecycle_hooks["postStart"]["exec"]["command"]
    seconds = [int(command[4 + 5 * i + 3]) for i in range((len(command) - 4) // 5)]
    assert len(seconds) == 2
    assert sum(seconds) < spawner.start_timeout
