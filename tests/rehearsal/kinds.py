"""Which kinds the API stand-in serves, found by URL (group, version, plural) or by kind.

Built-ins are there from the start; a CRD adds its kinds when it is created (or registered)
and takes them away when it is deleted, as kube-apiserver's apiextensions server does. Every
served version of a kind resolves to one ``ResourceType``: the stand-in keeps one object per
name whatever version a client asks for.
"""

from __future__ import annotations

from tests.rehearsal.errors import ApiError
from tests.rehearsal.resources import ResourceType, built_in_types, types_from_crd


class Kinds:
    def __init__(self):
        self._by_url: dict[tuple[str, str, str], ResourceType] = {}  # (group, version, plural)
        self._by_kind: dict[tuple[str, str], ResourceType] = {}  # (group, kind)
        for resource in built_in_types():
            self.add(resource)

    def add(self, resource: ResourceType) -> ResourceType:
        """Serve a type (more versions of a known kind join it); returns the served type."""
        served = self._by_kind.setdefault((resource.group, resource.kind), resource)
        if served is not resource:
            served.versions.extend(v for v in resource.versions if v not in served.versions)
        for version in resource.versions:
            self._by_url[(resource.group, version, resource.plural)] = served
        return served

    def add_crd(self, crd: dict) -> list[ResourceType]:
        return [self.add(resource) for resource in types_from_crd(crd)]

    def remove_crd(self, crd: dict) -> list[ResourceType]:
        """Stop serving a CRD's kinds; returns the types that were served."""
        removed = []
        for resource in types_from_crd(crd):
            served = self._by_kind.pop((resource.group, resource.kind), None)
            for version in resource.versions:
                self._by_url.pop((resource.group, version, resource.plural), None)
            if served is not None:
                removed.append(served)
        return removed

    def all(self) -> list[ResourceType]:
        """Each served kind once."""
        return list(self._by_kind.values())

    def at(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_url.get((group, version, plural))

    def of_kind(self, kind: str, api_version: str | None = None) -> ResourceType:
        """A kind by ``Kind`` (unique among groups), ``Kind.group`` or with its apiVersion."""
        if api_version is not None:
            group, _, version = api_version.rpartition("/")
            found = self._by_kind.get((group, kind))
            if found is None or version not in found.versions:
                raise ApiError(404, "NotFound", f'no matches for kind "{kind}" in version "{api_version}"')
            return found
        kind_name, _, group = kind.partition(".")
        matches = [r for (g, k), r in self._by_kind.items() if k == kind_name and (not group or g == group)]
        if len(matches) != 1:
            raise ApiError(404, "NotFound", f"no single kind {kind!r} is served ({len(matches)} match)")
        return matches[0]
