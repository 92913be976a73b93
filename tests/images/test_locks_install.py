"""The fast path of the image tests: each image's lock installs into a fresh venv, with its
hashes, and the image's smoke checks pass there. (The real builds, with the same smoke
checks inside the images, are `make images-test`.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from platform_tools.images.locks import image_dir
from platform_tools.images.models import load_images
from platform_tools.images.service import build_wheel, smoke_command

pytestmark = pytest.mark.images
IMAGES = load_images()
UV = str(Path(sys.executable).parent / "uv")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.mark.parametrize("name", list(IMAGES.images))
def test_the_lock_installs_and_the_smoke_checks_pass(name, wheel, tmp_path):
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env)
    python = str(venv / "bin" / "python")
    install = [UV, "pip", "install", "--quiet", "--python", python, "--require-hashes", "--no-deps"]
    subprocess.run(
        [*install, "-r", str(image_dir(name) / "requirements.txt")], check=True, env=env, timeout=900
    )
    subprocess.run(
        [UV, "pip", "install", "--quiet", "--python", python, "--no-deps", str(wheel)], check=True, env=env
    )
    command = [python, *smoke_command(IMAGES, name)[1:]]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{name}: " in done.stdout and "checks passed" in done.stdout
    assert "FAIL" not in done.stdout
