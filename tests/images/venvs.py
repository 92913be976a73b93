"""Each image's Python environment, made from its hashed lock, as the image build makes it.

The images tier checks that a lock installs and its smoke checks pass; the configuration
tier runs rendered pods' processes with these packages. A venv is made once per lock (and
platform_tools wheel) and kept under .venv-tools/images, keyed by their hashes: a changed
lock or package source makes a new one. Venvs are relocatable (``uv venv --relocatable``)
so a pod harness can bind one at the image's own path, /opt/parhelion.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from platform_tools.images.locks import image_dir
from platform_tools.images.service import build_wheel
from tests.platform import REPO_ROOT

UV = str(Path(sys.executable).parent / "uv")
CACHE = REPO_ROOT / ".venv-tools" / "images"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}


def _source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "platform_tools").rglob("*")):
        # the JupyterLab extension's npm packages are not in the wheel (its build output is)
        if path.is_file() and "__pycache__" not in path.parts and "node_modules" not in path.parts:
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    digest.update((REPO_ROOT / "pyproject.toml").read_bytes())
    return digest.hexdigest()[:16]


def image_venv(name: str, scratch: Path) -> Path:
    """The venv of image ``name``'s lock with this tree's platform_tools installed."""
    lock = image_dir(name) / "requirements.txt"
    key = hashlib.sha256(lock.read_bytes()).hexdigest()[:16] + "-" + _source_digest()
    venv = CACHE / f"{name}-{key}"
    if (venv / ".complete").exists():
        return venv
    CACHE.mkdir(parents=True, exist_ok=True)
    # the suite runs in several pytest workers: one makes the venv, the others wait for it
    with open(CACHE / f"{name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if not (venv / ".complete").exists():
            _make_venv(name, lock, venv, scratch)
    return venv


def _make_venv(name: str, lock: Path, venv: Path, scratch: Path) -> None:
    for stale in CACHE.glob(f"{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    env = _clean_env()
    subprocess.run(
        [UV, "venv", "--quiet", "--relocatable", "--python", sys.executable, str(venv)], check=True, env=env
    )
    python = str(venv / "bin" / "python")
    install = [UV, "pip", "install", "--quiet", "--python", python, "--no-deps"]
    subprocess.run([*install, "--require-hashes", "-r", str(lock)], check=True, env=env, timeout=900)
    wheel = build_wheel(scratch)
    subprocess.run([*install, str(wheel)], check=True, env=env)
    (venv / ".complete").touch()
