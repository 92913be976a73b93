"""Dask in JupyterLab, as a person uses it: a cluster made in a notebook, its dashboard from the
Dask panel, in headless Chromium against the real local platform (hub, gateway, JupyterLab with
dask-labextension and jupyter-server-proxy).

One platform for the module; screenshots of each step are kept (``keep_screenshot``:
dask-lab-*.png among make test's artefacts), also of the step that failed.
"""

from __future__ import annotations

import asyncio
import json

import nbformat
import pytest

from platform_tools.clients.hubclient import HubUser
from platform_tools.contract.environment import (
    DASHBOARD_LINK_VARIABLE,
    LAB_FACTORY_CLASS_VARIABLE,
    LAB_FACTORY_MODULE_VARIABLE,
)
from platform_tools.contract.services import GATEWAY_PREFIX, DashboardPath
from tests.platform import headless_chromium, keep_screenshot, platform_config_text, running_platform

pytestmark = [pytest.mark.integration, pytest.mark.browser]

NOTEBOOK = "dask-lab.ipynb"
# What the person types: a gateway cluster with one worker; the client becomes the kernel's
# default, which the Dask panel's search asks for its dashboard link.
CLUSTER_CELL = (
    "from dask_gateway import Gateway\n"
    "cluster = Gateway().new_cluster()\n"
    "cluster.scale(1)\n"
    "client = cluster.get_client()\n"
    "client.wait_for_workers(1, timeout=120)\n"
    "print('WORKERS', *sorted(client.scheduler_info()['workers']))\n"
    "print('LINK', cluster.dashboard_link)\n"
)
LOCAL_LINK_CELL = (
    "import os, urllib.request\n"
    "from distributed import LocalCluster\n"
    f"print('ENV', os.environ['{DASHBOARD_LINK_VARIABLE}'], os.environ['{LAB_FACTORY_MODULE_VARIABLE}'],"
    f" os.environ['{LAB_FACTORY_CLASS_VARIABLE}'])\n"
    "with LocalCluster(n_workers=1, processes=False, dashboard_address='127.0.0.1:0') as local:\n"
    "    print('LOCAL', local.dashboard_link)\n"
    "    port = local.dashboard_link.split('/proxy/')[1].split('/')[0]\n"
    "    url = os.environ['JUPYTERHUB_SERVICE_URL'].rstrip('/') + f'/proxy/{port}/individual-plots.json'\n"
    "    token = {'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN']}\n"
    "    print('PROXIED', urllib.request.urlopen(urllib.request.Request(url, headers=token)).status)\n"
)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    # eve: a second researcher, who must not see demo's dashboards
    config = platform_config_text(sample_files=4, **{"members: [demo]": "members: [demo, eve]"})
    with running_platform(tmp_path_factory.mktemp("dasklab"), config) as running:
        yield running


def _notebook() -> str:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(CLUSTER_CELL)]
    return nbformat.writes(notebook)


async def _prepare(platform) -> None:
    """The person's server runs and their notebook is in their home (as if they had written it)."""
    async with HubUser(platform.url, "demo", platform.password()) as user:
        await user.login()
        await user.start_server(profile="small")
        await user.open_lab()
        body = {"type": "notebook", "format": "json", "content": json.loads(_notebook())}
        async with user.session.put(
            f"{user.server_url}/api/contents/{NOTEBOOK}", json=body, headers=user._server_headers()
        ) as answer:
            assert answer.status in (200, 201), await answer.text()


def test_a_notebooks_gateway_cluster_opens_its_workers_plot_from_the_dask_panel(platform, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.wait import WebDriverWait

    asyncio.run(_prepare(platform))
    browser = headless_chromium(tmp_path / "chromium")
    step = "login"
    try:
        browser.get(f"{platform.url}/hub/login")
        browser.find_element(By.ID, "username_input").send_keys("demo")
        browser.find_element(By.ID, "password_input").send_keys(platform.password())
        browser.find_element(By.ID, "login_submit").click()
        WebDriverWait(browser, 30).until(lambda b: "/hub/login" not in b.current_url)

        step = "notebook"  # JupyterLab opens the notebook and starts its kernel
        browser.get(f"{platform.url}/user/demo/lab/tree/{NOTEBOOK}")
        editor = WebDriverWait(browser, 120).until(
            lambda b: next(
                (
                    e
                    for e in b.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .cm-content")
                    if e.is_displayed()
                ),
                None,
            )
        )
        WebDriverWait(browser, 120).until(  # the kernel has started (JupyterLab's status bar)
            lambda b: "Idle" in b.find_element(By.CSS_SELECTOR, "#jp-main-statusbar").text
        )
        keep_screenshot(browser, "dask-lab-1-notebook", tmp_path)

        step = "run-cell"  # as a person does: into the cell, Shift+Enter
        editor.click()
        ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
        output = WebDriverWait(browser, 180).until(
            lambda b: next(
                (
                    o.text
                    for o in b.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
                    if "LINK" in o.text
                ),
                None,
            )
        )
        lines = dict(line.split(" ", 1) for line in output.splitlines() if " " in line)
        workers, link = lines["WORKERS"].split(), lines["LINK"].strip()
        # absolute, at the hub's public origin: dask-labextension resolves a root-relative link
        # under the user's server
        assert link.startswith(f"{platform.url}{GATEWAY_PREFIX}/clusters/") and link.endswith("/status"), link
        keep_screenshot(browser, "dask-lab-2-cluster-made", tmp_path)

        step = "dask-panel"  # the Dask tab of the left sidebar, then its search (magnifier)
        browser.find_element(By.CSS_SELECTOR, "li.lm-TabBar-tab[data-id='dask-dashboard-launcher']").click()
        search = WebDriverWait(browser, 30).until(
            lambda b: b.find_element(By.CSS_SELECTOR, "[title='Auto-detect dashboard URL']")
        )
        search.click()
        url_input = browser.find_element(By.CSS_SELECTOR, ".dask-URLInput input")
        WebDriverWait(browser, 60).until(lambda b: url_input.get_attribute("value"))
        dashboard = link.removesuffix("status")  # the panel shows the dashboard's root
        assert url_input.get_attribute("value") == dashboard
        plot = WebDriverWait(browser, 60).until(
            lambda b: next(
                (
                    button
                    for button in b.find_elements(By.CSS_SELECTOR, ".dask-DashboardListing-item button")
                    if button.get_attribute("value") == "Workers" and button.is_enabled()
                ),
                None,
            )
        )
        keep_screenshot(browser, "dask-lab-3-dask-panel", tmp_path)

        step = "workers-plot"  # a JupyterLab tab with the plot, through the gateway's proxy
        plot.click()
        frame = WebDriverWait(browser, 30).until(
            lambda b: b.find_element(By.CSS_SELECTOR, ".dask-DaskDashboard-widget iframe")
        )
        source = frame.get_attribute("src")
        assert source.split("?")[0].rstrip("/").endswith(dashboard + "individual-workers")
        browser.switch_to.frame(frame)
        shown = WebDriverWait(browser, 60).until(
            lambda b: (
                all(w.split("://")[-1] in b.find_element(By.TAG_NAME, "body").text for w in workers)
                and b.find_element(By.TAG_NAME, "body").text
            )
        )
        # served through Parhelion's gate: the browser holds its dashboard session (the hub's
        # OAuth, done inside the plot's frame with no prompt); the plot's content came over
        # Bokeh's websocket through it
        assert DashboardPath.COOKIE in {cookie["name"] for cookie in browser.get_cookies()}
        browser.switch_to.default_content()
        shot = keep_screenshot(browser, "dask-lab-4-workers-plot", tmp_path)
        assert all(w.split("://")[-1] in shown for w in workers)
    except Exception:
        browser.switch_to.default_content()
        keep_screenshot(browser, f"dask-lab-failed-at-{step}", tmp_path)
        raise
    finally:
        browser.quit()
    assert shot.stat().st_size > 10_000


def test_a_local_clusters_dashboard_is_served_under_the_users_server(platform):
    """``distributed.dashboard.link`` points LocalCluster dashboards at jupyter-server-proxy under
    the person's own server (its login guards it); the panel's "+ NEW" makes gateway clusters."""
    from tests.platform import run_in_a_users_kernel

    outputs = run_in_a_users_kernel(platform, LOCAL_LINK_CELL, timeout=120)
    text = "\n".join(o.get("text", "") for o in outputs)
    env = next(line for line in text.splitlines() if line.startswith("ENV ")).split()[1:]
    assert env == ["{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status", "dask_gateway", "GatewayCluster"]
    local = next(line for line in text.splitlines() if line.startswith("LOCAL ")).split()[1]
    assert local.startswith("/user/demo/proxy/") and local.endswith("/status"), local
    # jupyter-server-proxy serves it under the server, to the server's own credentials
    assert "PROXIED 200" in text


GATED_CELL = (
    "import os, urllib.request\n"
    "from dask_gateway import Gateway\n"
    "cluster = Gateway().new_cluster()\n"
    "cluster.scale(1)\n"
    "cluster.get_client().wait_for_workers(1, timeout=120)\n"
    "token = {'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN']}\n"
    "request = urllib.request.Request(cluster.dashboard_link, headers=token)\n"
    "print('SERVER', urllib.request.urlopen(request).status)\n"
    "print('LINK', cluster.dashboard_link)\n"
)


async def _status(session, url: str, **kwargs) -> tuple[int, str]:
    async with session.get(url, **kwargs) as answer:
        return answer.status, answer.headers.get("Location", "")


def test_only_the_clusters_owner_and_hub_admins_open_its_dashboard(platform):
    """The gate on the gateway's API (gateway/dashboards.py): the owner's browser session (the
    hub's OAuth, silently) and their server's token get the dashboard; another user (browser or
    token) gets 403, an
    anonymous browser is sent to the hub's login, an anonymous websocket or program gets 401; a
    hub admin gets it; only the plots' list, which dask-labextension's server side fetches
    without credentials, is public."""
    import aiohttp

    async def scenario() -> dict:
        seen = {}
        async with HubUser(platform.url, "demo", platform.password()) as demo:
            await demo.login()
            await demo.start_server(profile="small")
            kernel = await demo.start_kernel()
            try:
                outputs = await kernel.execute(GATED_CELL, timeout=180)
                text = "".join(o.get("text", "") for o in outputs)
                seen["server"] = "SERVER 200" in text
                link = text.split("LINK ", 1)[1].split()[0]
                root = link.removesuffix("status")
                seen["owner"] = await _status(demo.session, link)
                async with aiohttp.ClientSession() as nobody:
                    seen["anonymous"] = await _status(nobody, link, allow_redirects=False)
                    seen["anonymous-program"] = await _status(
                        nobody, link, headers={"Authorization": "token nope"}
                    )
                    seen["plots-list"] = await _status(nobody, root + "individual-plots.json")
                    try:
                        async with nobody.ws_connect(root + "individual-workers/ws"):
                            seen["anonymous-ws"] = 101
                    except aiohttp.WSServerHandshakeError as refused:
                        seen["anonymous-ws"] = refused.status
                async with HubUser(platform.url, "eve", platform.password()) as eve:
                    await eve.login()
                    seen["other-user"] = await _status(eve.session, link)
                    # and eve's own hub token, as a program of hers would send it
                    async with eve.session.post(
                        f"{platform.url}/hub/api/users/eve/tokens",
                        json={"note": "dashboard attempt"},
                        headers={"X-XSRFToken": eve._cookie("_xsrf", "/hub") or ""},
                    ) as made:
                        assert made.status == 201, await made.text()
                        eve_token = (await made.json())["token"]
                    async with aiohttp.ClientSession() as program:
                        headers = {"Authorization": f"token {eve_token}"}
                        seen["other-user-token"] = await _status(program, link, headers=headers)
                async with HubUser(platform.url, "admin", platform.password("admin")) as admin:
                    await admin.login()
                    seen["admin"] = await _status(admin.session, link)
                seen["cookie-path"] = [
                    cookie["path"] for cookie in demo.session.cookie_jar if cookie.key == DashboardPath.COOKIE
                ]
            finally:
                await kernel.shutdown()
                await demo.stop_server()
        return seen

    seen = asyncio.run(scenario())
    assert seen["server"]  # the server's own token (dask-labextension's server side, a script)
    assert seen["owner"][0] == 200
    assert seen["anonymous"][0] == 302 and seen["anonymous"][1].startswith("/hub/api/oauth2/authorize?")
    assert seen["anonymous-program"][0] == 401
    assert seen["anonymous-ws"] == 401
    assert seen["plots-list"][0] == 200
    assert seen["other-user"][0] == 403
    assert seen["other-user-token"][0] == 403
    assert seen["admin"][0] == 200
    assert seen["cookie-path"] == [f"{GATEWAY_PREFIX}/clusters/"]
