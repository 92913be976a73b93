"""The accounting service's HTTP handlers.

People authenticate with HubOAuth (the hub's login); a user reads only their own spend,
admins read everyone's. The hub and the gateway use the internal token for the checks;
Prometheus uses it for /metrics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import date, timedelta
from typing import Any

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web

from platform_tools.accounting.checks import check_cluster, check_spawn
from platform_tools.accounting.reconcile import BUCKETS
from platform_tools.accounting.report import all_users_rows, rows_csv, user_report
from platform_tools.classes.course import ClassError, class_of, class_spend, report_csv
from platform_tools.contract.services import AccountingPath
from platform_tools.contract.tokens import token_matches
from platform_tools.ledger.store import REPEAT_WINDOW_SECONDS
from platform_tools.services.accounting.reconciling import Reconciler

log = logging.getLogger("parhelion.accounting")


class AccountingHandler(web.RequestHandler):
    @property
    def accounting(self):
        return self.settings["accounting"]

    def config(self):
        return self.accounting.live.current()

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, indent=1))


class InternalHandler(AccountingHandler):
    """For the hub, the gateway and Prometheus: the internal token, nothing else."""

    def prepare(self) -> None:
        if not token_matches(self.request.headers.get("Authorization"), self.accounting.internal_token):
            raise web.HTTPError(403, "the accounting token is required")


class CheckHandler(InternalHandler):
    """The checks read the ledger in a worker thread: the event loop keeps serving the hub's
    other checks meanwhile (a check must answer well inside the hub's 5 s)."""

    async def answer(self, kind: str, check, *args, **more) -> None:
        """Reply with the verdict; a refusal is counted and recorded (repeats counted on one
        row) in the ledger. A refusal that cannot be recorded is still a refusal."""
        accounting = self.accounting
        verdict = await asyncio.to_thread(
            check,
            self.config(),
            accounting.ledger,
            *args,
            accounting.now(),
            accounting.meter_problem(),
            **more,
        )
        if not verdict.allowed:
            accounting.metrics.refusals.labels(kind, verdict.rule).inc()
            try:
                await asyncio.to_thread(
                    accounting.ledger.record_event,
                    self.get_argument("user"),
                    "refuse",
                    verdict.rule,
                    verdict.message,
                    merge_within=REPEAT_WINDOW_SECONDS,
                )
            except Exception as exc:  # e.g. a full disk: the answer matters more than the row
                log.error("could not record a refusal of %s: %s", self.get_argument("user"), exc)
        self.write_json(verdict.as_dict())


class CheckSpawnHandler(CheckHandler):
    async def get(self) -> None:
        user, profile = self.get_argument("user"), self.get_argument("profile", None)
        gauge = self.accounting.storage  # one machine's homes (None on Kubernetes)
        home = None if gauge is None else await asyncio.to_thread(gauge.for_check, self.config(), user)
        await self.answer("server", check_spawn, user, profile, storage=home)


class CheckClusterHandler(CheckHandler):
    async def get(self) -> None:
        await self.answer("cluster", check_cluster, self.get_argument("user"))


class ClassReportHandler(InternalHandler):
    """A class's cost report (CSV: each student's spend over the window, and the total), for
    `parhelion class close --kubernetes`, which cannot reach the ledger itself."""

    async def get(self, name: str) -> None:
        config = self.config()
        try:
            group = class_of(config, name)
        except ClassError as error:
            raise web.HTTPError(404, str(error)) from None
        spend = await asyncio.to_thread(
            class_spend, config, self.accounting.ledger, name, self.accounting.now()
        )
        self.set_header("Content-Type", "text/csv")
        self.finish(report_csv(spend, group.budget.usd))


class MetricsHandler(InternalHandler):
    async def get(self) -> None:
        body = await self.accounting.render_metrics()
        self.set_header("Content-Type", "text/plain; version=0.0.4")
        self.finish(body)


class PersonHandler(HubOAuthenticated, AccountingHandler):
    """A person, logged in through the hub."""

    def person(self) -> dict:
        return self.get_current_user()

    def is_admin(self) -> bool:
        user = self.person()
        return bool(user.get("admin")) or "admin:users" in (user.get("scopes") or [])

    def require_self_or_admin(self, username: str) -> None:
        if username != self.person()["name"] and not self.is_admin():
            raise web.HTTPError(403, "you may only see your own spend")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message
        if self.request.path.startswith(self.accounting.prefix + "api/"):
            self.write_json({"status": status_code, "message": reason}, status_code)
        else:
            self.finish(f"<h1>{status_code}</h1><p>{web.escape.xhtml_escape(reason)}</p>")

    async def report(self, username: str) -> dict:
        """The user's report, read off the event loop; ``?events_before=<id>`` pages events."""
        before = self.get_argument("events_before", None)
        if before is not None and not before.isdigit():
            raise web.HTTPError(400, "events_before must be an event id")
        accounting = self.accounting
        config = self.config()
        gauge = accounting.storage
        return await asyncio.to_thread(
            user_report,
            config,
            accounting.ledger,
            username,
            accounting.now(),
            events_before=int(before) if before else None,
            storage=None if gauge is None else gauge.standing(config, username, gauge.sizes.get(username)),
        )

    async def all_rows(self) -> list[dict]:
        accounting = self.accounting
        return await asyncio.to_thread(all_users_rows, self.config(), accounting.ledger, accounting.now())


class UserApiHandler(PersonHandler):
    @web.authenticated
    async def get(self, username: str) -> None:
        self.require_self_or_admin(username)
        self.write_json(await self.report(username))


class UsersApiHandler(PersonHandler):
    @web.authenticated
    async def get(self) -> None:
        if not self.is_admin():
            raise web.HTTPError(403, "only admins may list every user's spend")
        self.write_json({"users": await self.all_rows()})


class QuotaApiHandler(PersonHandler):
    """Quotas and budgets live in platform.yaml: changing them here is refused to all."""

    @web.authenticated
    def put(self, username: str) -> None:
        if not self.is_admin():
            raise web.HTTPError(403, "you may not change quotas")
        raise web.HTTPError(405, "quotas are changed in platform.yaml (the Ansible quotas play)")

    post = patch = put


class SpendPageHandler(PersonHandler):
    @web.authenticated
    async def get(self, username: str | None = None) -> None:
        username = username or self.person()["name"]
        self.require_self_or_admin(username)
        report = await self.report(username)
        self.render(
            "spend.html",
            report=report,
            chart=daily_chart_svg(report["daily"]),
            prefix=self.accounting.prefix,
            is_admin=self.is_admin(),
        )


class AdminPageHandler(PersonHandler):
    @web.authenticated
    async def get(self) -> None:
        if not self.is_admin():
            raise web.HTTPError(403, "only admins may see every user")
        rows = await self.all_rows()
        sort = self.get_argument("sort", "user")
        if rows and sort in rows[0]:
            rows.sort(key=lambda row: (str(type(row[sort])), row[sort]), reverse=sort != "user")
        groups: dict[str, float] = {}
        for row in rows:
            for group in row["groups"].split():
                groups[group] = groups.get(group, 0.0) + float(row["spent_usd"] or 0)
        bill = await self.reconciliation()
        self.render(
            "admin.html",
            rows=rows,
            groups=groups,
            prefix=self.accounting.prefix,
            sort=sort,
            bill=bill,
            BUCKETS=BUCKETS,
            is_admin=True,
        )

    async def reconciliation(self) -> dict:
        """The section's form, and its answer when the admin asked (``?since=``)."""
        asked = {name: self.get_argument(name, "") for name in ("since", "until", "group")}
        # the rule in force (accounting.reconcile.fold) until the admin's form says otherwise:
        # an unticked box sends nothing, so only a submitted form (since=) can turn it off
        asked["fold"] = (
            self.get_argument("fold", "") == "1"
            if asked["since"]
            else self.config().accounting.reconcile.fold
        )
        section = {"asked": asked, "result": None, "error": None}
        if not asked["since"]:
            return section
        try:
            first = date.fromisoformat(asked["since"])
            last = (
                date.fromisoformat(asked["until"])
                if asked["until"]
                else self.accounting.now().date() - timedelta(days=1)
            )
            reconciler = self.settings.setdefault("reconciler", Reconciler(self.accounting.ledger.url))
            answer = await reconciler.run(self.config(), first, last, asked["fold"], asked["group"] or None)
        except ValueError as exc:
            section["error"] = str(exc)
            return section
        section["result"], section["error"] = answer.result, answer.error
        return section


class AdminCsvHandler(PersonHandler):
    @web.authenticated
    async def get(self) -> None:
        if not self.is_admin():
            raise web.HTTPError(403, "only admins may export spend")
        rows = await self.all_rows()
        self.set_header("Content-Type", "text/csv")
        self.set_header("Content-Disposition", 'attachment; filename="parhelion-spend.csv"')
        self.finish(rows_csv(rows))


def daily_chart_svg(daily: list[dict], width: int = 560, height: int = 160) -> str:
    """A bar chart of daily spend as inline SVG (no scripts, prints and screenshots as is)."""
    top = max([day["usd"] for day in daily] + [1e-9])
    bar = width / max(1, len(daily))
    parts = [
        f'<svg class="spend-chart" role="img" aria-label="Daily spend" width="{width}" '
        f'height="{height + 30}" viewBox="0 0 {width} {height + 30}">'
    ]
    for i, day in enumerate(daily):
        h = 0 if day["usd"] <= 0 else max(1.0, height * day["usd"] / top)
        parts.append(
            f'<rect class="bar" x="{i * bar + 2:.1f}" y="{height - h:.1f}" width="{bar - 4:.1f}" '
            f'height="{h:.1f}" fill="#f37524"><title>{day["date"]}: ${day["usd"]:.4f}</title></rect>'
        )
        if i % max(1, len(daily) // 7) == 0:
            parts.append(
                f'<text x="{i * bar + 2:.1f}" y="{height + 18}" font-size="11">{day["date"][5:]}</text>'
            )
    parts.append(f'<text x="{width - 4}" y="12" font-size="11" text-anchor="end">max ${top:.4f}/day</text>')
    parts.append("</svg>")
    return "".join(parts)


class HealthHandler(web.RequestHandler):
    """For probes: the service answers (no data, no login)."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish({"status": "ok"})


def handlers(prefix: str) -> list:
    """The route table, under the service's prefix; paths from ``contract.AccountingPath``."""
    path = AccountingPath
    user = "([^/]+)"  # a URL-quoted username or class name, as the path helpers make them
    return [
        (prefix + path.HEALTH, HealthHandler),
        (prefix + path.OAUTH_CALLBACK, HubOAuthCallbackHandler),
        (prefix + path.CHECK_SPAWN, CheckSpawnHandler),
        (prefix + path.CHECK_CLUSTER, CheckClusterHandler),
        (prefix + path.USERS, UsersApiHandler),
        (prefix + path.quota("NAME").replace("NAME", user), QuotaApiHandler),
        (prefix + path.USERS + "/" + user, UserApiHandler),
        (prefix + path.METRICS, MetricsHandler),
        (prefix + re.escape(path.class_report("NAME")).replace("NAME", user), ClassReportHandler),
        (prefix + path.ADMIN, AdminPageHandler),
        (prefix + re.escape(path.ADMIN_CSV), AdminCsvHandler),
        (prefix + path.spend_page("NAME").replace("NAME", user), SpendPageHandler),
        (prefix.rstrip("/") + "/?", SpendPageHandler),
    ]
