"""platform.yaml from its ConfigMap: the text at start (an env var), then followed through the
Kubernetes API, as the gateway's API pod (which cannot mount it) does.

A kube-apiserver cannot run here: the rehearsal's API stand-in (tests/rehearsal/apiserver.py)
serves the ConfigMap, and refuses reads with RBAC's 403 when a test says so, so
kubernetes_asyncio's real client code runs. Then LiveConfig, the reader quotas go through,
follows the copied file.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from platform_tools.config import ConfigError
from platform_tools.config.configmap import ConfigMapMirror, platform_from_environment
from platform_tools.config.live import LiveConfig
from tests.rehearsal.apiserver import ApiServer, ObjectStore, forbidden, serving_api

pytestmark = pytest.mark.integration
NAMESPACE, NAME = "parhelion", "parhelion-platform"


class PlatformApi:
    """The API stand-in holding the platform ConfigMap; ``denied`` makes it answer 403."""

    def __init__(self, data: dict[str, str]):
        self.store = ObjectStore()
        self.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
        }
        self.store.create(configmap | {"data": data})
        self.denied = False
        self.server = ApiServer(
            self.store, refuse=lambda request: forbidden(request) if self.denied else None
        )

    @property
    def reads(self) -> int:
        return sum(r.method == "GET" for r in self.server.requests)

    def set_text(self, text: str | None) -> None:
        self.store.patch("ConfigMap", NAME, NAMESPACE, {"data": {"platform.yaml": text}})


async def _with_api(api: PlatformApi, body):
    from kubernetes_asyncio.client import ApiClient, Configuration, CoreV1Api

    async with serving_api(api.server) as url, ApiClient(Configuration(host=url)) as client:
        return await body(CoreV1Api(client))


def _with_quota(text: str, clusters: int) -> str:
    old = "max_dask_clusters: 2"
    assert old in text
    return text.replace(old, f"max_dask_clusters: {clusters}")


def test_the_start_text_is_validated_and_written(example_text, tmp_path):
    environ = {"PARHELION_CONFIG_YAML": example_text, "PARHELION_CONFIG_CONFIGMAP": NAME}
    path, platform = platform_from_environment(environ, tmp_path)
    assert path.read_text() == example_text and platform.groups


def test_a_bad_start_text_names_the_configmap_line_and_field(example_text, tmp_path):
    bad = example_text.replace("max_dask_clusters: 2", "max_dask_clusters: two")
    environ = {"PARHELION_CONFIG_YAML": bad, "PARHELION_CONFIG_CONFIGMAP": NAME}
    with pytest.raises(ConfigError) as error:
        platform_from_environment(environ, tmp_path)
    line = bad.splitlines().index(next(x for x in bad.splitlines() if "max_dask_clusters: two" in x)) + 1
    message = str(error.value)
    assert f"ConfigMap {NAME}, key platform.yaml ($PARHELION_CONFIG_YAML):{line}" in message
    assert "max_dask_clusters" in message
    assert not (tmp_path / "platform.yaml").exists()  # nothing half-good written


def test_no_configuration_at_all_says_what_to_set(tmp_path):
    with pytest.raises(ConfigError, match="neither PARHELION_CONFIG .* nor PARHELION_CONFIG_YAML"):
        platform_from_environment({}, tmp_path)


def test_changes_are_followed_and_bad_ones_do_not_replace_good(example_text, tmp_path):
    path, _ = platform_from_environment({"PARHELION_CONFIG_YAML": example_text}, tmp_path)
    live = LiveConfig(path)
    stand_in = PlatformApi({"platform.yaml": example_text})

    async def steps(core):
        mirror = ConfigMapMirror(core, NAMESPACE, NAME, path)
        results = [await mirror.refresh()]  # unchanged: the file is not touched
        stand_in.set_text(_with_quota(example_text, 5))
        results.append(await mirror.refresh())
        quota_after_change = live.current().groups["researchers"].quota.max_dask_clusters
        stand_in.set_text(_with_quota(example_text, -1))
        results.append(await mirror.refresh())  # copied, but LiveConfig rejects it
        quota_after_bad = live.current().groups["researchers"].quota.max_dask_clusters
        stand_in.set_text(None)
        results.append(await mirror.refresh())  # a ConfigMap without the key: file kept
        return results, quota_after_change, quota_after_bad

    results, after_change, after_bad = asyncio.run(_with_api(stand_in, steps))
    assert results == [False, True, True, False]
    assert after_change == 5 and after_bad == 5
    assert "max_dask_clusters" in (live.rejected or "")
    assert "max_dask_clusters: -1" in path.read_text()


def test_following_survives_api_errors(example_text, tmp_path, caplog):
    path, _ = platform_from_environment({"PARHELION_CONFIG_YAML": example_text}, tmp_path)
    stand_in = PlatformApi({"platform.yaml": _with_quota(example_text, 7)})
    stand_in.denied = True

    async def steps(core):
        mirror = ConfigMapMirror(core, NAMESPACE, NAME, path, interval=0.05)
        task = asyncio.ensure_future(mirror.follow())
        try:
            while stand_in.reads < 2:
                await asyncio.sleep(0.01)
            stand_in.denied = False  # RBAC fixed: the next read copies the change
            for _ in range(200):
                if "max_dask_clusters: 7" in path.read_text():
                    break
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    with caplog.at_level(logging.WARNING):
        asyncio.run(_with_api(stand_in, steps))
    assert "max_dask_clusters: 7" in path.read_text()
    assert any("cannot read it" in r.getMessage() and "403" in r.getMessage() for r in caplog.records)
