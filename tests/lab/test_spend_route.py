"""The server extension's ``parhelion/spend`` route, in a real Jupyter server.

The route holds the server's token and asks the accounting service with it, so what it
must not do is the point: ask for anyone but the server's user, follow a redirect with
the token, answer without a login, turn a failure into a traceback, or keep an idle
server alive by being polled. The accounting service here is a small HTTP server that
records what it was asked (the real one is in tests/lab/test_lab_in_chromium.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.platform import REPO_ROOT, stop_process, wait_for_http

pytestmark = pytest.mark.integration  # a real Jupyter server (no platform)

SERVER_TOKEN = "server-login-token"  # what a person's browser is let in with (here: a header)
HUB_TOKEN = "the-servers-own-hub-token"  # JUPYTERHUB_API_TOKEN: only ever sent to accounting


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Recorder(ThreadingHTTPServer):
    """An HTTP server answering as ``self.mode`` says and recording every request."""

    def __init__(self):
        self.mode = "report"
        self.requests: list[tuple[str, str | None]] = []
        self.location = ""
        super().__init__(("127.0.0.1", 0), _Answer)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        server: Recorder = self.server  # type: ignore[assignment]
        server.requests.append((self.path, self.headers.get("Authorization")))
        if server.mode == "redirect":
            self.send_response(302)
            self.send_header("Location", server.location)
            self.end_headers()
            return
        user = "bob" if server.mode == "someone-else" else self.path.rsplit("/", 1)[-1]
        body = json.dumps({"user": user, "budget": {"usd": 5.0, "spent_usd": 1.23}, "running": []})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def jupyter_server(root: Path, accounting_origin: str | None):
    """A Jupyter server with the extension enabled, as the hub would start ana's."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PARHELION"))}
    env.update(
        HOME=str(root),
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_DATA_DIR=str(root / "data"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        JUPYTERHUB_USER="ana",
        JUPYTERHUB_API_TOKEN=HUB_TOKEN,
        JUPYTERHUB_BASE_URL="/",
        PYTHONPATH=str(REPO_ROOT),
    )
    if accounting_origin:
        env["PARHELION_ACCOUNTING_ADDRESS"] = accounting_origin
    argv = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        f"--IdentityProvider.token={SERVER_TOKEN}",
        '--ServerApp.jpserver_extensions={"platform_tools.lab": True}',
        f"--ServerApp.root_dir={root}",
        "--allow-root",
    ]
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(argv, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/api/status", process, "the Jupyter server", 60)
        yield url
    finally:
        stop_process(process)
        log.close()


def get(url: str, token: str | None = SERVER_TOKEN) -> tuple[int, dict]:
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=20) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"text": text}


@pytest.fixture(scope="module")
def accounting():
    server = Recorder()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, accounting):
    with jupyter_server(tmp_path_factory.mktemp("lab"), accounting.origin) as url:
        yield url


@pytest.fixture(autouse=True)
def fresh(accounting):
    accounting.mode = "report"
    accounting.requests.clear()


def test_the_route_asks_for_the_servers_user_with_its_token_and_for_nobody_else(lab, accounting):
    status, body = get(f"{lab}/parhelion/spend?user=bob&username=bob")
    assert status == 200, body
    assert body["user"] == "ana" and body["report"]["user"] == "ana"
    assert body["spend_page"] == "/services/accounting/users/ana"
    assert accounting.requests == [("/services/accounting/api/v1/users/ana", f"token {HUB_TOKEN}")]
    status, _ = get(f"{lab}/parhelion/spend/bob")
    assert status == 404
    assert len(accounting.requests) == 1  # no second question, and none about bob
    assert HUB_TOKEN not in json.dumps(body)


def test_an_answer_about_someone_else_is_refused(lab, accounting):
    accounting.mode = "someone-else"
    status, body = get(f"{lab}/parhelion/spend")
    assert status == 502
    assert "report" not in body and "is not ana's spend report" in body["error"]


def test_a_redirect_is_not_followed_and_the_token_goes_nowhere_else(lab, accounting):
    elsewhere = Recorder()
    try:
        accounting.mode = "redirect"
        accounting.location = f"{elsewhere.origin}/services/accounting/api/v1/users/ana"
        status, body = get(f"{lab}/parhelion/spend")
    finally:
        elsewhere.shutdown()
        elsewhere.server_close()
    assert status == 502 and "answered HTTP 302" in body["error"], body
    assert elsewhere.requests == []  # not asked at all, so the token never went there
    assert HUB_TOKEN not in json.dumps(body)


def test_without_a_login_the_route_answers_nothing(lab, accounting):
    status, body = get(f"{lab}/parhelion/spend", token=None)
    assert status == 403 and "report" not in body
    status, _ = get(f"{lab}/parhelion/spend", token="a-guess")
    assert status == 403
    assert accounting.requests == []


def test_polling_the_route_does_not_count_as_use(lab):
    """Else a tab left open would keep the idle culler from stopping the server."""
    get(f"{lab}/api/contents")  # a request that is use
    _, before = get(f"{lab}/api/status")
    time.sleep(1.1)
    for _ in range(3):
        assert get(f"{lab}/parhelion/spend")[0] == 200
    _, after = get(f"{lab}/api/status")
    assert after["last_activity"] == before["last_activity"]
    get(f"{lab}/api/contents")
    _, used = get(f"{lab}/api/status")
    assert used["last_activity"] > before["last_activity"]  # the check can see use


def test_accounting_down_is_an_error_sentence_not_a_traceback(tmp_path):
    closed = free_port()  # nothing listens there
    with jupyter_server(tmp_path, f"http://127.0.0.1:{closed}") as url:
        status, body = get(f"{url}/parhelion/spend")
    assert status == 502, body
    assert body["error"].startswith(f"the accounting service did not answer at http://127.0.0.1:{closed}/")
    assert body["user"] == "ana" and "report" not in body
    assert "Traceback" not in json.dumps(body) and HUB_TOKEN not in json.dumps(body)
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_without_an_accounting_service_the_answer_says_so():
    """A server started outside Parhelion's hub (no address, user or token): a 503 sentence,
    and no request made anywhere."""
    from platform_tools.clients.spend import fetch_user_report

    answer = fetch_user_report({"JUPYTERHUB_USER": "ana", "JUPYTERHUB_API_TOKEN": HUB_TOKEN})
    assert (answer.report, answer.status) == (None, 503)
    assert answer.problem == "no accounting service here: PARHELION_ACCOUNTING_ADDRESS is not set"
