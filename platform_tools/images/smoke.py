"""Smoke checks of an image's environment: run inside the built image, or in a venv of its lock.

    python -m platform_tools.images.smoke --image helio --expect '{"dask": "2026.8.0", ...}'

Checks, as each image needs: its key imports; a tile-compressed FITS file written and read
back from memory (and as a sunpy Map in helio); a Dask LocalCluster computing; and the
versions that must agree across images (dask, distributed, dask-gateway with the gateway
server's, jupyterhub with the hub's) equal to those expected; in the notebook images, that
JupyterLab finds Parhelion's extension (the wheel's prebuilt ``@parhelion/lab``) enabled and
the server extension behind it enabled and loadable, and that JupyterLab starts with the Dask
panel (dask-labextension) and jupyter-server-proxy loaded and answering. Prints one line per check and
exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import io
import json
import subprocess
import sys
import traceback
from collections.abc import Callable

IMPORTS = {
    "hub": [
        "jupyterhub.app",
        "tornado.curl_httpclient",  # zero-to-jupyterhub configures the curl client (pycurl)
        "kubespawner",
        "oauthenticator",
        "jupyterhub_idle_culler",
        "dask_gateway_server.app",
        "kubernetes_asyncio",
        "sqlalchemy",
        "alembic",
        "psycopg",
        "prometheus_client",
        "platform_tools.services.accounting.factory",
        "platform_tools.gateway.limits",
        "platform_tools.hub.spawn",
    ],
    "base": [
        "jupyterlab",
        "jupyterhub.singleuser",
        "ipykernel",
        "ipywidgets",
        "dask",
        "distributed",
        "dask_gateway",
        "s3fs",
        "astropy.io.fits",
        "pyarrow",
        "platform_tools.burst",
        "platform_tools.catalog",
    ],
    "helio": ["sunpy.map", "aiapy", "xarray", "matplotlib", "reproject", "scipy"],
}
VERSIONED = ("dask", "distributed", "dask-gateway", "dask-gateway-server", "jupyterhub")


def modules_for(image: str) -> list[str]:
    return IMPORTS["base"] + IMPORTS["helio"] if image == "helio" else IMPORTS[image]


def check_imports(image: str) -> str:
    for module in modules_for(image):
        importlib.import_module(module)
    return f"{len(modules_for(image))} modules import"


def check_fits(image: str) -> str:
    import numpy as np
    from astropy.io import fits

    from platform_tools.burst.worker import decode_image

    pixels = (np.arange(128 * 128, dtype=np.int16) % 4000).reshape(128, 128)
    header = fits.Header([("DATE-OBS", "2024-05-08T00:00:00.000"), ("EXPTIME", 2.9), ("WAVELNTH", 94)])
    out = io.BytesIO()
    hdu = fits.CompImageHDU(pixels, header=header, compression_type="RICE_1", tile_shape=(64, 64))
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out)
    image_data, read_header = decode_image(out.getvalue())
    assert (image_data == pixels).all() and read_header["EXPTIME"] == 2.9
    from platform_tools.burst import rice

    with fits.open(io.BytesIO(out.getvalue())) as hdul:  # AIA's files take the fast RICE decoder
        assert rice.decode(hdul[1], out.getvalue()) is not None, "imagecodecs' Rice decoder is missing"
    if image == "helio":
        import sunpy.map

        read_header.update(
            {"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec"}
        )
        read_header.update({"CDELT1": 2.4, "CDELT2": 2.4, "TELESCOP": "SDO/AIA", "INSTRUME": "AIA_4"})
        read_header["WAVEUNIT"] = "angstrom"
        solar = sunpy.map.Map(image_data, read_header)
        width = solar.dimensions.x.value
        return f"RICE tile-compressed FITS read from memory; sunpy map of {width:.0f} pixels wide"
    return "RICE tile-compressed FITS read from memory"


def check_dask(image: str) -> str:
    import dask.array as da
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        total = client.compute(da.ones((1000, 1000), chunks=250).sum()).result()
    assert total == 1_000_000
    return "a LocalCluster computed a 16-chunk sum"


def check_lab(image: str) -> str:
    """JupyterLab lists ``@parhelion/lab`` enabled and OK, and jupyter_server enables and can
    load ``platform_tools.lab`` (its spend route), from where the wheel put them."""
    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.extension.config import ExtensionConfigManager
    from jupyter_server.extension.manager import ExtensionPackage

    listed = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = next((x for x in (listed.stdout + listed.stderr).splitlines() if "@parhelion/lab" in x), "")
    assert "enabled" in line and "OK" in line, f"jupyter labextension list: {line or 'no @parhelion/lab'}"
    enabled = ExtensionConfigManager(read_config_path=jupyter_config_path()).get_jpserver_extensions()
    assert enabled.get("platform_tools.lab"), f"platform_tools.lab is not enabled: {enabled}"
    assert ExtensionPackage(name="platform_tools.lab", enabled=True).validate(), (
        "platform_tools.lab does not load"
    )
    return f"{' '.join(line.split()[:2])} enabled; server extension platform_tools.lab enabled"


def check_dask_lab(image: str) -> str:
    """JupyterLab starts with the Dask panel and jupyter-server-proxy: the lab page lists the
    panel's extension, its server extension lists clusters, and the server's proxy reaches a
    port of the server (itself), as a LocalCluster's dashboard link does."""
    import os
    import socket
    import tempfile
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = os.urandom(16).hex()
    with tempfile.TemporaryDirectory() as root:
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": root, "JUPYTER_CONFIG_DIR": os.path.join(root, "config")}
        argv = [sys.executable, "-m", "jupyterlab", f"--port={port}", "--ip=127.0.0.1", "--no-browser"]
        argv += [f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}"]
        argv += ["--allow-root"] if os.geteuid() == 0 else []
        log = open(os.path.join(root, "lab.log"), "w+")  # noqa: SIM115 (closed below, read on failure)
        server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"

        def get(path: str) -> str:
            request = urllib.request.Request(base + path, headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.read().decode()

        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    get("/api/status")
                    break
                except OSError as exc:
                    if server.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise AssertionError(f"JupyterLab did not start: {log.read()[-2000:]}") from exc
                    time.sleep(0.5)
            page = get("/lab")
            assert '"dask-labextension"' in page, "the lab page lists no Dask panel"
            clusters = json.loads(get("/dask/clusters"))
            assert clusters == [], clusters
            proxied = json.loads(get(f"/proxy/{port}/api/status"))
            assert "started" in proxied, proxied
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
    return "JupyterLab with the Dask panel; its clusters API and jupyter-server-proxy answer"


def check_materials() -> str:
    """What a class's materials need in a notebook image: the pod's postStart hook runs
    ``timeout ... gitpuller`` (nbgitpuller), which runs ``git``."""
    import shutil
    from pathlib import Path

    missing = [tool for tool in ("git", "timeout") if shutil.which(tool) is None]
    gitpuller = shutil.which("gitpuller") or (Path(sys.executable).parent / "gitpuller")
    if not Path(gitpuller).exists():
        missing.append("gitpuller")
    assert not missing, f"not on the PATH: {', '.join(missing)} (class materials cannot be pulled)"
    version = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True).stdout
    return f"{version.strip()}, timeout and gitpuller found"


def check_versions(expected: dict[str, str]) -> str:
    found = {}
    wrong = []
    for name, version in expected.items():
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # not part of this image (e.g. dask in the hub)
        if found[name] != version:
            wrong.append(f"{name} {found[name]} (expected {version})")
    if wrong:
        raise AssertionError("; ".join(wrong))
    return ", ".join(f"{k} {v}" for k, v in sorted(found.items())) or "no versioned packages"


def run(image: str, expected: dict[str, str]) -> int:
    checks: list[tuple[str, Callable[[], str]]] = [("imports", lambda: check_imports(image))]
    if image != "hub":
        checks += [("fits", lambda: check_fits(image)), ("dask", lambda: check_dask(image))]
        checks.append(("lab", lambda: check_lab(image)))
        checks.append(("dask-lab", lambda: check_dask_lab(image)))
        checks.append(("materials", check_materials))
    checks.append(("versions", lambda: check_versions(expected)))
    failed = 0
    for name, check in checks:
        try:
            print(f"ok    {name}: {check()}", flush=True)
        except Exception as exc:  # every check reports; the exit code says if any failed
            failed += 1
            where = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"FAIL  {name}: {type(exc).__name__}: {exc} ({where.filename}:{where.lineno})", flush=True)
    print(f"{image}: {len(checks) - failed} of {len(checks)} checks passed", flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Smoke checks of a Parhelion image's environment.")
    parser.add_argument("--image", required=True, choices=sorted(IMPORTS))
    parser.add_argument("--expect", default="{}", help="JSON {package: version} that must match")
    args = parser.parse_args(argv)
    return run(args.image, json.loads(args.expect))


if __name__ == "__main__":
    sys.exit(main())
