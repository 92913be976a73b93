"""A deployed platform, checked end to end as a person uses it: the k3s workflow's checks.

    python -m tests.smoke --hub-url http://127.0.0.1:8080 --user demo --oauth-form sub=demo

Through the hub's public URL only: the hub is healthy; the person logs in at the identity
provider (a provider whose authorization page is a form, such as oidc-provider-mock); their
server starts and JupyterLab opens; a notebook cell runs; a Dask cluster from dask-gateway
with one worker computes a sum; from their server the cloud metadata endpoint
(169.254.169.254) cannot be reached; and the accounting service answers them with their spend
(through the hub's proxy: user code itself may not reach it on a cluster). Each check prints one
line; the exit status is the number that failed. tests/hub/test_oidc_login.py runs it against
the local platform, so the workflow's script is itself tested where no cluster can run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.request

from platform_tools.clients.hubclient import HubUser

DASK_SUM = """
from dask_gateway import Gateway
import dask.array as da
gateway = Gateway()
cluster = gateway.new_cluster()
try:
    cluster.scale(1)
    client = cluster.get_client()
    client.wait_for_workers(1, timeout={timeout})
    print("sum", int(da.ones(1000, chunks=100).sum().compute()))
finally:
    cluster.shutdown()
"""

METADATA = """
import socket
try:
    socket.create_connection(("169.254.169.254", 80), timeout=5).close()
    print("metadata reachable")
except OSError as error:
    print("metadata unreachable:", type(error).__name__)
"""


def _text(outputs: list) -> str:
    return "".join(o.get("text", "") for o in outputs)


async def check(
    hub_url: str,
    username: str,
    oauth_form: dict[str, str],
    dask_timeout: int,
    skip: frozenset[str] = frozenset(),
) -> list[str]:
    """The failed checks' descriptions (empty: all passed), printing each result."""
    failed: list[str] = []

    def result(name: str, ok: bool, detail: str = "") -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
        if not ok:
            failed.append(name)

    with urllib.request.urlopen(f"{hub_url}/hub/health", timeout=30) as health:
        result("hub health", health.status == 200, f"HTTP {health.status}")
    async with HubUser(hub_url, username, oauth_form=oauth_form, timeout=120) as user:
        await user.login()
        result("login through the identity provider", True, username)
        await user.start_server(timeout=900)
        await user.open_lab()
        result("server started, JupyterLab open", True)
        kernel = await user.start_kernel()
        try:
            cell = _text(await kernel.execute("print(sum(range(10)))", timeout=120)).strip()
            result("notebook cell", cell == "45", repr(cell))
            dask = _text(
                await kernel.execute(DASK_SUM.format(timeout=dask_timeout), timeout=dask_timeout + 120)
            )
            result("Dask cluster with one worker, a sum", "sum 1000" in dask, dask.strip()[-200:])
            if "metadata" not in skip:
                metadata = _text(await kernel.execute(METADATA, timeout=60)).strip()
                result(
                    "cloud metadata endpoint blocked", metadata.startswith("metadata unreachable"), metadata
                )
        finally:
            await kernel.shutdown()
        status, spend = await _accounting(user)
        result(
            "accounting API answers for the user",
            status == 200 and spend.get("user") == username,
            f"HTTP {status}, budget {spend.get('budget')}",
        )
        await user.stop_server()
    return failed


async def _accounting(user: HubUser) -> tuple[int, dict]:
    """The person's own spend through the hub's proxy, as their spend page's script reads it
    (the first page load does the hub's OAuth for the service; no consent page)."""
    async with user.session.get(f"{user.hub_url}/services/accounting/") as page:
        if page.status != 200:
            return page.status, {}
    async with user.session.get(f"{user.hub_url}/services/accounting/api/v1/users/{user.username}") as answer:
        return answer.status, (await answer.json() if answer.status == 200 else {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hub-url", required=True, help="the hub's public URL")
    parser.add_argument("--user", required=True, help="who logs in")
    parser.add_argument(
        "--oauth-form",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a field of the provider's authorization form (repeatable)",
    )
    parser.add_argument("--dask-timeout", type=int, default=600, help="seconds to wait for a worker")
    parser.add_argument(
        "--skip", action="append", default=[], choices=["metadata"], help="a check not to run"
    )
    args = parser.parse_args(argv)
    form = dict(item.split("=", 1) for item in args.oauth_form)
    failed = asyncio.run(
        check(args.hub_url.rstrip("/"), args.user, form, args.dask_timeout, frozenset(args.skip))
    )
    print(json.dumps({"failed": failed}))
    return len(failed)


if __name__ == "__main__":
    sys.exit(main())
