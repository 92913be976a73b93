"""A class's materials: the git repository whose notebooks land in every student's home.

``course.materials`` names a repository, a branch and the folder of each home it goes to, as
an nbgitpuller link does (its ``repo``, ``branch`` and ``targetpath``). Every value here ends up
on a git command line run as each student, in a link students click and in a pod's postStart
hook, so each is checked narrowly rather than passed on as written:

* the repository is an ``https://`` URL without credentials (they would be copied into every
  student's clone and into the link), or - on one machine only - ``file:///path`` or an
  absolute path. Nothing else: no ``ssh``/``git``/``http`` and above all no ``ext::`` or
  ``fd::`` transports (git runs the command an ``ext::`` URL names), no leading ``-`` that git
  could read as an option (``--upload-pack=...``), no spaces or control characters;
* the branch is a plain ref name (letters, digits, ``. _ - /``; no ``..``, no leading ``-``);
* the folder is one name inside the home (no ``/``, no ``..``, no leading ``.`` or ``-``),
  by default the repository's own name as nbgitpuller's link generator takes it (the last
  part of the path without ``.git``), and never ``notebooks``, the platform's own examples.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from platform_tools.config.models_base import StrictModel

if TYPE_CHECKING:  # pragma: no cover
    from platform_tools.config.models import PlatformConfig

#: The folder of every home where the platform's own example notebooks are copied
#: (``local.homes.provide_notebooks``): a class's materials go elsewhere.
PLATFORM_NOTEBOOKS_FOLDER = "notebooks"

FOLDER_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$"
_BRANCH_PART = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
BRANCH_PATTERN = rf"^{_BRANCH_PART}(/{_BRANCH_PART})*$"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(\.{_LABEL})*(:\d{{1,5}})?$")
_PATH = re.compile(r"^/[A-Za-z0-9._~%+@/-]*$")


def _local_path_problem(path: str) -> str | None:
    if not _PATH.fullmatch(path):
        return "a local repository is an absolute path of letters, digits and . _ ~ % + @ / -"
    if ".." in path.split("/"):
        return "a local repository's path has no '..' in it"
    return None


def repository_problem(repo: str) -> str | None:
    """Why ``repo`` may not be a class's materials, said for a person; None if it may."""
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in repo):
        return "the repository has spaces or control characters in it"
    if repo.startswith("-"):
        return "the repository starts with '-', which git would read as an option"
    if repo.startswith("/"):
        return _local_path_problem(repo)
    parts = urlsplit(repo)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            return "a file:// repository is file:///absolute/path on this machine"
        return _local_path_problem(parts.path)
    if scheme != "https" or not repo.lower().startswith("https://"):
        return (
            f"{repo!r} is not allowed: use an https:// URL (on one machine also file:///path or "
            "an absolute path); ssh, git://, http:// and git's transport::address forms are refused"
        )
    if "@" in parts.netloc:
        return (
            "the repository URL carries credentials, which would be copied into every student's "
            "clone and into the link: use a repository students may read without them"
        )
    if not _HOST.fullmatch(parts.netloc):
        return f"{parts.netloc!r} is not a host name (with an optional :port)"
    if parts.query or parts.fragment or "?" in repo or "#" in repo:
        return "the repository URL has a ?query or #fragment, which git does not use"
    if not parts.path.strip("/") or not _PATH.fullmatch(parts.path):
        return "the repository URL's path is letters, digits and . _ ~ % + @ / - (and not empty)"
    return None


def folder_of(repo: str) -> str:
    """The folder nbgitpuller's link generator names for ``repo``: the last part of its path,
    without a trailing ``/`` and ``.git``."""
    path = repo if repo.startswith("/") else urlsplit(repo).path
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name[: -len(".git")] if name.endswith(".git") else name


class CourseMaterials(StrictModel):
    """A git repository pulled into every student's home with nbgitpuller's merge rules."""

    repo: str = Field(
        description="The git repository: https://host/path (no credentials); on one machine also "
        "file:///path or an absolute path the students' accounts can read.",
    )
    branch: str = Field("main", max_length=200, description="The branch pulled.")
    folder: str | None = Field(
        None,
        description="The folder in each home (default: the repository's name, without .git, as "
        "nbgitpuller's link generator takes it).",
    )
    timeout_seconds: int = Field(
        300, ge=10, le=3600, description="The longest one student's pull may take before it is stopped."
    )
    pull_on_start: bool = Field(
        True,
        description="One machine: also pull at each start of a student's server (as an nbgitpuller "
        "link does), in the background as the student; prewarm always pulls. Kubernetes pulls at "
        "every start in any case (the pod's postStart hook): the home is the pod's volume.",
    )

    @field_validator("repo")
    @classmethod
    def _allowed_repository(cls, repo: str) -> str:
        problem = repository_problem(repo)
        if problem:
            raise ValueError(problem)
        return repo

    @field_validator("branch")
    @classmethod
    def _plain_branch(cls, branch: str) -> str:
        if not re.fullmatch(BRANCH_PATTERN, branch) or ".." in branch or branch.endswith((".lock", ".")):
            raise ValueError(
                f"branch {branch!r} is not a plain git branch name: letters, digits, '.', '_', '-' and "
                "'/' between parts, no part starting with '.' or '-', no '..', not ending in .lock"
            )
        return branch

    @model_validator(mode="after")
    def _one_folder_name(self) -> CourseMaterials:
        name = self.folder if self.folder is not None else folder_of(self.repo)
        source = "folder" if self.folder is not None else f"the folder taken from the repository ({name!r})"
        if not re.fullmatch(FOLDER_PATTERN, name):
            raise ValueError(
                f"{source} must be one name in the home: letters, digits, '.', '_' or '-', not starting "
                "with '.' or '-'" + ("" if self.folder is not None else "; set folder")
            )
        if name == PLATFORM_NOTEBOOKS_FOLDER:
            raise ValueError(
                f"{source}: ~/{name} holds the platform's example notebooks; choose another folder"
            )
        return self

    @property
    def target(self) -> str:
        """The folder in each home the materials are pulled into."""
        return self.folder if self.folder is not None else folder_of(self.repo)

    @property
    def local(self) -> bool:
        """A repository on this machine (file:// or a path): meaningless inside a pod."""
        return self.repo.startswith("/") or self.repo.lower().startswith("file:")

    @property
    def local_path(self) -> str | None:
        """The repository's folder on this machine, for a local one."""
        if not self.local:
            return None
        return self.repo if self.repo.startswith("/") else urlsplit(self.repo).path


def materials_of(config: PlatformConfig, username: str) -> list[tuple[str, CourseMaterials]]:
    """(class, materials) of every open class ``username`` is a member of, in file order; when
    two name the same folder, the first class's (one home folder is one clone)."""
    from platform_tools.config.policy import groups_of

    found: dict[str, tuple[str, CourseMaterials]] = {}
    for name in groups_of(config, username):
        course = config.groups[name].course
        if course is None or course.status != "open" or course.materials is None:
            continue
        found.setdefault(course.materials.target, (name, course.materials))
    return list(found.values())
