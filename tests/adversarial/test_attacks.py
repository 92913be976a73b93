"""Attacks on the caps, tried as a user would on the running local platform: with their own
login cookie, their own hub API token and the dask-gateway client.

Each test states the promise it checks; figures measured (the overshoot of a burst, the time
from a cap to everything stopped) are printed for the README.
"""

from __future__ import annotations

import asyncio
import threading
import time
from urllib.parse import quote

import pytest

from platform_tools.clients.hubclient import HubUser
from platform_tools.contract.services import ACCOUNTING_PREFIX, GATEWAY_PREFIX, AccountingPath, GatewayPath
from tests.adversarial.probes import (
    BURST_BUDGET_USD,
    GHOST_BUDGET_USD,
    admin_api,
    call,
    dask_processes,
    gateway,
    ledger,
    secret,
    usage,
    user_password,
    user_token,
    wait_until,
)

# serial: races against quotas are timed; a busy neighbour would change who wins
pytestmark = [pytest.mark.integration, pytest.mark.adversarial, pytest.mark.serial]

#: Words that appear in a spend report or a class report and in no refusal.
LEAKS = ("spent", "usd", "budget", "$", "student1", "dask-scheduler", "server (")


class Watch:
    """Calls ``measure()`` every ``interval`` s in a thread until stopped; keeps every value."""

    def __init__(self, measure, interval: float = 0.1):
        self.measure, self.interval = measure, interval
        self.values: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.values.append((time.time(), self.measure()))
            except Exception as error:  # a failed probe is a value too: it fails the test
                self.values.append((time.time(), error))
            self._stop.wait(self.interval)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


async def _person(platform, username: str, requests_: list[tuple[str, str]]) -> list[tuple[int, str]]:
    """As a browser page's script would: the user's hub login, the service's OAuth cookie,
    its _xsrf cookie echoed in a header."""
    answers = []
    async with HubUser(platform.url, username, user_password(platform, username)) as user:
        await user.login()
        for method, path in requests_:
            headers = {"X-XSRFToken": user._cookie("_xsrf", ACCOUNTING_PREFIX.rstrip("/")) or ""}
            async with user.session.request(method, platform.url + path, headers=headers) as answer:
                answers.append((answer.status, await answer.text()))
    return answers


def accounting_paths(victim: str) -> list[tuple[str, str]]:
    """Every route that shows or changes another user's spend, quota or a class report."""
    other = [
        ("GET", AccountingPath.user(victim)),
        ("GET", "api/v1/users/" + "".join(f"%{ord(c):02X}" for c in victim)),  # the same name, encoded
        ("GET", AccountingPath.spend_page(victim)),
        ("GET", AccountingPath.USERS),
        ("GET", AccountingPath.ADMIN),
        ("GET", AccountingPath.ADMIN_CSV),
        ("PUT", AccountingPath.quota(victim)),
        ("POST", AccountingPath.quota(victim)),
        ("PUT", AccountingPath.quota("mallory")),
        ("GET", AccountingPath.class_report("school")),
    ]
    return [(method, ACCOUNTING_PREFIX + path) for method, path in other]


@pytest.fixture(autouse=True)
def no_dask_process_left(platform):
    """Each test counts live Dask processes against a quota: it starts, and leaves the next one,
    with none. A cluster's shutdown returns before its scheduler has exited (with Bokeh's
    dashboard that takes a moment), and one still exiting is no longer one of the user's
    clusters, so a count that included it would blame the quota for it."""
    wait_until(lambda: not dask_processes(platform), 60, "the Dask processes of earlier tests gone")
    yield
    wait_until(lambda: not dask_processes(platform), 60, "this test's Dask processes gone")


def test_another_users_spend_quotas_and_reports_are_refused(platform):
    """mallory, with her login cookie and with her own token, asks for demo's spend, every
    user's spend, the admin pages, quota changes and a class's cost report: 403 every time,
    and no answer carries a figure, a name or a resource."""
    demo = asyncio.run(_person(platform, "demo", [("GET", ACCOUNTING_PREFIX + AccountingPath.user("demo"))]))
    assert demo[0][0] == 200 and '"spent_usd"' in demo[0][1]  # the route works for its owner
    paths = accounting_paths("demo")
    by_cookie = asyncio.run(_person(platform, "mallory", paths))
    token = user_token(platform, "mallory")
    by_token = [(r.status_code, r.text) for r in (call(m, platform.url + p, token) for m, p in paths)]
    # the service's own port, which any local account can reach on 127.0.0.1
    direct = f"http://127.0.0.1:{platform.runtime['ports']['accounting']}"
    by_port = [(r.status_code, r.text) for r in (call(m, direct + p, token) for m, p in paths)]
    for (method, path), *answers in zip(paths, by_cookie, by_token, by_port, strict=True):
        for how, (status, body) in zip(
            ("cookie", "token", "token on the service's port"), answers, strict=True
        ):
            assert status == 403, f"{method} {path} with mallory's {how}: {status} {body[:300]}"
            leaked = [word for word in LEAKS if word in body.lower()]
            assert not leaked, f"{method} {path} with mallory's {how} shows {leaked}: {body[:300]}"
            assert "demo" not in body.lower(), body[:300]


def test_a_users_own_token_is_refused_on_the_internal_and_gateway_routes(platform):
    """The checks, metrics and class report take the accounting token only; Parhelion's
    gateway routes (usage, stop) too; dask-gateway's own routes and the room route keep
    mallory off demo's cluster. demo's cluster runs on, untouched, throughout."""
    runtime = platform.runtime
    demo_token, mallory_token = user_token(platform, "demo"), user_token(platform, "mallory")
    accounting_origins = [platform.url, f"http://127.0.0.1:{runtime['ports']['accounting']}"]
    gateway_origins = [platform.url, f"http://127.0.0.1:{runtime['ports']['gateway']}"]

    async def scenario():
        demo = gateway(platform, demo_token)
        cluster = await demo.new_cluster(shutdown_on_close=False)
        try:
            answers = attack(cluster.name)
            # the cluster is still there, and still demo's
            alive = [c["name"] for c in usage(platform) if c["username"] == "demo"]
            report = await demo.get_cluster(cluster.name)
            return answers, alive, report.status.name, cluster.name
        finally:
            await cluster.shutdown()
            await demo.close()

    def attack(cluster_name: str) -> list[tuple[str, int, str]]:
        tried = []
        internal = [
            f"{AccountingPath.CHECK_SPAWN}?user=mallory&profile=small",
            f"{AccountingPath.CHECK_CLUSTER}?user=mallory",
            f"{AccountingPath.CHECK_CLUSTER}?user=demo",
            AccountingPath.METRICS,
            AccountingPath.class_report("school"),
        ]
        for origin in accounting_origins:
            for path in internal:
                url = f"{origin}{ACCOUNTING_PREFIX}{path}"
                for header in (f"token {mallory_token}", f"Bearer {mallory_token}"):
                    answer = call("GET", url, headers={"Authorization": header})
                    tried.append((f"GET {url} ({header.split()[0]})", answer.status_code, answer.text))
        routes = [
            ("POST", GatewayPath.stop("demo")),
            ("POST", GatewayPath.stop("mallory")),
            ("GET", GatewayPath.USAGE),
            ("GET", GatewayPath.room(cluster_name)),
            ("GET", f"/api/v1/clusters/{quote(cluster_name)}"),
            ("POST", f"/api/v1/clusters/{quote(cluster_name)}/scale"),
            ("DELETE", f"/api/v1/clusters/{quote(cluster_name)}"),
        ]
        for origin in gateway_origins:
            for method, path in routes:
                url = f"{origin}{GATEWAY_PREFIX}{path}"
                # as dask-gateway's client sends it (its JupyterHub auth's scheme)
                answer = call(
                    method, url, headers={"Authorization": f"jupyterhub {mallory_token}"}, json={"count": 4}
                )
                tried.append((f"{method} {url}", answer.status_code, answer.text))
        return tried

    answers, alive, status, name = asyncio.run(scenario())
    for what, status_code, body in answers:
        assert status_code in (403, 404), f"{what}: {status_code} {body[:300]}"
        assert "allowed" not in body and "parhelion_" not in body and "workers" not in body, (what, body)
    assert alive == [name] and status == "RUNNING"
    # the same routes answer the accounting token (the refusals above are about the token)
    token = secret(platform, "accounting-api-token")
    check = call("GET", f"{platform.url}{ACCOUNTING_PREFIX}{AccountingPath.CHECK_CLUSTER}?user=demo", token)
    assert check.status_code == 200 and "allowed" in check.json()


def test_ten_concurrent_new_clusters_under_a_quota_of_two(platform):
    """max_dask_clusters: 2. Ten new_cluster() at once: exactly two clusters exist at every
    moment, the eight others are refused with the quota's sentence."""
    token = user_token(platform, "demo")

    def demo_schedulers() -> int:
        return sum(1 for c in usage(platform) if c["username"] == "demo")

    async def scenario():
        clients = [gateway(platform, token) for _ in range(10)]
        try:
            with Watch(lambda: (demo_schedulers(), dask_processes(platform))) as watch:
                results = await asyncio.gather(*(c.new_cluster() for c in clients), return_exceptions=True)
                listed = await clients[0].list_clusters()
                await asyncio.sleep(1)  # the watch goes on a little after the race
            clusters = [r for r in results if not isinstance(r, BaseException)]
            for cluster in clusters:
                await cluster.shutdown()
            return results, listed, watch.values
        finally:
            for client in clients:
                await client.close()

    results, listed, seen = asyncio.run(scenario())
    refusals = [str(r) for r in results if isinstance(r, BaseException)]
    assert len(results) - len(refusals) == 2, refusals
    assert len(refusals) == 8
    for refusal in refusals:
        assert "You already have 2 Dask cluster(s) running, the most your quota allows (2)" in refusal
    assert len(listed) == 2
    errors = [v for _, v in seen if isinstance(v, Exception)]
    assert not errors, errors
    assert max(records for _, (records, _) in seen) <= 2
    crowded = [(at, processes) for at, (_, processes) in seen if len(processes) > 2]
    assert not crowded, f"more than 2 Dask processes at once (when, which): {crowded[:5]}"
    wait_until(lambda: not dask_processes(platform), 30, "demo's clusters stopped")


def test_two_clusters_scaled_past_the_core_quota_at_once(platform):
    """max_dask_cores: 4 (a scheduler takes 1, a worker 1). Two clusters ask for 4 workers
    each at the same instant, then one scales down while the other scales up: neither the
    cores of demo's live Dask processes nor those the gateway has running or starting for
    demo (what the meter charges) ever exceed 4, and the quota ends up used, not wasted."""
    token = user_token(platform, "demo")

    def cores() -> int:
        return len(dask_processes(platform))  # one core each: every scheduler and worker here

    def gateway_cores() -> float:
        clusters = [c for c in usage(platform) if c["username"] == "demo"]
        return sum(c["scheduler"]["cores"] + sum(w["cores"] for w in c["workers"]) for c in clusters)

    def usage_workers(name: str) -> list:
        return next((c["workers"] for c in usage(platform) if c["name"] == name), [])

    async def scenario():
        client = gateway(platform, token)
        a = await client.new_cluster(shutdown_on_close=False)
        b = await client.new_cluster(shutdown_on_close=False)
        try:
            with Watch(lambda: (cores(), gateway_cores())) as watch:
                await asyncio.gather(a.scale(4), b.scale(4))
                await asyncio.to_thread(wait_until, lambda: cores() == 4, 60, "the quota filled")
                await asyncio.sleep(3)  # longer than a few heartbeats: nothing more may start
                both = cores()
                # whoever got the workers gives them back while the other asks for them
                workers = {c["name"]: len(c["workers"]) for c in usage(platform)}
                first, second = (a, b) if workers.get(a.name, 0) >= workers.get(b.name, 0) else (b, a)
                await asyncio.gather(first.scale(0), second.scale(4))
                # the gateway hears each scheduler's wish at its heartbeat (every few seconds)
                await asyncio.to_thread(
                    wait_until, lambda: len(usage_workers(second.name)) == 2, 60, "the freed cores reused"
                )
                await asyncio.sleep(3)
                after = cores()
            return both, after, watch.values
        finally:
            await a.shutdown()
            await b.shutdown()
            await client.close()

    both, after, seen = asyncio.run(scenario())
    errors = [v for _, v in seen if isinstance(v, Exception)]
    assert not errors, errors
    peak = max(processes for _, (processes, _) in seen)
    recorded = max(cores for _, (_, cores) in seen)
    print(
        f"\nscaling: peak {peak} cores in demo's Dask processes, {recorded:g} in the gateway's "
        "records (quota 4)"
    )
    assert both == 4 and after == 4
    over = [f"{t - seen[0][0]:.1f} s: {v}" for t, v in seen if max(v) > 4]
    assert peak <= 4 and recorded <= 4, f"(processes, recorded cores) over the quota at {over[:10]}"
    wait_until(lambda: not dask_processes(platform), 30, "demo's clusters stopped")


def test_a_cap_crossed_mid_burst_stops_every_cluster(platform):
    """burster may run 20 clusters and spend $0.002: they ask for 20 at once, and the cap is
    crossed while the clusters come up. Every cluster is stopped (grace 0), even those still
    starting; none starts after the crossing; the overshoot and the time from the crossing to
    the last process gone are measured."""
    token = user_token(platform, "burster")
    ledger_file = ledger(platform)
    begun = time.time()

    def mine() -> set[str]:
        return {p.cluster for p in dask_processes(platform) if p.cluster not in before}

    before = {p.cluster for p in dask_processes(platform)}

    def outcome(task: asyncio.Future):
        """The cluster, the error its client raised, or None while the client still waits."""
        if not task.done():
            return None
        return task.exception() or task.result()

    async def again() -> str | None:
        """Stopped, burster asks for a cluster again: the refusal, or None if one started."""
        client = gateway(platform, token)
        try:
            extra = await client.new_cluster(shutdown_on_close=False)
            await extra.close()
            return None
        except ValueError as error:
            return str(error)
        finally:
            await client.close()

    async def scenario():
        clients = [gateway(platform, token) for _ in range(20)]
        burst = [asyncio.ensure_future(c.new_cluster(shutdown_on_close=False)) for c in clients]
        try:
            with Watch(mine, interval=0.2) as watch:
                await asyncio.to_thread(
                    wait_until, lambda: ledger_file.crossing("burster", BURST_BUDGET_USD), 90, "the cap"
                )
                await asyncio.to_thread(
                    wait_until, lambda: not mine(), 60, "every cluster of burster stopped"
                )
                await asyncio.sleep(0.5)  # the watch sees it too
            refusal = await again()
            # a client whose cluster was stopped while it started may wait ~30 s to say so
            await asyncio.wait(burst, timeout=5)
            return [outcome(task) for task in burst], refusal, watch.values
        finally:
            for task in burst:
                if task.done() and not task.cancelled() and task.exception() is None:
                    await task.result().close()
                else:
                    task.cancel()
            await asyncio.gather(*burst, return_exceptions=True)
            for client in clients:
                await client.close()

    results, refusal, seen = asyncio.run(scenario())
    failures = [str(r) for r in results if isinstance(r, BaseException)]
    running = sum(1 for r in results if r is not None and not isinstance(r, BaseException))
    # a cluster still starting when it is stopped tells its client so; a late one is refused
    # (by the budget, or by the quota of 20 while the others still run)
    for failure in failures:
        assert any(
            words in failure
            for words in ("is already stopped", "No new Dask cluster: your budget", "the most your quota")
        ), failure
    assert refusal is not None and "No new Dask cluster: your budget" in refusal, refusal
    # the ledger closes the lifetimes at the next sample after the processes are gone
    wait_until(
        lambda: all(row["ended_at"] for row in ledger_file.lifetimes("burster")), 30, "lifetimes closed"
    )
    rows = [r for r in ledger_file.lifetimes("burster") if r["kind"].startswith("dask")]
    crossed_at = ledger_file.crossing("burster", BURST_BUDGET_USD)
    charged = ledger_file.spend_at("burster", float("inf"))
    # what really ran: each cluster's processes until the last poll that saw them
    last_alive: dict[str, float] = {}
    for at, clusters in seen:
        assert isinstance(clusters, set), clusters
        for name in clusters:
            last_alive[name] = at
    real = (
        sum(
            r["rate_per_hour"]
            * (last_alive.get(r["resource_key"].split(":")[1], r["last_seen_at"]) - r["started_at"])
            for r in rows
        )
        / 3600
    )
    burn = sum(r["rate_per_hour"] for r in rows) / 3600  # $/s with every metered cluster running
    # everything gone: the first poll that saw nothing, after the last that saw something
    last_seen_running = max(at for at, clusters in seen if clusters)
    gone_at = min(at for at, clusters in seen if not clusters and at > last_seen_running)
    latency = gone_at - crossed_at
    assert rows, "the burst was metered"
    starts = sorted(r["started_at"] - begun for r in rows)
    print(
        f"\nburst: 20 asked, {len(rows)} metered, {running} reached running before the stop; starts "
        f"{starts[0]:.1f}-{starts[-1]:.1f} s, cap crossed at {crossed_at - begun:.1f} s; cap "
        f"${BURST_BUDGET_USD}: charged ${charged:.5f} (overshoot ${charged - BURST_BUDGET_USD:.5f}, "
        f"{100 * (charged / BURST_BUDGET_USD - 1):.0f}%), really ran ${real:.5f} (overshoot "
        f"${real - BURST_BUDGET_USD:.5f}); crossing to last process gone {latency:.1f} s"
    )
    # refusals read the ledger, which sees the crossing at the next sample (1 s)
    assert all(r["started_at"] <= crossed_at + 3 for r in rows), (starts, crossed_at - begun)
    assert latency <= 20, latency
    assert charged - BURST_BUDGET_USD <= burn * 20
    assert real - BURST_BUDGET_USD <= burn * 20


def test_enforcement_while_the_hub_answers_404_for_the_user(platform):
    """ghost runs a cluster on a tiny budget; an admin deletes ghost's hub record, so the
    hub answers 404 for them. The cap is crossed afterwards: the cluster is still stopped."""
    token = user_token(platform, "ghost")

    async def start() -> str:
        client = gateway(platform, token)
        try:
            cluster = await client.new_cluster(shutdown_on_close=False)
            await cluster.close()  # the client only: the cluster runs on
            return cluster.name
        finally:
            await client.close()

    name = asyncio.run(start())
    assert admin_api(platform, "DELETE", "users/ghost").status_code == 204
    forgotten = time.time()
    assert admin_api(platform, "GET", "users/ghost").status_code == 404
    assert [p for p in dask_processes(platform) if p.cluster == name], "the cluster runs on"
    ledger_file = ledger(platform)
    try:
        crossed = wait_until(
            lambda: ledger_file.crossing("ghost", GHOST_BUDGET_USD), 60, "ghost's cap crossed in the ledger"
        )
        assert crossed > forgotten, "the cap must be crossed after the hub forgot ghost"
        wait_until(
            lambda: not [p for p in dask_processes(platform) if p.cluster == name],
            30,
            "ghost's cluster stopped although the hub answers 404 for ghost",
        )
    finally:
        call(
            "POST",
            f"{platform.url}{GATEWAY_PREFIX}{GatewayPath.stop('ghost')}",
            secret(platform, "accounting-api-token"),
        )
