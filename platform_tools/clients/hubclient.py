"""Drive a JupyterHub the way a person in a browser does.

Log in through the login form (its ``_xsrf`` cookie first, then the POST) or, with
``oauth_form``, through an identity provider whose authorization page is a form (the hub
sends the browser there, the person fills it in, the provider sends them back), start the
server from /hub/spawn, wait on the spawn-pending page, open JupyterLab (following
the OAuth redirects that give the browser its server cookie), start a kernel and run a
notebook's cells in it over the kernel websocket, through the hub's proxy. Used by the
integration tests and by class load tests, against a local or remote hub.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import nbformat
from nbformat.v4 import output_from_msg


class HubError(RuntimeError):
    """Something a person would have seen go wrong, with what the hub said."""


class CellError(HubError):
    """A notebook cell raised; carries its index and the traceback text."""

    def __init__(self, index: int, ename: str, evalue: str, traceback: list[str]):
        self.index, self.ename, self.evalue, self.traceback = index, ename, evalue, traceback
        super().__init__(f"cell {index} raised {ename}: {evalue}\n" + "\n".join(traceback))


@dataclass
class Timings:
    """Seconds each step took, for load tests and benchmarks."""

    steps: dict[str, float] = field(default_factory=dict)

    def record(self, step: str, since: float) -> None:
        self.steps[step] = time.monotonic() - since


class HubUser:
    """One person's browser session with a hub (``async with HubUser(...) as user``)."""

    def __init__(
        self,
        hub_url: str,
        username: str,
        password: str = "",
        *,
        timeout: float = 30.0,
        oauth_form: dict[str, str] | None = None,
    ):
        self.hub_url = hub_url.rstrip("/")
        self.username = username
        self.password = password
        self.oauth_form = oauth_form
        self.timings = Timings()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HubUser:
        # unsafe=True: keep cookies for IP-address hosts such as 127.0.0.1.
        self._session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=self._timeout
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use HubUser in `async with`")
        return self._session

    @property
    def server_url(self) -> str:
        return f"{self.hub_url}/user/{quote(self.username)}"

    def _cookie(self, name: str, path_prefix: str = "") -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == name and cookie["path"].startswith(path_prefix or "/"):
                return cookie.value
        return None

    # ------------------------------------------------------------------- hub

    async def login(self) -> None:
        if self.oauth_form is not None:
            return await self._login_through_provider(self.oauth_form)
        started = time.monotonic()
        async with self.session.get(f"{self.hub_url}/hub/login") as page:
            if page.status != 200:
                raise HubError(f"login page: HTTP {page.status}")
        xsrf = self._cookie("_xsrf", "/hub")
        form = {"username": self.username, "password": self.password}
        if xsrf:
            form["_xsrf"] = xsrf
        async with self.session.post(
            f"{self.hub_url}/hub/login?next=", data=form, allow_redirects=False
        ) as answer:
            if answer.status not in (301, 302, 303):
                text = await answer.text()
                reason = "invalid username or password" if "Invalid" in text else f"HTTP {answer.status}"
                raise HubError(f"login as {self.username} failed: {reason}")
        self.timings.record("login", started)

    async def _login_through_provider(self, form: dict[str, str]) -> None:
        started = time.monotonic()
        async with self.session.get(f"{self.hub_url}/hub/oauth_login?next=") as page:
            if page.status != 200 or str(page.url).startswith(self.hub_url):
                raise HubError(
                    f"the hub did not send {self.username} to an identity provider (HTTP {page.status})"
                )
            authorize = str(page.url)
        async with self.session.post(authorize, data=form) as answer:
            if answer.status != 200 or not str(answer.url).startswith(self.hub_url):
                raise HubError(
                    f"login as {self.username} through {authorize.split('?')[0]} failed: HTTP {answer.status}"
                )
        self.timings.record("login", started)

    async def start_server(self, timeout: float = 300.0, profile: str | None = None) -> None:
        """Start the default server as the Start button does, and wait until it is up.

        Where the hub shows a profile form, ``profile`` is chosen (default: the one the
        form preselects) and the form is submitted, as a person would.
        """
        started = time.monotonic()
        spawn_url = f"{self.hub_url}/hub/spawn/{quote(self.username)}"
        async with self.session.get(spawn_url) as answer:
            page = await answer.text()
            if answer.status >= 400:
                raise HubError(f"spawn: HTTP {answer.status}: {_page_message(page)}")
        if 'id="spawn_form"' in page:
            choice = profile or _checked_profile(page)
            form = {"profile": choice or "", "_xsrf": self._cookie("_xsrf", "/hub") or ""}
            async with self.session.post(spawn_url, data=form) as answer:
                page = await answer.text()
                if answer.status >= 400 or 'id="spawn_form"' in page:  # the form again: an error
                    raise HubError(f"spawn: HTTP {answer.status}: {_page_message(page)}")
        deadline = time.monotonic() + timeout
        # Wait as the spawn-pending page does, on the hub's progress stream: one connection that
        # the hub writes to, where polling the user model 5 times a second for each of 80
        # students waiting in the spawn line kept the hub's CPU busy answering them.
        event = await self.follow_progress(timeout)
        if event and event.get("failed"):
            raise HubError(f"the server of {self.username} did not start: {event.get('message')}")
        while time.monotonic() < deadline:
            model = await self.user_model()
            server = (model.get("servers") or {}).get("")
            if not server:
                raise HubError(f"the server of {self.username} did not start: {await self.spawn_failure()}")
            if server.get("ready"):
                self.timings.record("spawn", started)
                return
            await asyncio.sleep(1.0)
        raise HubError(f"the server of {self.username} was not ready after {timeout:.0f} s")

    async def follow_progress(self, timeout: float) -> dict[str, Any] | None:
        """The default server's progress events until it is ready or failed (or the stream
        ends, or ``timeout``): the last event, or None where there is no stream."""
        headers = {"X-XSRFToken": self._cookie("_xsrf", "/hub") or "", "Accept": "text/event-stream"}
        url = f"{self.hub_url}/hub/api/users/{quote(self.username)}/server/progress"
        last = None
        try:
            async with self.session.get(
                url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as answer:
                if answer.status != 200:
                    return None
                async for raw in answer.content:
                    line = raw.decode(errors="replace").strip()
                    if line.startswith("data:"):
                        last = json.loads(line[5:])
                        if last.get("ready") or last.get("failed"):
                            return last
        except (aiohttp.ClientError, TimeoutError, ValueError):
            pass  # the model, polled, decides
        return last

    async def spawn_failure(self) -> str:
        """Why a start failed, as the hub's progress stream says it (the page a person watches
        while a server starts); else what the spawn-pending page says."""
        headers = {"X-XSRFToken": self._cookie("_xsrf", "/hub") or "", "Accept": "text/event-stream"}
        url = f"{self.hub_url}/hub/api/users/{quote(self.username)}/server/progress"
        try:
            async with self.session.get(url, headers=headers) as answer:
                if answer.status == 200:
                    for line in (await answer.text()).splitlines():
                        if line.startswith("data:"):
                            event = json.loads(line[5:])
                            if event.get("failed"):
                                return event.get("message") or "the spawn failed"
        except (aiohttp.ClientError, ValueError):
            pass  # fall back to the page
        async with self.session.get(f"{self.hub_url}/hub/spawn-pending/{quote(self.username)}") as answer:
            return _page_message(await answer.text())

    async def user_model(self) -> dict[str, Any]:
        """The hub's model of this user, via the REST API with the browser's cookie."""
        headers = {"X-XSRFToken": self._cookie("_xsrf", "/hub") or ""}
        async with self.session.get(
            f"{self.hub_url}/hub/api/users/{quote(self.username)}", headers=headers
        ) as answer:
            if answer.status != 200:
                raise HubError(f"user model: HTTP {answer.status}")
            return await answer.json()

    async def stop_server(self, timeout: float = 120.0) -> None:
        headers = {"X-XSRFToken": self._cookie("_xsrf", "/hub") or ""}
        async with self.session.delete(
            f"{self.hub_url}/hub/api/users/{quote(self.username)}/server", headers=headers
        ) as answer:
            if answer.status not in (202, 204):
                raise HubError(f"stop server: HTTP {answer.status}: {await answer.text()}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not (await self.user_model()).get("servers"):
                return
            await asyncio.sleep(0.5)
        raise HubError(f"the server of {self.username} did not stop within {timeout:.0f} s")

    # ----------------------------------------------------------- the server

    async def open_lab(self) -> str:
        """GET JupyterLab as a browser does (OAuth redirects included); the page HTML."""
        started = time.monotonic()
        async with self.session.get(f"{self.server_url}/lab") as answer:
            text = await answer.text()
            if answer.status != 200 or "JupyterLab" not in text:
                raise HubError(f"JupyterLab did not open: HTTP {answer.status} at {answer.url}")
        self.timings.record("lab", started)
        return text

    def _server_headers(self) -> dict[str, str]:
        return {"X-XSRFToken": self._cookie("_xsrf", f"/user/{self.username}") or ""}

    async def start_kernel(self, path: str = "", kernel: str = "python3") -> Kernel:
        if not self._cookie("_xsrf", f"/user/{self.username}"):
            await self.open_lab()  # a person starts kernels from JupyterLab, which sets it
        body = {"name": kernel, "path": path}
        async with self.session.post(
            f"{self.server_url}/api/kernels", json=body, headers=self._server_headers()
        ) as answer:
            if answer.status != 201:
                raise HubError(f"start kernel: HTTP {answer.status}: {await answer.text()}")
            model = await answer.json()
        ws_url = self.server_url.replace("http", "ws", 1) + f"/api/kernels/{model['id']}/channels"
        socket = await self.session.ws_connect(ws_url, headers=self._server_headers(), max_msg_size=0)
        return Kernel(self, model["id"], socket)

    async def run_notebook(
        self, notebook: nbformat.NotebookNode, path: str = "", cell_timeout: float = 600.0
    ) -> nbformat.NotebookNode:
        """Execute every code cell in a new kernel of the user's server; stop at the first error."""
        started = time.monotonic()
        kernel = await self.start_kernel(path=path)
        try:
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                cell.outputs = await kernel.execute(cell.source, index=index, timeout=cell_timeout)
        finally:
            await kernel.shutdown()
        self.timings.record("notebook", started)
        return notebook


class Kernel:
    """A kernel of the user's server, spoken to over its websocket (Jupyter protocol 5.3)."""

    def __init__(self, user: HubUser, kernel_id: str, socket: aiohttp.ClientWebSocketResponse):
        self.user = user
        self.id = kernel_id
        self.socket = socket
        self.session_id = uuid.uuid4().hex

    def _message(self, msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
        return {
            "header": {
                "msg_id": uuid.uuid4().hex,
                "username": self.user.username,
                "session": self.session_id,
                "msg_type": msg_type,
                "version": "5.3",
                "date": dt.datetime.now(dt.UTC).isoformat(),
            },
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": "shell",
            "buffers": [],
        }

    async def execute(self, code: str, *, index: int = 0, timeout: float = 600.0) -> list[Any]:
        """Run ``code``; its outputs as nbformat outputs. Raises CellError if it raised."""
        request = self._message(
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )
        msg_id = request["header"]["msg_id"]
        await self.socket.send_str(json.dumps(request))
        outputs: list[Any] = []
        reply: dict[str, Any] | None = None
        idle = False
        deadline = time.monotonic() + timeout
        while reply is None or not idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HubError(f"cell {index} did not finish within {timeout:.0f} s")
            frame = await self.socket.receive(timeout=remaining)
            if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                raise HubError(f"the kernel connection closed during cell {index}")
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["header"]["msg_type"]
            if message.get("channel") == "shell" and kind == "execute_reply":
                reply = message["content"]
            elif kind == "status":
                idle = message["content"]["execution_state"] == "idle"
            elif kind in ("stream", "display_data", "execute_result", "error"):
                outputs.append(output_from_msg(message))
        if reply.get("status") == "error":
            raise CellError(
                index, reply.get("ename", "Error"), reply.get("evalue", ""), reply.get("traceback", [])
            )
        return outputs

    async def shutdown(self) -> None:
        await self.socket.close()
        async with self.user.session.delete(
            f"{self.user.server_url}/api/kernels/{self.id}", headers=self.user._server_headers()
        ):
            pass


def _checked_profile(html: str) -> str | None:
    match = re.search(r'name="profile" value="([^"]+)" checked', html)
    return match.group(1) if match else None


def _page_message(html: str) -> str:
    """The error text of a hub page (spawn form error, error page), without the HTML."""
    for pattern in (
        r'class="spawn-error-msg[^"]*">(.*?)</p>',
        r'<div class="error">(.*?)</div>',
        r'<p class="lead">(.*?)</p>',
        r"<p>(.*?)</p>",
    ):
        match = re.search(pattern, html, re.S)
        if match:
            return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())[:300]
