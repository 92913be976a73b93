"""The three PATCH formats of the Kubernetes API, for the API stand-in.

JSON merge patch (RFC 7386) and JSON patch (RFC 6902, via ``jsonpatch``) are exact. Strategic
merge patch is a GENERIC APPROXIMATION: the real one reads per-field merge keys and strategies
from the Go types, which a stand-in does not have. Here a list merges element by element on
a merge key (the known keys in ``MERGE_KEYS``, otherwise ``name`` when every element of the
patch has one) and is replaced otherwise; ``$patch: delete`` (in a list element) and
``$patch: replace`` (in a map) are honoured, ``$deleteFromPrimitiveList/<field>`` removes
values, and the other ``$`` directives (``$setElementOrder``, ``$retainKeys``) are ignored.
That covers what Parhelion, KubeSpawner and kubernetes.core send (containers merged by name,
replicas set, conditions merged by type); primitive lists with a merge strategy (finalizers)
are replaced rather than unioned.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from tests.rehearsal.errors import ApiError

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = {"merge": MERGE, "strategic": STRATEGIC, "json": JSON_PATCH}

# Lists the real strategic merge keys on something other than `name` (or where `name` is absent).
MERGE_KEYS = {
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "conditions": "type",
    "addresses": "type",
    "hostAliases": "ip",
    "ownerReferences": "uid",
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_key(field: str, items: list) -> str | None:
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    if field == "ports":  # a container's ports merge on containerPort, a Service's on port
        return "containerPort" if all("containerPort" in item for item in items) else "port"
    key = MERGE_KEYS.get(field, "name")
    return key if all(key in item for item in items) else None


def _merge_list(field: str, existing: list, patch: list) -> list:
    key = _merge_key(field, patch)
    if key is None or not isinstance(existing, list):
        return [_without_directives(item) for item in patch]
    result = copy.deepcopy(existing)
    for item in patch:
        position = next(
            (i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None
        )
        if item.get("$patch") == "delete":
            if position is not None:
                del result[position]
        elif position is None:
            result.append(_without_directives(item))
        else:
            result[position] = strategic_merge_patch(result[position], item)
    return result


def _without_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_without_directives(v) for v in value]
    return copy.deepcopy(value)


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """The approximation the module docstring describes."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return _without_directives(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
        elif key.startswith("$"):
            continue
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = strategic_merge_patch(result.get(key), value)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = value
    return result


def apply_patch(obj: dict, body: Any, content_type: str) -> dict:
    """``obj`` with the patch applied (a new dict); content types as the API names them."""
    if content_type == MERGE:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
        return merge_patch(obj, body)
    if content_type == STRATEGIC:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "a strategic merge patch must be a JSON object")
        return strategic_merge_patch(obj, body)
    if content_type == JSON_PATCH:
        try:
            return jsonpatch.apply_patch(copy.deepcopy(obj), body)
        except jsonpatch.JsonPatchTestFailed as error:
            raise ApiError(422, "Invalid", f"the server rejected our request: {error}") from error
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as error:
            raise ApiError(422, "Invalid", f"the server rejected our request: {error}") from error
    if content_type == APPLY:
        raise ApiError(415, "UnsupportedMediaType", "server-side apply is not served by this stand-in")
    raise ApiError(
        415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}"
    )
