"""A class's materials on Kubernetes: the student's pod pulls them at each start.

The pod manifest KubeSpawner builds from platform.yaml (no API server needed, as in
test_kubespawner.py) carries a postStart hook running nbgitpuller's ``gitpuller`` as the pod's
user; that very command is then run here, with ``sh`` and the real ``gitpuller``, into a home
folder from a real repository - twice, with the student's edit in between - and against a
repository that cannot be reached, where it must still exit 0 (a failing postStart hook makes
Kubernetes kill the student's server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from platform_tools.classes.materials import post_start_hook
from platform_tools.config import parse_platform
from platform_tools.config.materials import CourseMaterials
from tests.auth import with_oidc
from tests.hub.test_kubespawner import manifest
from tests.materials import CourseRepository, cell_sources, notebook

pytestmark = pytest.mark.unit

CLASS = """
groups:
  school:
    members: [student1]
    profiles: [small]
    budget: {usd: 5, period: course, course: {start: 2027-06-14, end: 2027-06-25}}
    course:
      materials: MATERIALS
  researchers:
    members: [demo]
"""


def platform_with(example_text: str, materials: str):
    start = example_text.index("\ngroups:\n")
    end = example_text.index("\n# Per-user exceptions")
    return with_oidc(
        parse_platform(example_text[:start] + CLASS.replace("MATERIALS", materials) + example_text[end:])
    )


def post_start(pod: dict) -> dict | None:
    lifecycle = pod["spec"]["containers"][0].get("lifecycle") or {}
    hook = lifecycle.get("post_start") or lifecycle.get("postStart")
    return hook


def test_a_students_pod_pulls_the_materials_at_start(example_text, monkeypatch, tmp_path):
    platform = platform_with(
        example_text,
        "{repo: 'https://github.com/heliocloud/summer-school.git', branch: '2027', timeout_seconds: 90}",
    )
    pod = manifest(platform, "student1", None, monkeypatch, tmp_path)["pod"]
    hook = post_start(pod)
    command = (hook.get("_exec") or hook["exec"])["command"]  # the client's name for exec
    assert command[:2] == ["sh", "-c"] and command[3] == "parhelion-materials"
    # the values are arguments of the script, never part of it
    assert command[4:] == [
        "https://github.com/heliocloud/summer-school.git",
        "2027",
        "/home/jovyan/summer-school",
        "10",  # held under KubeSpawner's start_timeout (its default 60 s, less 60 s; at least 10)
        "https",
    ]
    assert "github.com" not in command[2]
    assert post_start(manifest(platform, "demo", "small", monkeypatch, tmp_path)["pod"]) is None


def test_a_repository_on_one_machines_disk_is_not_given_to_pods(example_text, monkeypatch, tmp_path):
    platform = platform_with(example_text, "{repo: /srv/course.git}")
    assert post_start(manifest(platform, "student1", None, monkeypatch, tmp_path)["pod"]) is None


def run_hook(command: list[str], home: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """The hook's command as the pod runs it: ``gitpuller`` on the PATH, the pod's HOME."""
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(tmp_path),
    }
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_hooks_command_pulls_and_never_fails_the_pod(tmp_path):
    repo = CourseRepository(tmp_path / "repo")
    repo.push("day 1", {"intro.ipynb": notebook("# Day 1", "x = 1", "y = 2", "print(x)")})
    home = tmp_path / "jovyan"
    home.mkdir()
    materials = CourseMaterials(repo=f"file://{repo.bare}", folder="course")  # https in a pod
    command = post_start_hook([materials], str(home))["exec"]["command"]
    assert run_hook(command, home, tmp_path).returncode == 0
    assert cell_sources(home / "course" / "intro.ipynb") == ["# Day 1", "x = 1", "y = 2", "print(x)"]

    (home / "course" / "intro.ipynb").write_text(notebook("# Day 1 - mine", "x = 1", "y = 2", "print(x)"))
    repo.push("day 2", {"day2.ipynb": notebook("# Day 2")})
    assert run_hook(command, home, tmp_path).returncode == 0  # the server's next start
    assert cell_sources(home / "course" / "intro.ipynb")[0] == "# Day 1 - mine"
    assert (home / "course" / "day2.ipynb").exists()

    unreachable = CourseMaterials(repo="https://127.0.0.1:9/nobody/course.git", timeout_seconds=10)
    done = run_hook(post_start_hook([unreachable], str(home))["exec"]["command"], home, tmp_path)
    assert done.returncode == 0
    log = (tmp_path / "parhelion-materials.log").read_text()
    assert f"parhelion: https://127.0.0.1:9/nobody/course.git (main) not pulled into {home}/course" in log


def test_the_hook_follows_platform_yaml_at_each_start_of_the_same_spawner(example_text):
    """JupyterHub keeps one spawner per user for the hub's life: the hook set at the first
    start must not be taken for the chart's own at the next one (a closed class, a new branch)."""
    import logging
    from types import SimpleNamespace

    from platform_tools.hub.kubernetes import materials_hook

    first = platform_with(
        example_text, "{repo: 'https://github.com/heliocloud/summer-school.git', branch: '2027'}"
    )
    moved = platform_with(
        example_text, "{repo: 'https://github.com/heliocloud/summer-school.git', branch: '2028'}"
    )
    spawner = SimpleNamespace(
        user=SimpleNamespace(name="student1"), lifecycle_hooks={}, log=logging.getLogger("test")
    )
    materials_hook(spawner, first)
    assert spawner.lifecycle_hooks["postStart"]["exec"]["command"][5] == "2027"
    materials_hook(spawner, moved)  # the instructor moved the class to the 2028 branch
    assert spawner.lifecycle_hooks["postStart"]["exec"]["command"][5] == "2028"
    closed = platform_with(
        example_text,
        "{repo: 'https://github.com/heliocloud/summer-school.git', branch: '2028'}\n      status: closed",
    )
    materials_hook(spawner, closed)  # the class closed: its repository is no longer pulled
    assert "postStart" not in spawner.lifecycle_hooks


def test_the_charts_own_hook_is_still_kept(example_text):
    import logging
    from types import SimpleNamespace

    from platform_tools.hub.kubernetes import materials_hook

    platform = platform_with(example_text, "{repo: 'https://github.com/heliocloud/summer-school.git'}")
    own = {"exec": {"command": ["sh", "-c", "echo chart"]}}
    spawner = SimpleNamespace(
        user=SimpleNamespace(name="student1"), lifecycle_hooks={"postStart": own}, log=logging.getLogger("t")
    )
    materials_hook(spawner, platform)
    materials_hook(spawner, platform)
    assert spawner.lifecycle_hooks["postStart"] == own
