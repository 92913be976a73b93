"""Each image's hashed lock: compiled from its requirements.in, held to the tested versions.

``uv pip compile`` resolves for the image's Python and platform (Debian bookworm's 3.11 on
x86_64), with hashes, and with ``requirements/lock.txt`` as constraints: a package the
project's tests ran with is pinned to the same version in every image, so the hub, the
notebooks and their Dask workers agree with each other and with what was tested.

Freshness is checked offline: every requirement of requirements.in must be pinned in the
lock at a version its specifier allows, with hashes, and the lock must say it was compiled
from that requirements.in (a digest in its header).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from platform_tools.images.models import IMAGES_DIR, REPO_ROOT, ImagesError, ImagesFile
from platform_tools.local.tools import find_tool

PROJECT_LOCK = REPO_ROOT / "requirements" / "lock.txt"
DIGEST_LINE = "# requirements.in sha256: "
_PIN = re.compile(r"^([A-Za-z0-9._-]+)(\[[^\]]*\])?==([^\s;\\]+)")


def image_dir(name: str) -> Path:
    return IMAGES_DIR / name


def input_digest(name: str) -> str:
    """A digest of the image's requirements.in and the files it includes (-r)."""
    digest = hashlib.sha256()
    for path in _inputs(image_dir(name) / "requirements.in"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _inputs(path: Path) -> list[Path]:
    found = [path]
    for line in path.read_text().splitlines():
        if line.strip().startswith("-r "):
            found += _inputs((path.parent / line.strip()[3:].strip()).resolve())
    return found


def requirements(name: str) -> list[Requirement]:
    out = []
    for path in _inputs(image_dir(name) / "requirements.in"):
        for line in path.read_text().splitlines():
            text = line.split("#", 1)[0].strip()
            if text and not text.startswith("-"):
                out.append(Requirement(text))
    return out


def pins(lock_text: str) -> dict[str, str]:
    found = {}
    for line in lock_text.splitlines():
        match = _PIN.match(line.strip())
        if match:
            found[canonicalize_name(match.group(1))] = match.group(3)
    return found


def lock_problems(name: str) -> list[str]:
    """Why image ``name``'s lock is out of date with its requirements.in (empty if it is not)."""
    lock = image_dir(name) / "requirements.txt"
    where = f"images/{name}/requirements.txt"
    if not lock.exists():
        return [f"{where}: missing; run `parhelion images lock {name}`"]
    text = lock.read_text()
    problems = []
    if f"{DIGEST_LINE}{input_digest(name)}" not in text:
        problems.append(f"{where}: compiled from another requirements.in; run `parhelion images lock {name}`")
    pinned = pins(text)
    for requirement in requirements(name):
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{where}: {requirement.name} is in requirements.in but not in the lock")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{where}: {requirement.name}=={version} does not satisfy {requirement}")
    if "--hash=sha256:" not in text:
        problems.append(f"{where}: no hashes (images install with --require-hashes)")
    return problems


def compile_lock(images: ImagesFile, name: str) -> Path:
    """Resolve and write images/NAME/requirements.txt (needs PyPI)."""
    images.image(name)
    uv = find_tool("uv")
    if uv is None:
        raise ImagesError("uv is not installed (it is in the project's test dependencies)")
    folder = image_dir(name)
    out = folder / "requirements.txt"
    command = [
        uv,
        "pip",
        "compile",
        "requirements.in",
        "--constraint",
        # relative, so the lock's "via -c" notes do not carry the path of whoever locked it
        os.path.relpath(PROJECT_LOCK, folder),
        "--generate-hashes",
        "--python-version",
        images.python,
        "--python-platform",
        "x86_64-manylinux_2_28",
        "--no-header",
        "--annotation-style",
        "line",
        "--output-file",
        "requirements.txt.new",
    ]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ImagesError(f"images/{name}: the lock did not resolve:\n{done.stderr.strip()}")
    body = (folder / "requirements.txt.new").read_text()
    (folder / "requirements.txt.new").unlink()
    header = (
        f"# Locked with hashes for Python {images.python} on x86_64 Linux "
        f"by `parhelion images lock {name}`;\n"
        "# versions held to requirements/lock.txt. Do not edit: change requirements.in and re-lock.\n"
        f"{DIGEST_LINE}{input_digest(name)}\n"
    )
    out.write_text(header + body)
    return out
