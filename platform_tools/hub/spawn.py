"""What happens when a person presses Start: the profile form, and the checks before.

The form lists the profiles the user may use, each with its size and its price per
hour. The pre-spawn check refuses anyone platform.yaml no longer admits (a member of a
closed class, with a cookie or token from before), then a server over quota (``max_servers``) or over budget
with the sentence the user reads on the spawn page; if the accounting service does not
answer, ``accounting.when_unavailable`` decides (budgets fail closed by default).
"""

from __future__ import annotations

import html
import json
import logging
from typing import Any
from urllib.parse import urlencode

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from platform_tools.config.live import LiveConfig
from platform_tools.config.policy import access_problem, isolation_problem, resolve
from platform_tools.contract.services import AccountingPath, accounting_api
from platform_tools.contract.tokens import authorization

log = logging.getLogger(__name__)


class SpawnRefused(web.HTTPError):
    """A 403 JupyterHub passes through to the person, showing ``jupyterhub_message`` on the
    spawn page (any other exception becomes "Unhandled error starting server")."""

    def __init__(self, message: str):
        super().__init__(403, log_message=message.replace("%", "%%"), reason="Forbidden")
        self.jupyterhub_message = message


def profile_form(live: LiveConfig, username: str) -> str:
    config = live.current()
    policy = resolve(config, username)
    allowed, default = policy.profiles, policy.default_profile
    if len(allowed) <= 1:
        return ""  # nothing to choose: JupyterHub starts without a form
    rows = []
    for name in allowed:
        profile = config.profiles[name]
        rows.append(
            f'<label class="list-group-item d-flex gap-3">'
            f'<input class="form-check-input" type="radio" name="profile" value="{html.escape(name)}"'
            f"{' checked' if name == default else ''}>"
            f"<span><strong>{html.escape(profile.display_name)}</strong> "
            f'<span class="badge text-bg-secondary price">${profile.price_per_hour_usd:.3f}/hour</span><br>'
            f"<small>{html.escape(profile.description)} {profile.cpu_limit:g} CPU, "
            f"{profile.mem_limit_gib:g} GiB</small></span></label>"
        )
    return '<div class="list-group" id="parhelion-profiles">' + "".join(rows) + "</div>"


def options_from_form(formdata: dict[str, list[str]]) -> dict[str, Any]:
    return {"profile": (formdata.get("profile") or [""])[0]}


async def check_spawn(
    spawner: Any, live: LiveConfig, accounting_url: str | None, token: str, local_spawner: str | None = None
) -> str:
    """Refuse (SpawnRefused) or return the profile to start.

    ``accounting_url`` is the accounting service's origin as registered with the hub;
    ``local_spawner`` the spawner a local platform runs with (None on Kubernetes).
    """
    config = live.current()
    username = spawner.user.name
    refused = access_problem(config, username)
    if refused:  # before anything else, accounting or not: a closed class runs nothing more
        raise SpawnRefused(refused)
    isolation = local_spawner and isolation_problem(config, local_spawner)
    if isolation:  # a roster added to a platform started for one person: nobody shares an account
        log.error("refused to start %s's server: %s (restart `parhelion up` to apply)", username, isolation)
        raise SpawnRefused(
            "This machine is not set up to keep its users apart yet, so no server starts. "
            f"Contact {config.accounting.contact}."
        )
    policy = resolve(config, username)
    profile = (spawner.user_options or {}).get("profile") or policy.default_profile or ""
    problem = policy.profile_problem(profile, config.accounting.contact)
    if problem:
        raise SpawnRefused(problem)
    running = [s for s in spawner.user.spawners.values() if s is not spawner and s.active]
    if policy.quota.max_servers is not None and len(running) >= policy.quota.max_servers:
        raise SpawnRefused(
            f"You already run {len(running)} server(s), the most your quota allows "
            f"({policy.quota.max_servers}). Stop one from the hub's home page first."
        )
    if not config.accounting.enabled or not accounting_url:
        return profile
    query = urlencode({"user": username, "profile": profile})
    request = HTTPRequest(
        f"{accounting_api(accounting_url, AccountingPath.CHECK_SPAWN)}?{query}",
        headers=authorization(token),
        request_timeout=5,
    )
    try:
        verdict = json.loads((await AsyncHTTPClient().fetch(request)).body)
    except Exception as exc:
        closed = config.accounting.when_unavailable.budgets == "closed" and policy.budget is not None
        if closed:
            raise SpawnRefused(
                "The accounting service does not answer, and starting a server needs it to check "
                f"your budget. Try again in a minute, or contact {config.accounting.contact}."
            ) from exc
        log.warning("accounting unreachable (%s); starting %s's server anyway", exc, username)
        return profile
    if not verdict.get("allowed"):
        raise SpawnRefused(verdict.get("message") or "refused by the accounting service")
    return profile
