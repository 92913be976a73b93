"""The process kubelet: a stand-in for the kubelet and container runtime of the rehearsal's nodes.

It watches the API stand-in for pods bound to its nodes and runs each container as a process
(tests/rehearsal/sandbox.py) with what a kubelet gives it: its image's files and user
(tests/rehearsal/images.py), its environment and volumes from the API (tests/rehearsal/pod_spec.py),
the service account token mount, an address and /etc/hosts of its own (tests/rehearsal/network.py).
It reports back as a kubelet does, in the pod's status: phase, podIP/hostIP, the Ready condition
from readiness probes, containerStatuses with restarts and exit codes; and Events on failure.
Deleting a pod (deletionTimestamp set by the API) sends SIGTERM to its processes, SIGKILL after
the grace period, and then removes the pod from the API.

Not emulated: liveness and startup probes, resource limits (requests and limits are only read
by the accounting service), image pulls, and host ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path

from tests.rehearsal.images import ImageCatalog
from tests.rehearsal.network import POD_NETWORK_DIR, HostsFile, PodNetwork
from tests.rehearsal.pod_spec import PodSpecError, container_env, run_as, service_variables, volume_files
from tests.rehearsal.pod_status import PodStatusReporting, RunningPod, now
from tests.rehearsal.sandbox import TMPFS, PidsCgroup, Sandbox

log = logging.getLogger(__name__)
SERVICE_ACCOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
MAX_GRACE = 10.0  # seconds; pods ask for up to 30, which would only slow the tests down


class ProcessKubelet(PodStatusReporting):
    """Runs the pods the scheduler stand-in binds to ``nodes``; one instance serves them all."""

    def __init__(
        self,
        store,
        network: PodNetwork,
        hosts: HostsFile,
        images: ImageCatalog,
        root: Path,
        nodes: list[str],
        api_ca: bytes,
        cluster_tag: str,
        stand_ins: dict | None = None,
    ):
        self.store, self.network, self.hosts, self.images = store, network, hosts, images
        self.root, self.nodes, self.api_ca = root, set(nodes), api_ca
        self.cgroup_root = f"parhelion-rehearsal-{cluster_tag}"
        #: image name -> factory(store, pod, address) of a server with start()/stop(), for
        #: images that cannot run here (traefik): the pod gets an address on this machine
        self.stand_ins = stand_ins or {}
        self.pods: dict[str, RunningPod] = {}
        self._task: asyncio.Task | None = None
        self._starting: set[str] = set()

    # -- the watch loop ---------------------------------------------------------------------
    async def start(self) -> None:
        queue = self.store.subscribe()
        for pod in self.store.list("Pod"):
            await self._consider(pod)
        self._task = asyncio.create_task(self._follow(queue))

    async def _follow(self, queue: asyncio.Queue) -> None:
        while True:
            event, obj = await queue.get()
            if obj.get("kind") in ("ConfigMap", "Secret") and event != "DELETED":
                try:
                    self._refresh_volumes(obj)
                except Exception:  # one pod's volume must not stop the kubelet
                    log.exception("kubelet: refreshing volumes of %s", obj["metadata"].get("name"))
                continue
            if obj.get("kind") != "Pod":
                continue
            try:
                await self._consider(obj, deleted=event == "DELETED")
            except Exception:
                log.exception("kubelet: handling %s of pod %s", event, obj["metadata"].get("name"))

    async def _consider(self, pod: dict, deleted: bool = False) -> None:
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        running = self.pods.get(key)
        if running and running.pod["metadata"]["uid"] != pod["metadata"]["uid"]:
            running = None  # a new pod of the same name; the old one is being stopped
        if deleted or pod["metadata"].get("deletionTimestamp"):
            if running and not running.stopping:
                running.stopping = True
                asyncio.create_task(self._stop(running, remove=not deleted))
            elif not running and not deleted:
                self.store.delete("Pod", pod["metadata"]["name"], pod["metadata"]["namespace"], grace=False)
            return
        if pod["spec"].get("nodeName") not in self.nodes or running or key in self._starting:
            return
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return
        self._starting.add(key)
        try:
            await self._start(pod)
        finally:
            self._starting.discard(key)

    async def stop(self) -> None:
        """Stops every pod's processes (the test is over) and the watch."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*(self._stop(p, remove=False, grace=2.0) for p in list(self.pods.values())))
        with contextlib.suppress(OSError):
            (PidsCgroup.ROOT / self.cgroup_root).rmdir()

    def logs(self, namespace: str, name: str) -> str:
        """Every container's output of pod ``name`` (for failure messages)."""
        folder = self.root / "pods" / f"{namespace}_{name}"
        return "\n".join(
            f"--- {log_file.name}\n{log_file.read_text(errors='replace')[-6000:]}"
            for log_file in sorted(folder.glob("*.log"))
        )

    # -- starting -----------------------------------------------------------------------------
    async def _start(self, pod: dict) -> None:
        meta = pod["metadata"]
        folder = self.root / "pods" / f"{meta['namespace']}_{meta['name']}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        stand_in = next(
            (f for image, f in self.stand_ins.items() if image in pod["spec"]["containers"][0]["image"]), None
        )
        netns, address = self.network.add_pod(meta["uid"], on_host=stand_in is not None)
        cgroup = PidsCgroup(f"{self.cgroup_root}/{meta['uid']}")
        cgroup.create()
        running = RunningPod(pod=pod, netns=netns, address=address, folder=folder, cgroup=cgroup)
        self.pods[running.key] = running
        pod["status"] = {"podIP": address, "podIPs": [{"ip": address}], "hostIP": self.network.gateway}
        containers = pod["spec"]["containers"]
        try:
            for init in pod["spec"].get("initContainers") or []:
                await asyncio.to_thread(self.images.resolve, init["image"])
                code = await self._run_to_completion(running, init)
                if code != 0:
                    raise PodSpecError(f"init container {init['name']} exited with {code}")
            for container in containers:  # an image's venv may take minutes to make: not in the loop
                await asyncio.to_thread(self.images.resolve, container["image"])
            sandboxes = [(c, self._sandbox(running, c)) for c in containers]
        except (PodSpecError, LookupError) as error:
            self._event(pod, "Warning", "Failed", str(error))
            self._report(running, phase="Pending", reason="CreateContainerConfigError", message=str(error))
            return
        started = now()
        if stand_in is not None:
            server = stand_in(self.store, pod, address)
            await server.start()
            running.stand_in = server
        for container, sandbox in sandboxes:
            if sandbox is None:  # an image a stand-in serves (traefik): "running", never a process
                running.states[container["name"]] = {"running": {"startedAt": started}}
                running.ready[container["name"]] = True
                continue
            await self._spawn(running, container, sandbox)
        self._report(running, phase="Running", started=started)
        for container, _ in sandboxes:
            running.tasks.append(asyncio.create_task(self._probe(running, container)))

    def _lookup(self, kind: str, name: str, namespace: str) -> dict | None:
        return self.store.get(kind, name, namespace)

    def _sandbox(self, running: RunningPod, container: dict) -> Sandbox | None:
        pod, meta = running.pod, running.pod["metadata"]
        image = self.images.resolve(container["image"])
        if image is None:
            return None
        services = [
            *self.store.list("Service", meta["namespace"]),
            *[s for s in self.store.list("Service", "default") if s["metadata"]["name"] == "kubernetes"],
        ]
        env = {**image.env, "HOSTNAME": meta["name"], "HOME": image.home}
        env.update(container_env(pod, container, self._lookup, service_variables(services)))
        uid, gid, groups = run_as(pod, container, image.user, image.group)
        mounts: dict[str, Path | str] = dict(image.binds)
        mounts[POD_NETWORK_DIR] = self.hosts.for_pod(running.key, running.address, meta["name"])
        read_only = {
            POD_NETWORK_DIR,
            *(path for path, source in image.binds.items() if isinstance(source, Path)),
        }
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
        for mount in container.get("volumeMounts") or []:
            folder = self._volume(running, volumes[mount["name"]], uid, fs_group)
            path = mount["mountPath"].rstrip("/") or "/"
            mounts[path] = folder / mount["subPath"] if mount.get("subPath") else folder
            if mount.get("readOnly"):
                read_only.add(path)
        if self._automount(pod) and SERVICE_ACCOUNT_PATH not in mounts:
            mounts[SERVICE_ACCOUNT_PATH] = self._service_account(running)
            read_only.add(SERVICE_ACCOUNT_PATH)
        workdir = container.get("workingDir") or image.workdir
        for writable in (image.home, workdir):
            if writable != "/" and not any(writable == m or writable.startswith(m + "/") for m in mounts):
                mounts[writable] = TMPFS  # the container layer is writable; its data dies with it
        argv = [a for a in image.argv(container.get("command"), container.get("args"))]
        from tests.rehearsal.pod_spec import expand

        argv = [expand(a, env) for a in argv]
        return Sandbox(
            argv=argv,
            env=env,
            mounts=mounts,
            read_only=read_only,
            user=uid,
            group=gid,
            groups=groups,
            workdir=workdir,
            netns=running.netns,
            etc_links={name: f"{POD_NETWORK_DIR}/{name}" for name in ("hosts", "resolv.conf")},
            cgroup=running.cgroup.path,
        )

    def _refresh_volumes(self, changed: dict) -> None:
        """A changed ConfigMap or Secret reaches the pods that mount it as a volume (not by
        subPath), as the kubelet's sync does (within a minute there, at once here)."""
        kind, name = changed["kind"], changed["metadata"]["name"]
        for running in list(self.pods.values()):
            if running.pod["metadata"]["namespace"] != changed["metadata"]["namespace"]:
                continue
            for volume, folder, fs_group in running.projected.values():
                sources = [volume, *((volume.get("projected") or {}).get("sources") or [])]
                names = {(s.get("configMap") or {}).get("name") for s in sources if "configMap" in s}
                names |= {
                    (s.get("secret") or {}).get("secretName") or (s.get("secret") or {}).get("name")
                    for s in sources
                    if "secret" in s
                }
                if name in names and kind in ("ConfigMap", "Secret"):
                    try:
                        _write_files(folder, volume_files(volume, running.pod, self._lookup), fs_group)
                    except PodSpecError as error:
                        log.warning("kubelet: %s: %s", running.key, error)

    def _automount(self, pod: dict) -> bool:
        if pod["spec"].get("automountServiceAccountToken") is not None:
            return bool(pod["spec"]["automountServiceAccountToken"])
        account = self.store.get(
            "ServiceAccount", pod["spec"].get("serviceAccountName", "default"), pod["metadata"]["namespace"]
        )
        return (account or {}).get("automountServiceAccountToken", True) is not False

    def _service_account(self, running: RunningPod) -> Path:
        folder = running.folder / "serviceaccount"
        folder.mkdir(exist_ok=True)
        meta, spec = running.pod["metadata"], running.pod["spec"]
        (folder / "token").write_text(
            f"stand-in:{meta['namespace']}:{spec.get('serviceAccountName', 'default')}"
        )
        (folder / "ca.crt").write_bytes(self.api_ca)
        (folder / "namespace").write_text(meta["namespace"])
        for path in folder.iterdir():
            path.chmod(0o644)
        return folder

    def _volume(self, running: RunningPod, volume: dict, uid: int, fs_group: int | None) -> Path:
        meta = running.pod["metadata"]
        files = volume_files(volume, running.pod, self._lookup)
        if files is not None:
            folder = running.folder / "volumes" / volume["name"]
            if not folder.exists():
                folder.mkdir(parents=True)
                _write_files(folder, files, fs_group)
            running.projected[volume["name"]] = (volume, folder, fs_group)
            return folder
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            found = self.store.get("PersistentVolumeClaim", claim, meta["namespace"])
            if found is None:
                raise PodSpecError(f'persistentvolumeclaim "{claim}" not found')
            folder = self.root / "volumes" / meta["namespace"] / claim
            fresh = not folder.exists()
            folder.mkdir(parents=True, exist_ok=True)
            if fresh:  # a new volume (the CSI driver's part), formatted for the pod mounting it first
                os.chown(folder, uid, fs_group if fs_group is not None else uid)
                bound = {
                    "phase": "Bound",
                    "accessModes": found["spec"].get("accessModes", ["ReadWriteOnce"]),
                    "capacity": {"storage": found["spec"]["resources"]["requests"]["storage"]},
                }
                self.store.patch(
                    "PersistentVolumeClaim", claim, meta["namespace"], {"status": bound}, subresource="status"
                )
            return folder
        if "emptyDir" in volume:
            folder = running.folder / "volumes" / volume["name"]
            folder.mkdir(parents=True, exist_ok=True)
            os.chown(folder, uid, fs_group if fs_group is not None else uid)
            return folder
        raise PodSpecError(f"volume {volume['name']!r}: this kind of volume is not emulated here")

    async def _spawn(self, running: RunningPod, container: dict, sandbox: Sandbox) -> None:
        output = open(running.folder / f"{container['name']}.log", "ab")  # noqa: SIM115 (the process keeps it)
        process = await asyncio.create_subprocess_exec(
            *sandbox.command(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
        output.close()
        running.processes[container["name"]] = process
        running.states[container["name"]] = {"running": {"startedAt": now()}}
        running.ready.setdefault(container["name"], False)
        running.tasks.append(asyncio.create_task(self._supervise(running, container, sandbox, process)))

    async def _run_to_completion(self, running: RunningPod, container: dict) -> int:
        sandbox = self._sandbox(running, container)
        if sandbox is None:
            return 0
        await self._spawn(running, container, sandbox)
        code = await running.processes.pop(container["name"]).wait()
        running.states.pop(container["name"], None)
        return code

    async def _supervise(self, running, container, sandbox, process) -> None:
        """Restarts a container that exits, as the pod's restartPolicy says."""
        name = container["name"]
        code = await process.wait()
        if running.stopping or name not in {c["name"] for c in running.pod["spec"]["containers"]}:
            return
        finished = now()
        running.ready[name] = False
        running.states[name] = {
            "terminated": {
                "exitCode": code,
                "finishedAt": finished,
                "reason": "Completed" if code == 0 else "Error",
            }
        }
        policy = running.pod["spec"].get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            running.restarts[name] = running.restarts.get(name, 0) + 1
            self._report(running, phase="Running")
            await asyncio.sleep(min(2 ** running.restarts[name], 10))
            if not running.stopping:
                await self._spawn(running, container, sandbox)
                self._report(running, phase="Running")
            return
        others = [s for n, s in running.states.items() if n != name]
        if all("terminated" in s for s in others):
            failed = any(s["terminated"]["exitCode"] for s in running.states.values())
            self._report(running, phase="Failed" if failed else "Succeeded")

    # -- stopping -----------------------------------------------------------------------------
    async def _stop(self, running: RunningPod, remove: bool, grace: float | None = None) -> None:
        running.stopping = True
        wanted = running.pod["spec"].get("terminationGracePeriodSeconds", 30)
        grace = min(wanted, MAX_GRACE) if grace is None else grace
        # the container's processes, not bwrap's: its exit would kill them at once
        running.cgroup.signal(signal.SIGTERM, spare=("bwrap",))
        deadline = asyncio.get_running_loop().time() + grace
        while (
            any(p.returncode is None for p in running.processes.values())
            and asyncio.get_running_loop().time() < deadline
        ):
            await asyncio.sleep(0.1)
        running.cgroup.signal(signal.SIGKILL)
        for process in running.processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        for _ in range(50):
            if not running.cgroup.pids():
                break
            await asyncio.sleep(0.1)
        for task in running.tasks:
            task.cancel()
        if running.stand_in is not None:
            await running.stand_in.stop()
        running.cgroup.remove()
        self.network.remove_pod(running.pod["metadata"]["uid"])
        if remove:  # kept when the test is over, for its failure message
            self.hosts.forget(running.key)
        if self.pods.get(running.key) is running:
            del self.pods[running.key]
        if remove:
            meta = running.pod["metadata"]
            with contextlib.suppress(Exception):
                self.store.delete("Pod", meta["name"], meta["namespace"], grace=False)


def _write_files(folder: Path, files: dict[str, tuple[bytes, int]], fs_group: int | None) -> None:
    """A ConfigMap's or Secret's keys as files, each replaced whole (a reader never sees half)."""
    for relative, (content, mode) in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = path.with_name(f".{path.name}.new")
        fresh.write_bytes(content)
        fresh.chmod(mode)
        if fs_group is not None:
            os.chown(fresh, 0, fs_group)
        os.replace(fresh, path)
    for stale in folder.iterdir():
        if stale.is_file() and stale.name not in {Path(r).parts[0] for r in files}:
            stale.unlink()
