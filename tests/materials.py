"""A course's git repository for tests: a bare repository (what students pull from) and the
instructor's working clone that pushes notebooks to it, all on this machine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


def notebook(*sources: str) -> str:
    """A notebook as nbformat writes it (one JSON line per field, indent 1): cells far enough
    apart that git merges changes to two different cells."""
    cells = [new_markdown_cell(sources[0])] + [new_code_cell(source) for source in sources[1:]]
    return nbformat.writes(new_notebook(cells=cells))


def cell_sources(path: Path) -> list[str]:
    return [cell.source for cell in nbformat.read(path, as_version=4).cells]


class CourseRepository:
    """``root``/course.git (bare, readable by every account) and ``root``/instructor."""

    def __init__(self, root: Path, branch: str = "main"):
        self.bare = root / "course.git"
        self.work = root / "instructor"
        self.branch = branch
        git("init", "--quiet", "--bare", "--initial-branch", branch, str(self.bare))
        git("clone", "--quiet", str(self.bare), str(self.work))
        git("config", "user.email", "instructor@example.org", cwd=self.work)
        git("config", "user.name", "Instructor", cwd=self.work)
        git("checkout", "--quiet", "-b", branch, cwd=self.work)

    def push(self, message: str, files: dict[str, str], removed: tuple[str, ...] = ()) -> None:
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for name in removed:
            git("rm", "--quiet", name, cwd=self.work)
        git("add", "--all", cwd=self.work)
        git("commit", "--quiet", "-m", message, cwd=self.work)
        git("push", "--quiet", "origin", self.branch, cwd=self.work)
        for folder, _folders, files in os.walk(self.bare):  # students read it as themselves
            os.chmod(folder, 0o755)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o644)
