"""Running the real ansible-playbook from tests: the project's ansible.cfg, a temporary HOME
and local temp, the venv's Python, results read back through the JSON callback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.platform import REPO_ROOT

ANSIBLE_DIR = REPO_ROOT / "ansible"
BIN = Path(sys.executable).parent


@dataclass
class PlaybookRun:
    returncode: int
    report: dict
    stderr: str

    @property
    def stats(self) -> dict:
        return next(iter(self.report.get("stats", {}).values()), {})

    @property
    def changed(self) -> int:
        return self.stats.get("changed", 0)

    def results(self, task_name: str) -> list[dict]:
        """Every host's result of the tasks with this name."""
        found = []
        for play in self.report.get("plays", []):
            for task in play.get("tasks", []):
                if task["task"]["name"] == task_name:
                    found.extend(task["hosts"].values())
        return found

    def failures(self) -> list[str]:
        messages = []
        for play in self.report.get("plays", []):
            for task in play.get("tasks", []):
                for result in task["hosts"].values():
                    if result.get("failed") and not result.get("ignore_errors"):
                        items = [i for i in result.get("results", []) if i.get("failed")]
                        for failed in items or [result]:
                            messages.append(f"{task['task']['name']}: {failed.get('msg', failed)}")
        return messages


def run_playbook(
    playbook: str | Path,
    home: Path,
    *,
    inventory: str | Path | None = None,
    extra_vars: dict | None = None,
    env: dict[str, str] | None = None,
    check: bool = False,
    diff: bool = False,
) -> PlaybookRun:
    home.mkdir(parents=True, exist_ok=True)
    argv = [str(BIN / "ansible-playbook"), str(playbook)]
    if inventory is not None:
        argv += ["-i", str(inventory)]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    environment = {
        **os.environ,
        "HOME": str(home),
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **(env or {}),
    }
    done = subprocess.run(
        argv, cwd=ANSIBLE_DIR, env=environment, capture_output=True, text=True, timeout=900, check=False
    )
    try:
        report = json.loads(done.stdout[done.stdout.index("{") :]) if "{" in done.stdout else {}
    except json.JSONDecodeError:
        report = {"unparsed": done.stdout}
    return PlaybookRun(done.returncode, report, done.stderr)
