"""The chart as tests render it: a private copy with its REAL dependency charts.

zero-to-jupyterhub and dask-gateway come from ``helm dependency build`` where their
repositories are reachable, else from the packaged upstream releases in ../shared/charts
(or ``PARHELION_DEPENDENCY_CHARTS``): ``platform_tools.chart.dependencies``. Empty stand-in
charts once hid four crash-level bugs of the EKS path; none is used.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from platform_tools.chart.dependencies import provide
from platform_tools.chart.helm import Helm, install_helm
from tests.platform import REPO_ROOT

CHART = REPO_ROOT / "helm" / "parhelion"
#: What every admin sets before installing: an identity provider and HTTPS (the chart refuses
#: its defaults alone). Renders "of the defaults" are renders of the defaults with this.
LOGIN = Path(__file__).parent / "login.yaml"


def with_login(values=()) -> list[Path]:
    """``values``, or the defaults plus the required login when none are given."""
    return list(values) or [LOGIN]


def helm_in(home: Path) -> Helm:
    """helm with a private home, rendering through Parhelion's post-renderer as deploys do."""
    install_helm()
    return Helm(home).harden()


def rendered_objects(tmp_path_factory) -> list[dict]:
    """The default values rendered, as a list of objects (a private helm home and chart copy)."""
    import yaml

    helm = helm_in(tmp_path_factory.mktemp("helm"))
    chart = chart_copy(tmp_path_factory.mktemp("chart"), helm)
    return [d for d in yaml.safe_load_all(helm.template(chart, [LOGIN])) if d]


def chart_copy(into: Path, helm: Helm) -> Path:
    """A copy of helm/parhelion under ``into`` with its dependencies in charts/."""
    copy = into / "parhelion"
    shutil.copytree(CHART, copy, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    provide(copy, helm)
    return copy


#: What the admin creates before installing (helm/README.md): the identity provider's client secret.
OAUTH_SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "parhelion-oauth", "namespace": "parhelion"},
    "stringData": {"client-secret": "test-client-secret"},
}
