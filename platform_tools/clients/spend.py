"""A user's spend report and what is left of their budget, as the accounting service says.

A burst prices itself before it runs (``burst.price``); the dollars it may spend are what
the accounting service would let it spend: the user's own budget and every group budget
they draw on, whichever has least left. The kernel asks with its server's own token
(``JUPYTERHUB_API_TOKEN``, whose role includes ``access:services!service=accounting``) at
the origin the hub put in ``PARHELION_ACCOUNTING_ADDRESS``. It is a plain synchronous
request on purpose: notebooks call it from a cell, where an event loop is already running.
JupyterLab's spend item asks through the server's extension (``platform_tools.lab``), which
calls ``fetch_user_report`` in a thread: the same request, the same refusals.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from platform_tools.contract.environment import ACCOUNTING_ADDRESS_VARIABLE
from platform_tools.contract.services import AccountingPath, accounting_api
from platform_tools.contract.tokens import authorization


@dataclass(frozen=True)
class BudgetLeft:
    """Dollars left before a cap stops the user's work; ``None`` dollars: no cap applies."""

    usd: float | None
    scope: str  # "your budget", "group researchers's budget", or why it is not known
    known: bool = True

    def describe(self) -> str:
        if not self.known:
            return f"budget not known ({self.scope})"
        if self.usd is None:
            return "no budget caps your spend"
        return f"${self.usd:.2f} left of {self.scope}"


def budget_left_from_report(report: Mapping) -> BudgetLeft:
    """The tightest of the user's own budget and their groups' (the accounting user report)."""
    candidates: list[tuple[float, str]] = []
    own = report.get("budget")
    if own:
        candidates.append(
            (float(own["left_usd"]), f"your ${float(own['usd']):.2f} {own.get('period') or ''} budget")
        )
    for group in report.get("group_totals") or []:
        left = max(0.0, float(group["usd"]) - float(group["spent_usd"]))
        candidates.append((left, f"group {group['group']}'s ${float(group['usd']):.2f} budget"))
    if not candidates:
        return BudgetLeft(None, "no budget")
    usd, scope = min(candidates)
    return BudgetLeft(round(usd, 6), " ".join(scope.split()))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as an HTTP error: urllib would re-send the Authorization header
    to wherever it points (any host), and an answer from elsewhere is not the budget."""

    def redirect_request(self, *args, **kwargs):
        return None


# no proxies from the environment either: the token goes to the hub's proxy and nowhere else
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


@dataclass(frozen=True)
class ReportAnswer:
    """The user's report, or why there is none: ``problem`` is the sentence to show, ``status``
    the HTTP status a web handler answers with (503: no accounting here; 502: it failed)."""

    report: dict | None
    problem: str | None = None
    status: int = 200


def fetch_user_report(environ: Mapping[str, str] | None = None, timeout: float = 10.0) -> ReportAnswer:
    """This server's user's report (``accounting.report.user_report``), asked with the server's
    own token for ``JUPYTERHUB_USER`` only; never raises. No redirect is followed and no proxy
    used (``_OPENER``), and an answer about anyone else is refused."""
    environ = os.environ if environ is None else environ
    origin = environ.get(ACCOUNTING_ADDRESS_VARIABLE)
    user = environ.get("JUPYTERHUB_USER")
    token = environ.get("JUPYTERHUB_API_TOKEN")
    if not origin or not user or not token:
        return ReportAnswer(
            None, f"no accounting service here: {ACCOUNTING_ADDRESS_VARIABLE} is not set", 503
        )
    url = accounting_api(origin, AccountingPath.user(user))
    request = urllib.request.Request(url, headers=authorization(token))
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            report = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return ReportAnswer(None, f"the accounting service answered HTTP {exc.code} at {url}", 502)
    except (OSError, ValueError) as exc:
        return ReportAnswer(None, f"the accounting service did not answer at {url}: {exc}", 502)
    if not isinstance(report, dict) or report.get("user") != user or "budget" not in report:
        return ReportAnswer(None, f"the answer at {url} is not {user}'s spend report", 502)
    return ReportAnswer(report)


def budget_left(environ: Mapping[str, str] | None = None, timeout: float = 10.0) -> BudgetLeft:
    """What is left for this kernel's user; never raises (a plan must not fail over it)."""
    answer = fetch_user_report(environ, timeout)
    if answer.report is None:
        return BudgetLeft(None, answer.problem or "no report", False)
    try:
        return budget_left_from_report(answer.report)
    except (KeyError, TypeError, ValueError) as exc:
        return BudgetLeft(None, f"the spend report has no usable budget: {exc!r}", False)
