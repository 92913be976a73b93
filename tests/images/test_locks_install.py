"""The fast path of the image tests: each image's lock installs into a venv, with its hashes
(tests/images/venvs.py), and the image's smoke checks pass there. (The real builds, with the
same smoke checks inside the images, are `make images-test`.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from platform_tools.images.models import load_images
from platform_tools.images.service import smoke_command
from tests.images.venvs import image_venv

pytestmark = pytest.mark.images
IMAGES = load_images()
UV = str(Path(sys.executable).parent / "uv")


@pytest.mark.parametrize("name", list(IMAGES.images))
def test_the_lock_installs_and_the_smoke_checks_pass(name, tmp_path):
    venv = image_venv(name, tmp_path)  # the lock, with its hashes, and platform_tools's wheel
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    command = [str(venv / "bin" / "python"), *smoke_command(IMAGES, name)[1:]]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{name}: " in done.stdout and "checks passed" in done.stdout
    assert "FAIL" not in done.stdout
