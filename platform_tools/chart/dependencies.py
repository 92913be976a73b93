"""The chart's dependencies (zero-to-jupyterhub, dask-gateway): the REAL upstream charts.

``helm template`` needs every dependency Chart.yaml lists in ``charts/``. Where the chart
repositories are reachable, ``helm dependency build`` fetches them (and checks Chart.lock);
where they are not (this project's machines), the packaged upstream releases are taken from
a folder of ``<name>-<version>.tgz`` files: ``PARHELION_DEPENDENCY_CHARTS``, or the
``shared/charts`` folder beside the repository. Nothing here ever substitutes an empty chart.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from platform_tools.chart.helm import Helm, HelmError

REPO_ROOT = Path(__file__).resolve().parents[2]
VARIABLE = "PARHELION_DEPENDENCY_CHARTS"


class DependencyError(RuntimeError):
    """A dependency chart could be neither found nor fetched; says which and where it looked."""


def dependencies(chart: Path) -> list[tuple[str, str]]:
    """(name, version) of every dependency in the chart's Chart.yaml."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    return [(dep["name"], str(dep["version"])) for dep in meta.get("dependencies") or []]


def offline_folders() -> list[Path]:
    """Where packaged dependency charts are looked for, in order."""
    folders = [Path(os.environ[VARIABLE])] if os.environ.get(VARIABLE) else []
    return [*folders, REPO_ROOT.parent / "shared" / "charts"]


def provide(chart: Path, helm: Helm, folders: list[Path] | None = None) -> list[Path]:
    """Put every dependency in ``chart/charts``: from the folders when packaged there, else by
    ``helm dependency build``. Returns the archives in place."""
    folders = offline_folders() if folders is None else folders
    target = chart / "charts"
    target.mkdir(exist_ok=True)
    missing = []
    for name, version in dependencies(chart):
        archive = f"{name}-{version}.tgz"
        found = next((folder / archive for folder in folders if (folder / archive).is_file()), None)
        if found is not None:
            shutil.copyfile(found, target / archive)
        elif not (target / archive).is_file():
            missing.append(archive)
    if missing:
        try:
            helm.run("dependency", "build", str(chart))
        except HelmError as error:
            where = ", ".join(str(folder) for folder in folders) or "(no folder)"
            raise DependencyError(
                f"{', '.join(missing)}: not in {where} and `helm dependency build` failed: {error}"
            ) from None
    return sorted(target.glob("*.tgz"))
