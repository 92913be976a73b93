"""A closed class's members are refused by every gate, whatever they still hold; its TA (in
another group too) is not: the hub's pre-spawn check (the one function the local hub and
KubeSpawner's hook both call, with or without the accounting service), and the accounting
service's spawn and cluster checks, which the gateway asks before every new cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from platform_tools.accounting.checks import check_cluster, check_spawn
from platform_tools.config import parse_platform
from platform_tools.config.live import LiveConfig
from platform_tools.hub import spawn as hub_spawn
from platform_tools.hub.kubernetes import configure_kubernetes_hub
from platform_tools.ledger.store import Ledger
from tests.auth import CLIENT_SECRET, with_oidc

pytestmark = pytest.mark.unit

SCHOOL = """
groups:
  researchers:
    members: [demo, ta1]
  school:
    members: [student1, ta1]
    profiles: [small]
    budget: {usd: 5, period: course, course: {start: 2026-01-01, end: 2030-12-31}}
    course: {title: Helio school, status: closed}
"""


def school_text(example_text: str) -> str:
    start = example_text.index("\ngroups:\n")
    end = example_text.index("\n# Per-user exceptions")
    return example_text[:start] + SCHOOL + example_text[end:]


def spawner(username: str):
    return SimpleNamespace(user=SimpleNamespace(name=username, spawners={}), user_options={})


def test_the_hubs_pre_spawn_check_refuses_a_closed_class_without_the_accounting_service(
    example_text, tmp_path
):
    path = tmp_path / "platform.yaml"
    path.write_text(school_text(example_text))
    live = LiveConfig(path)
    with pytest.raises(hub_spawn.SpawnRefused) as refused:
        asyncio.run(hub_spawn.check_spawn(spawner("student1"), live, None, ""))
    assert "Your class (Helio school) has closed" in refused.value.jupyterhub_message
    assert refused.value.status_code == 403
    assert asyncio.run(hub_spawn.check_spawn(spawner("ta1"), live, None, "")) == "small"


def test_kubespawners_pre_spawn_hook_refuses_a_closed_class(example_text, monkeypatch, tmp_path):
    from kubernetes_asyncio.config import kube_config
    from kubespawner import KubeSpawner

    from tests.hub.test_kubespawner import KUBECONFIG, FakeLive

    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig"))
    monkeypatch.setenv("PARHELION_ACCOUNTING_TOKEN", "t")
    monkeypatch.setenv(*next(iter(CLIENT_SECRET.items())))
    c = Config()
    configure_kubernetes_hub(c, FakeLive(with_oidc(parse_platform(school_text(example_text)))))
    user = SimpleNamespace(name="student1", id=1, url="/user/student1/", spawners={})

    async def hook() -> None:
        await c.KubeSpawner.pre_spawn_hook(KubeSpawner(_mock=True, config=c, user=user))

    with pytest.raises(hub_spawn.SpawnRefused, match=r"Your class \(Helio school\) has closed"):
        asyncio.run(hook())


def test_the_accounting_checks_refuse_a_closed_class_for_servers_and_clusters(example_text, tmp_path):
    config = parse_platform(school_text(example_text))
    ledger = Ledger(f"sqlite:///{Path(tmp_path) / 'ledger.sqlite'}")
    ledger.migrate()
    try:
        for verdict in (
            check_spawn(config, ledger, "student1", "small"),
            check_cluster(config, ledger, "student1"),
        ):
            assert (verdict.allowed, verdict.rule) == (False, "access")
            assert "Your class (Helio school) has closed" in verdict.message
        assert check_spawn(config, ledger, "ta1", "small").allowed
        assert check_cluster(config, ledger, "ta1").allowed
    finally:
        ledger.close()


def test_a_roster_added_to_a_one_person_platform_starts_nothing_until_restarted(
    example_text, tmp_path, caplog
):
    """`parhelion up` chose simple for one trusted person; a roster edited in while it runs
    (trusted taken out) must not put the newcomers on the same OS account: the person reads a
    sentence, the admin a log line naming the field. Kubernetes (no local spawner) is unaffected."""
    path = tmp_path / "platform.yaml"
    path.write_text(school_text(example_text).replace("  trusted: true\n", ""))
    live = LiveConfig(path)
    with caplog.at_level("ERROR"), pytest.raises(hub_spawn.SpawnRefused) as refused:
        asyncio.run(hub_spawn.check_spawn(spawner("ta1"), live, None, "", "simple"))
    assert "not set up to keep its users apart" in refused.value.jupyterhub_message
    assert "local.spawner: simple runs every server as one OS account" in caplog.text
    assert asyncio.run(hub_spawn.check_spawn(spawner("ta1"), live, None, "", None)) == "small"
