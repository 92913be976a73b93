"""Prewarm on Kubernetes: the chart's placeholder pods, one per student, before a session.

A placeholder is a pod the size of a student's server at a priority below every real pod:
it makes Karpenter start the users' nodes ahead of 9:00, and the scheduler evicts it the
moment a student's server needs the room. `parhelion class prewarm NAME --kubernetes`
sizes them to the class's profile and scales them to the roster; `--stop` scales them
back to zero after the session's start (or a helm upgrade does, since the chart's value is 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from platform_tools.classes.course import class_of
from platform_tools.config import PlatformConfig


@dataclass(frozen=True)
class Placeholders:
    replicas: int
    cpu: str
    memory: str

    @classmethod
    def for_class(cls, config: PlatformConfig, name: str, release: bool = False) -> Placeholders:
        """One per student, the size of the class's profile; none once released."""
        group = class_of(config, name)
        profile = config.profiles[group.profiles[0]]
        replicas = 0 if release else len(group.members)
        return cls(replicas, f"{profile.cpu_guarantee:g}", f"{profile.mem_guarantee_gib:g}Gi")

    def patch(self) -> dict:
        resources = {"cpu": self.cpu, "memory": self.memory}
        container = {"name": "pause", "resources": {"requests": resources, "limits": resources}}
        return {"spec": {"replicas": self.replicas, "template": {"spec": {"containers": [container]}}}}


async def scale_placeholders(apps_api, namespace: str, statefulset: str, wanted: Placeholders) -> dict:
    """Patch the placeholders' StatefulSet (strategic merge: the container is matched by name)."""
    result = await apps_api.patch_namespaced_stateful_set(statefulset, namespace, wanted.patch())
    return result.to_dict() if hasattr(result, "to_dict") else result
