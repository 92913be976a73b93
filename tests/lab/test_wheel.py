"""The platform_tools wheel carries the JupyterLab extension, prebuilt, where JupyterLab and
jupyter_server look for it once the base image installs the wheel (images/base/Dockerfile).

The image's own smoke check (platform_tools/images/smoke.py ``check_lab``) then asks
JupyterLab itself, in the image and in tests/images' venv of the base lock.
"""

from __future__ import annotations

import json
import zipfile

import pytest

from platform_tools.images.service import build_wheel
from platform_tools.lab import LABEXTENSION, _jupyter_labextension_paths
from tests.platform import REPO_ROOT

pytestmark = pytest.mark.unit


def test_the_wheel_carries_the_built_extension_and_the_server_extensions_switch(tmp_path):
    wheel = build_wheel(tmp_path)
    version = wheel.name.split("-")[1]
    data = f"parhelion-{version}.data/data/"
    extension = f"{data}share/jupyter/labextensions/{LABEXTENSION}/"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        package = json.loads(archive.read(extension + "package.json"))
        switch = json.loads(archive.read(f"{data}etc/jupyter/jupyter_server_config.d/parhelion-lab.json"))
        load = archive.read(extension + package["jupyterlab"]["_build"]["load"])
    built = REPO_ROOT / "platform_tools" / "lab" / "labextension"
    assert package["name"] == LABEXTENSION == _jupyter_labextension_paths()[0]["dest"]
    # what JupyterLab loads first is the build in the tree, not a stale copy
    assert load == (built / package["jupyterlab"]["_build"]["load"]).read_bytes()
    assert f"{extension}schemas/{LABEXTENSION}/plugin.json" in names
    assert switch == {"ServerApp": {"jpserver_extensions": {"platform_tools.lab": True}}}
    assert "platform_tools/lab/handlers.py" in names
    assert not [n for n in names if "node_modules" in n or "/js/" in n]  # sources stay out
