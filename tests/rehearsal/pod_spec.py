"""A pod's spec read as a kubelet reads it: environment, volumes and users, from the API.

Pure functions over the pod and the objects it names (fetched through ``lookup``), so the
rules (``$(VAR)`` expansion, fieldRef paths, Kubernetes' Service variables, volume contents)
are tested without starting anything.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable

from platform_tools.accounting.kubernetes_sources import quantity  # the meter's own reading

Lookup = Callable[[str, str, str], dict | None]  # (kind, name, namespace) -> object or None


class PodSpecError(Exception):
    """What a real kubelet reports as CreateContainerConfigError (a missing Secret key, ...)."""


def object_data(obj: dict) -> dict[str, bytes]:
    """A ConfigMap's or Secret's keys as bytes (Secret data is base64)."""
    out = {}
    for key, value in (obj.get("data") or {}).items():
        out[key] = base64.b64decode(value) if obj["kind"] == "Secret" else str(value).encode()
    for key, value in (obj.get("binaryData") or {}).items():
        out[key] = base64.b64decode(value)
    # stringData wins over data, as the API server merges it (the stand-in keeps it as written)
    out |= {k: v.encode() for k, v in (obj.get("stringData") or {}).items()}
    return out


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` references: known variables expand, ``$$`` escapes, others stay."""

    def one(match: re.Match) -> str:
        if match.group(0).startswith("$$"):
            return match.group(0)[1:]
        name = match.group(1)
        return env.get(name, match.group(0))

    return re.sub(r"\$\$\([^)]*\)|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", one, text)


def service_variables(services: list[dict]) -> dict[str, str]:
    """``<NAME>_SERVICE_HOST``/``_PORT`` (and per-port) variables for the namespace's Services."""
    env = {}
    for service in services:
        address = service["spec"].get("clusterIP")
        if not address or address == "None":
            continue
        prefix = re.sub(r"[^A-Z0-9]", "_", service["metadata"]["name"].upper())
        ports = service["spec"].get("ports") or []
        env[f"{prefix}_SERVICE_HOST"] = address
        if ports:
            env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{re.sub(r'[^A-Z0-9]', '_', port['name'].upper())}"] = str(
                    port["port"]
                )
    return env


def field_value(pod: dict, path: str) -> str:
    """A ``fieldRef`` path of the pod (``metadata.labels['x']`` included)."""
    keyed = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if keyed:
        return str((pod["metadata"].get(keyed.group(1)) or {}).get(keyed.group(2), ""))
    value = pod
    for part in path.split("."):
        value = (value or {}).get(part)
    if value is None:
        raise PodSpecError(f"fieldRef {path!r} has no value in pod {pod['metadata']['name']}")
    return str(value)


def resource_value(container: dict, ref: dict) -> str:
    """A ``resourceFieldRef`` (limits.memory, requests.cpu...) in its divisor's units, rounded up."""
    section, name = ref["resource"].split(".", 1)
    resources = container.get("resources") or {}
    raw = (resources.get(section) or {}).get(name) or (resources.get("limits") or {}).get(name)
    if raw is None:
        raise PodSpecError(f"resourceFieldRef {ref['resource']!r} is not set on {container['name']}")
    return str(math.ceil(quantity(raw) / quantity(ref.get("divisor", "1"))))


def container_env(pod: dict, container: dict, lookup: Lookup, services: dict[str, str]) -> dict[str, str]:
    """The container's environment in the order Kubernetes builds it."""
    namespace = pod["metadata"]["namespace"]
    env = dict(services)
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef") or source.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        obj = lookup(kind, ref["name"], namespace)
        if obj is None:
            if ref.get("optional"):
                continue
            raise PodSpecError(f"{kind.lower()} {ref['name']!r} not found")
        for key, value in object_data(obj).items():
            env[source.get("prefix", "") + key] = value.decode()
    for item in container.get("env") or []:
        if "valueFrom" not in item:
            env[item["name"]] = expand(str(item.get("value", "")), env)
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            env[item["name"]] = field_value(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            env[item["name"]] = resource_value(container, source["resourceFieldRef"])
        else:
            kind = "Secret" if "secretKeyRef" in source else "ConfigMap"
            ref = source.get("secretKeyRef") or source["configMapKeyRef"]
            obj = lookup(kind, ref["name"], namespace)
            data = object_data(obj) if obj else {}
            if ref["key"] in data:
                env[item["name"]] = data[ref["key"]].decode()
            elif not ref.get("optional"):
                raise PodSpecError(f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}")
    return env


def volume_files(volume: dict, pod: dict, lookup: Lookup) -> dict[str, tuple[bytes, int]] | None:
    """Files (relative path -> content, mode) of a configMap/secret/projected/downwardAPI volume.

    None for volumes that are folders, not files (emptyDir, persistentVolumeClaim).
    """
    namespace = pod["metadata"]["namespace"]

    def source_files(kind: str, source: dict, default_mode: int) -> dict[str, tuple[bytes, int]]:
        name = source.get("name") or source.get("secretName")
        obj = lookup(kind, name, namespace)
        if obj is None:
            if source.get("optional"):
                return {}
            raise PodSpecError(f'{kind.lower()} "{name}" not found')
        data = object_data(obj)
        if not source.get("items"):
            return {key: (value, default_mode) for key, value in data.items()}
        files = {}
        for item in source["items"]:
            if item["key"] not in data:
                raise PodSpecError(f"{kind} {name} has no key {item['key']!r}")
            files[item["path"]] = (data[item["key"]], item.get("mode", default_mode))
        return files

    mode = volume.get("defaultMode", 0o644)
    if "configMap" in volume:
        return source_files("ConfigMap", volume["configMap"], volume["configMap"].get("defaultMode", 0o644))
    if "secret" in volume:
        return source_files("Secret", volume["secret"], volume["secret"].get("defaultMode", 0o644))
    if "projected" in volume:
        files: dict[str, tuple[bytes, int]] = {}
        mode = volume["projected"].get("defaultMode", 0o644)
        for source in volume["projected"].get("sources") or []:
            if "configMap" in source:
                files.update(source_files("ConfigMap", source["configMap"], mode))
            elif "secret" in source:
                files.update(source_files("Secret", source["secret"], mode))
            elif "downwardAPI" in source:
                files.update(_downward(pod, source["downwardAPI"], mode))
        return files
    if "downwardAPI" in volume:
        return _downward(pod, volume["downwardAPI"], mode)
    return None


def _downward(pod: dict, source: dict, mode: int) -> dict[str, tuple[bytes, int]]:
    return {
        item["path"]: (field_value(pod, item["fieldRef"]["fieldPath"]).encode(), item.get("mode", mode))
        for item in source.get("items") or []
        if "fieldRef" in item
    }


def run_as(pod: dict, container: dict, image_user: int, image_group: int) -> tuple[int, int, list[int]]:
    """(uid, gid, supplementary groups): the container's securityContext over the pod's over the image's."""
    pod_context = pod["spec"].get("securityContext") or {}
    context = {**pod_context, **(container.get("securityContext") or {})}
    uid = context.get("runAsUser", image_user)
    gid = context.get("runAsGroup", image_group)
    groups = list(pod_context.get("supplementalGroups") or [])
    if pod_context.get("fsGroup") is not None:
        groups.append(pod_context["fsGroup"])
    if context.get("runAsNonRoot") and uid == 0:
        raise PodSpecError("container has runAsNonRoot and image will run as root")
    return uid, gid, groups
