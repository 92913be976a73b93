"""What the process kubelet tells the API about a pod: readiness, status and events.

Readiness comes from the containers' readinessProbes (httpGet and tcpSocket, against the pod's
own address, at most PROBE_PERIOD_CAP apart; exec probes count as passing), status is written
as a kubelet writes it (phase, conditions, containerStatuses with restarts, exit codes and the
image), and failures to start become Events that KubeSpawner shows to the person waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.rehearsal.resources import now
from tests.rehearsal.sandbox import PidsCgroup

PROBE_PERIOD_CAP = 1.0  # probes run at most this far apart (the chart asks for 10 s)


@dataclass
class RunningPod:
    pod: dict
    netns: str | None
    address: str
    folder: Path
    cgroup: PidsCgroup
    tasks: list[asyncio.Task] = field(default_factory=list)
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    ready: dict[str, bool] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    states: dict[str, dict] = field(default_factory=dict)
    stopping: bool = False
    stand_in: object = None  # the server standing in for this pod's image, if any
    projected: dict[str, tuple] = field(default_factory=dict)  # volume name -> (volume, folder, fsGroup)

    @property
    def key(self) -> str:
        return f"{self.pod['metadata']['namespace']}/{self.pod['metadata']['name']}"


class PodStatusReporting:
    """The kubelet's reporting half; ``self.store`` is the API stand-in."""

    # -- readiness ----------------------------------------------------------------------------
    async def _probe(self, running: RunningPod, container: dict) -> None:
        name, probe = container["name"], container.get("readinessProbe")
        if probe is None or name not in running.processes:
            if name in running.processes:
                running.ready[name] = True
                self._report(running, phase="Running")
            return
        await asyncio.sleep(min(probe.get("initialDelaySeconds", 0), PROBE_PERIOD_CAP))
        period = min(probe.get("periodSeconds", 10), PROBE_PERIOD_CAP)
        async with aiohttp.ClientSession() as session:
            while not running.stopping:
                ok = await self._probe_once(session, running, container, probe)
                alive = name in running.processes and running.processes[name].returncode is None
                if (ok and alive) != running.ready.get(name):
                    running.ready[name] = ok and alive
                    self._report(running, phase="Running")
                await asyncio.sleep(period if running.ready.get(name) else 0.2)

    async def _probe_once(self, session, running, container, probe) -> bool:
        def port_of(port) -> int:
            if isinstance(port, int) or str(port).isdigit():
                return int(port)
            return next(p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port)

        timeout = aiohttp.ClientTimeout(total=probe.get("timeoutSeconds", 1) + 1)
        try:
            if "httpGet" in probe:
                get = probe["httpGet"]
                url = f"http://{running.address}:{port_of(get['port'])}{get.get('path', '/')}"
                async with session.get(url, timeout=timeout, allow_redirects=False) as answer:
                    return 200 <= answer.status < 400
            if "tcpSocket" in probe:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(running.address, port_of(probe["tcpSocket"]["port"])), 2
                )
                writer.close()
                return True
        except (TimeoutError, OSError, aiohttp.ClientError):
            return False
        return True  # exec probes: not emulated, taken as passing

    # -- reporting ----------------------------------------------------------------------------
    def _report(self, running: RunningPod, phase: str, reason: str = "", message: str = "", started=None):
        pod = running.pod
        ready = bool(running.ready) and all(running.ready.values()) and phase == "Running"
        statuses = [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": f"stand-in://{c['image']}",
                "containerID": f"process://{pod['metadata']['uid']}/{c['name']}",
                "ready": running.ready.get(c["name"], False),
                "restartCount": running.restarts.get(c["name"], 0),
                "started": "running" in running.states.get(c["name"], {}),
                "state": running.states.get(c["name"])
                or {"waiting": {"reason": reason or "ContainerCreating"}},
            }
            for c in pod["spec"]["containers"]
        ]
        status = {
            **pod["status"],
            "phase": phase,
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": str(ready)},
                {"type": "Ready", "status": str(ready), "lastTransitionTime": now()},
            ],
            "containerStatuses": statuses,
        }
        if started:
            status["startTime"] = started
        if reason:
            status["reason"], status["message"] = reason, message
        pod["status"] = status
        meta = pod["metadata"]
        with contextlib.suppress(Exception):  # the pod may be gone already
            self.store.patch("Pod", meta["name"], meta["namespace"], {"status": status}, subresource="status")

    def _event(self, pod: dict, kind: str, reason: str, message: str) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(Exception):
            self.store.create(
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                    "involvedObject": {
                        "kind": "Pod",
                        "name": meta["name"],
                        "namespace": meta["namespace"],
                        "uid": meta["uid"],
                    },
                    "type": kind,
                    "reason": reason,
                    "message": message,
                    "firstTimestamp": now(),
                    "lastTimestamp": now(),
                    "source": {"component": "kubelet"},
                }
            )
