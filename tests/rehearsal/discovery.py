"""API discovery documents of the API stand-in, built from the kinds its store serves.

kubernetes.core's DynamicClient, kubectl and helm find resources only through these documents
(``/api``, ``/apis``, ``/api/v1``, ``/apis/<group>/<version>``), so a kind a CRD adds must
appear here the moment the CRD exists, with the verbs, scope and subresources it really has.
"""

from __future__ import annotations

import re

from tests.rehearsal.resources import VERBS, ResourceType

KUBERNETES_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0",
    "gitCommit": "stand-in",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def version_priority(version: str) -> tuple:
    """Kubernetes' version order: GA before beta before alpha, then higher numbers first."""
    found = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not found:
        return (3, 0, 0, version)
    stage = {None: 0, "beta": 1, "alpha": 2}[found.group(2)]
    return (stage, -int(found.group(1)), -int(found.group(3) or 0), version)


def _groups(types: list[ResourceType]) -> dict[str, list[str]]:
    groups: dict[str, set[str]] = {}
    for resource in types:
        if resource.group:
            groups.setdefault(resource.group, set()).update(resource.versions)
    return {group: sorted(versions, key=version_priority) for group, versions in sorted(groups.items())}


def _group(name: str, versions: list[str]) -> dict:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def api_versions(host: str) -> dict:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }


def api_group_list(types: list[ResourceType]) -> dict:
    groups = [_group(name, versions) for name, versions in _groups(types).items()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(types: list[ResourceType], name: str) -> dict | None:
    versions = _groups(types).get(name)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def api_resource_list(types: list[ResourceType], group: str, version: str) -> dict | None:
    served = sorted(
        {id(r): r for r in types if r.group == group and version in r.versions}.values(),
        key=lambda r: r.plural,
    )
    if not served:
        return None
    resources = []
    for resource in served:
        entry = {
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": VERBS,
        }
        if resource.short_names:
            entry["shortNames"] = list(resource.short_names)
        if resource.categories:
            entry["categories"] = list(resource.categories)
        resources.append(entry)
        for sub in resource.subresources:
            sub_entry = {
                "name": f"{resource.plural}/{sub}",
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": ["get", "patch", "update"],
            }
            if sub == "scale":
                sub_entry |= {"kind": "Scale", "group": "autoscaling", "version": "v1"}
            resources.append(sub_entry)
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }
