"""The local meter against a real JupyterHub: every active user is metered, past the hub's
page limit (200 by default; here 2, so five users with servers take three pages)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from platform_tools.accounting.local_sources import LocalSources
from platform_tools.config import parse_platform
from platform_tools.pricing.catalog import PriceCatalog
from tests.platform import REPO_ROOT, stop_process, wait_for_http

pytestmark = pytest.mark.integration

PROXY = REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
USERS = [f"student{n}" for n in range(1, 6)]
CONFIG = parse_platform(
    """
name: paged
images: {base: "example.org/base:2026.11.0"}
profiles:
  small: {display_name: Small, cpu_guarantee: 1, cpu_limit: 1, mem_guarantee_gib: 1,
          mem_limit_gib: 2, image: base, price_per_hour_usd: 0.1}
"""
)

# A user's "server": a real process the hub starts and waits for, answering any request. The
# meter reads only the hub's REST API, so what the server is does not matter; a jupyter-server
# each would cost the two cores ~1 s of CPU and 130 MiB apiece.
SERVER = textwrap.dedent(
    """
    import http.server, os, urllib.parse
    url = urllib.parse.urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
        def log_message(self, *args):
            pass
    http.server.HTTPServer((url.hostname, url.port), Answer).serve_forever()
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def paged_hub(tmp_path):
    """A real hub (with its real proxy) whose API pages hold two items at most."""
    token = secrets.token_hex(16)
    port, hub_port, proxy_api = _free_port(), _free_port(), _free_port()
    (tmp_path / "server.py").write_text(SERVER)
    (tmp_path / "jupyterhub_config.py").write_text(
        textwrap.dedent(
            f"""
            c.JupyterHub.ip = "127.0.0.1"
            c.JupyterHub.port = {port}
            c.JupyterHub.hub_ip = "127.0.0.1"
            c.JupyterHub.hub_port = {hub_port}
            c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
            c.ConfigurableHTTPProxy.command = [{str(PROXY)!r}]
            c.JupyterHub.db_url = "sqlite:///{tmp_path}/hub.sqlite"
            c.JupyterHub.cookie_secret_file = "{tmp_path}/cookie_secret"
            c.JupyterHub.api_page_default_limit = 2
            c.JupyterHub.api_page_max_limit = 2
            c.JupyterHub.authenticator_class = "null"  # nobody logs in; the API makes users
            c.JupyterHub.spawner_class = "simple"
            c.Spawner.cmd = [{sys.executable!r}, "{tmp_path}/server.py"]
            c.Spawner.args = []
            c.SimpleLocalProcessSpawner.home_dir_template = "{tmp_path}/homes/{{username}}"
            c.JupyterHub.services = [{{"name": "meter", "api_token": "{token}"}}]
            c.JupyterHub.load_roles = [
                {{"name": "meter", "services": ["meter"],
                  "scopes": ["admin:users", "servers", "list:users", "read:users", "read:servers"]}}
            ]
            """
        )
    )
    env = {**os.environ, "HOME": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    hub = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(tmp_path / "jupyterhub_config.py")],
        cwd=tmp_path,
        env=env,
        stdout=(tmp_path / "hub.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{hub_port}/hub/api"
    try:
        wait_for_http(f"{api}/", hub, "jupyterhub", timeout=60)
        yield api, token
    finally:
        stop_process(hub)


def _call(method: str, url: str, token: str) -> dict:
    request = urllib.request.Request(
        url,
        method=method,
        headers={"Authorization": f"token {token}"},
        data=b"" if method == "POST" else None,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else {}


def test_the_meter_follows_the_hubs_pages(paged_hub, tmp_path):
    api, token = paged_hub
    for user in USERS:
        _call("POST", f"{api}/users/{user}", token)
        _call("POST", f"{api}/users/{user}/server", token)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # every server ready, as the hub sees it
        ready = [
            _call("GET", f"{api}/users/{user}", token)["servers"].get("", {}).get("ready") for user in USERS
        ]
        if all(ready):
            break
        time.sleep(0.5)
    assert all(ready), (tmp_path / "hub.log").read_text()[-3000:]
    # The page limit holds: a plain list stops at two.
    assert len(_call("GET", f"{api}/users?state=active", token)) == 2

    sources = LocalSources(
        hub_api_url=api,
        hub_token=token,
        gateway_url=None,
        accounting_token="",
        homes=lambda config: {},
        catalog=PriceCatalog.load,
        config=lambda: CONFIG,
    )
    observations = asyncio.run(sources.observe())
    assert sorted(o.username for o in observations if o.kind == "server") == USERS
    for user in USERS:
        _call("DELETE", f"{api}/users/{user}/server", token)
