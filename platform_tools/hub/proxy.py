"""configurable-http-proxy, with route additions that outlast a slow or restarted proxy.

JupyterHub adds a student's route once their server answers, and if that fails it stops the
server ("Failed to add ... to proxy"). Its own retries end 30 s after the first attempt: a
proxy starved of CPU by servers starting on two cores (issue 18: 3 of 80 students lost at
9:00), or one that hung and was restarted (the hub restarts a dead proxy within
``check_running_interval`` and restores its routes), answers after that, and a student whose
server was ready is sent away.

Here each attempt has its own timeout (``route_attempt_timeout``; a request lost in a hung
proxy is not waited for 5 minutes, aiohttp's default), and attempts are repeated with backoff
on timeouts, connection errors and 5xx for ``route_patience`` seconds. Adding a route is
idempotent (the same path and target again), so a repeat after an attempt that did reach
the proxy is harmless. If the proxy still has not answered, a user's route is left to the
hub's periodic ``check_routes`` (which adds the routes of ready servers that are missing)
instead of stopping a server that works; other routes raise as before.
"""

from __future__ import annotations

import asyncio
import json
import random

import aiohttp
from jupyterhub.httpclient import fetch
from jupyterhub.proxy import ConfigurableHTTPProxy
from jupyterhub.utils import url_path_join
from traitlets import Float


class ProxyUnanswered(RuntimeError):
    """The proxy did not take a route within ``route_patience``."""


class PatientProxy(ConfigurableHTTPProxy):
    route_attempt_timeout = Float(
        10.0, config=True, help="Seconds one request to add a route may take before it is repeated."
    )
    route_patience = Float(
        600.0, config=True, help="Seconds a route addition is repeated before it is given up."
    )

    async def add_route(self, routespec, target, data):
        body = dict(data or {})
        body["target"] = target
        body["jupyterhub"] = True
        path = self._routespec_to_chp_path(routespec)
        try:
            await self._patient_request(path, "POST", json.dumps(body))
        except ProxyUnanswered as error:
            if not (data or {}).get("user"):
                raise
            # the server is up: keep it, the hub's check_routes adds the route when it can
            self.log.error("%s; the hub's route check will add it later", error)

    async def _patient_request(self, path: str, method: str, body: str | None) -> aiohttp.ClientResponse:
        url = url_path_join(self.api_url, "api/routes", path)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.route_patience
        wait, attempt = 0.5, 0
        while True:
            attempt += 1
            try:
                async with self.semaphore:
                    return await fetch(
                        url,
                        method=method,
                        headers={"Authorization": f"token {self.auth_token}"},
                        data=body,
                        timeout=aiohttp.ClientTimeout(total=self.route_attempt_timeout),
                    )
            except aiohttp.ClientResponseError as error:
                if error.status < 500:
                    raise  # refused, not slow: repeating will not help
                reason = f"HTTP {error.status}"
            except (aiohttp.ClientConnectionError, TimeoutError) as error:
                reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ProxyUnanswered(
                    f"the proxy did not take {method} {path} in {self.route_patience:g} s "
                    f"({attempt} attempts, last: {reason})"
                )
            pause = min(random.uniform(wait / 2, wait), remaining)
            self.log.warning(
                "The proxy did not take %s %s (attempt %d: %s); again in %.1f s",
                method,
                path,
                attempt,
                reason,
                pause,
            )
            await asyncio.sleep(pause)
            wait = min(wait * 2, 10.0)
