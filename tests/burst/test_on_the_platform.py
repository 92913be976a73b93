"""Burst as users run it: in their own server, on a real dask-gateway cluster, within quota."""

from __future__ import annotations

import asyncio

import nbformat
import pytest

from platform_tools.clients.hubclient import HubUser
from tests.platform import REPO_ROOT, outputs_text, run_in_a_users_kernel

pytestmark = pytest.mark.integration

NOTEBOOK = REPO_ROOT / "notebooks" / "sdo-aia-irradiance.ipynb"

SERIAL_VS_BURST = """
import io, s3fs
from astropy.io import fits
from platform_tools.burst import burst_cluster, burst_map
from platform_tools.catalog import CloudCatalog

catalog = CloudCatalog("s3://helio-sample")
files = catalog.query("aia_0094_synthetic", "2024-05-08T00:00Z", "2024-05-08T12:00Z")

def rate(image, header):
    return float(image.mean()) / header["EXPTIME"]

with burst_cluster(10) as cluster:
    note, workers = cluster.note, cluster.workers
    run = burst_map(rate, files, client=cluster.client, progress=False)

fs = s3fs.S3FileSystem()
serial = {}
for url in files.datakey:
    with fits.open(io.BytesIO(fs.cat_file(url))) as hdul:
        serial[url] = float(hdul[1].data.mean()) / hdul[1].header["EXPTIME"]
burst = dict(zip(run.results.datakey, run.results.value))
same = burst.keys() == serial.keys() and all(abs(burst[k] - serial[k]) < 1e-9 for k in serial)
print(note, "|", workers, "|", len(files), "|", same, "|", run.report.cost_usd > 0, "|", len(run.failures))
plan = run.report.plan
print(plan.budget.describe(), "|", plan.cost_usd > 0, "|", str(run.report).startswith(str(plan)))
"""


def test_the_irradiance_notebook_runs_in_a_users_server(local_platform):
    notebook = nbformat.read(NOTEBOOK, as_version=4)

    async def session():
        async with HubUser(local_platform.url, "demo", local_platform.password()) as user:
            await user.login()
            await user.start_server()
            await user.open_lab()
            try:
                return await user.run_notebook(notebook, path="notebooks/sdo-aia-irradiance.ipynb")
            finally:
                await user.stop_server()

    executed = asyncio.run(session())
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    texts = [outputs_text(cell) for cell in code]
    assert "aia_0094_synthetic: 96 files" in texts[1]  # the catalog found the range
    assert "2 workers of 1 cores" in texts[3]
    assert "96 of 96 files in" in texts[3] and "failed files: 0" in texts[3]
    assert "cost $" in texts[3]  # priced by the cost rule on the platform's node
    assert any("image/png" in out.get("data", {}) for out in code[4].outputs)
    assert "brightest: 2024-05-08 20:00:00" in texts[4]  # the flare of the synthetic series


def test_burst_on_the_gateway_equals_a_serial_loop_within_quota(local_platform):
    """Asked for 10 workers; the researchers' quota (4 Dask cores, a 1-core scheduler) fits 3."""
    outputs = run_in_a_users_kernel(local_platform, SERIAL_VS_BURST, timeout=300)
    lines = "".join(output.get("text", "") for output in outputs).strip().splitlines()
    assert lines[0] == "asked for 10 workers; your quota allows 3 | 3 | 36 | True | True | 0"
    # priced before it ran, against what the accounting service says is left of demo's budget
    left, priced, heads = lines[1].split(" | ")
    assert left.startswith("$") and left.endswith(" left of your $25.00 month budget"), left
    assert 24.0 < float(left[1:].split()[0]) <= 25.0 and (priced, heads) == ("True", "True")
