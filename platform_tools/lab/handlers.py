"""The server's ``parhelion/spend`` route: the user's spend report, for JupyterLab's page.

The page polls it; the handler asks the accounting service with the server's own
``JUPYTERHUB_API_TOKEN`` (whose role allows ``access:services!service=accounting``) for
``JUPYTERHUB_USER`` and nobody else (``clients.spend.fetch_user_report``: no redirects, no
proxies, an answer about another user refused). It takes no arguments, so nothing a page
sends can choose whose report is read, and it is ``@authenticated``: only people let into
this server (its owner, or whom the hub gives access to it) read it.

A failure is an answer, not a traceback: 503 when no accounting service is configured,
502 when it failed, each with ``{"error": sentence}`` for the page to show.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from platform_tools.clients.spend import fetch_user_report
from platform_tools.contract.services import ACCOUNTING_PREFIX, AccountingPath

ROUTE = "parhelion/spend"


def spend_page_path(environ: dict[str, str] | os._Environ) -> str | None:
    """The hub's spend page for this server's user, as a path on the hub's host."""
    user = environ.get("JUPYTERHUB_USER")
    if not user:
        return None
    base = environ.get("JUPYTERHUB_BASE_URL") or "/"
    return url_path_join(base, ACCOUNTING_PREFIX, AccountingPath.spend_page(user))


class SpendHandler(APIHandler):
    # A page polls this every few seconds: that must not count as use, or an idle server's
    # open tab would keep the culler from stopping it (and its spend running).
    _track_activity = False

    @web.authenticated
    async def get(self) -> None:
        answer = await asyncio.to_thread(fetch_user_report, os.environ)
        body = {
            "user": os.environ.get("JUPYTERHUB_USER"),
            "spend_page": spend_page_path(os.environ),
            "fetched_at": datetime.now(UTC).isoformat(),
        }
        self.set_header("Cache-Control", "no-store")
        if answer.report is None:
            self.set_status(answer.status)
            self.finish(json.dumps({**body, "error": answer.problem}))
            return
        self.finish(json.dumps({**body, "report": answer.report}))


def add_handlers(web_app: web.Application) -> None:
    base = web_app.settings["base_url"]
    web_app.add_handlers(".*$", [(url_path_join(base, ROUTE), SpendHandler)])
