"""Do the images, their locks, platform.yaml, the chart and the gateway agree?

Dask breaks when a client and its workers differ in versions, and jupyterhub-singleuser
must match the hub. So:

* every lock pins dask, distributed and jupyterhub where it has them, equal across images
  and equal to the tested set (requirements/lock.txt); dask-gateway (the client, in the
  notebook images) equals dask-gateway-server (in the hub image);
* every reference to a Parhelion image (``REGISTRY/parhelion-NAME:TAG``) in platform.yaml
  files and in the chart carries the tag images/images.yaml gives NAME, and names an image
  that exists; platform.yaml's dask-gateway image resolves to one of them.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.utils import canonicalize_name

from platform_tools.images.locks import PROJECT_LOCK, image_dir, pins
from platform_tools.images.models import REPO_ROOT, ImagesFile

SHARED = ("dask", "distributed", "jupyterhub", "dask-gateway")
PLATFORM_FILES = (REPO_ROOT / "hub_config" / "platform.local.yaml",)
CHART_DIR = REPO_ROOT / "helm"


def lock_pins(name: str) -> dict[str, str]:
    path = image_dir(name) / "requirements.txt"
    return pins(path.read_text()) if path.exists() else {}


def expected_versions(images: ImagesFile) -> dict[str, str]:
    """{package: version} every image's environment must have, where it has the package."""
    tested = pins(PROJECT_LOCK.read_text())
    expected = {name: tested[name] for name in SHARED if name in tested}
    hub = lock_pins("hub") if "hub" in images.images else {}
    if "dask-gateway-server" in hub:
        expected["dask-gateway-server"] = hub["dask-gateway-server"]
        expected["dask-gateway"] = hub["dask-gateway-server"]  # the client must speak the server's API
    return expected


def lock_version_problems(images: ImagesFile) -> list[str]:
    expected = expected_versions(images)
    problems = []
    for name in images.images:
        pinned = lock_pins(name)
        for package, version in expected.items():
            found = pinned.get(canonicalize_name(package))
            if found is not None and found != version:
                problems.append(
                    f"images/{name}/requirements.txt: {package}=={found}, but the platform needs {version}"
                )
    return problems


def _references(text: str, images: ImagesFile) -> list[tuple[int, str, str]]:
    """(line, name, tag) of every Parhelion image reference in ``text``."""
    pattern = re.compile(rf"{re.escape(images.registry)}/parhelion-([a-z][a-z0-9-]*):([A-Za-z0-9._-]+)")
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        found += [(number, m.group(1), m.group(2)) for m in pattern.finditer(line)]
    return found


def reference_problems(images: ImagesFile, files: list[Path]) -> list[str]:
    problems = []
    for path in files:
        shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        for line, name, tag in _references(path.read_text(), images):
            if name not in images.images:
                problems.append(
                    f"{shown}:{line}: unknown image parhelion-{name} (images: {', '.join(images.images)})"
                )
            elif tag != images.images[name].tag:
                problems.append(
                    f"{shown}:{line}: parhelion-{name}:{tag}, "
                    f"but images/images.yaml says {images.images[name].tag}"
                )
    return problems


def gateway_problems(images: ImagesFile, files: list[Path]) -> list[str]:
    from platform_tools.config import ConfigError, load_platform

    problems = []
    for path in files:
        try:
            platform = load_platform(path)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        reference = platform.dask_image
        if not _references(reference, images):
            problems.append(
                f"{path.name}: dask_gateway image {reference} is not a Parhelion image of images.yaml"
            )
    return problems


def chart_files() -> list[Path]:
    if not CHART_DIR.is_dir():
        return []
    return sorted(p for p in CHART_DIR.rglob("*") if p.suffix in {".yaml", ".yml", ".tpl"} and p.is_file())


def consistency_problems(images: ImagesFile, platform_files: list[Path] | None = None) -> list[str]:
    platforms = list(platform_files or PLATFORM_FILES)
    return (
        lock_version_problems(images)
        + reference_problems(images, platforms + chart_files())
        + gateway_problems(images, platforms)
    )
