"""Run a rendered pod's container as a process, with its files where the pod mounts them.

No kubelet or container runtime runs here. This harness takes a Deployment (or any pod
template) from the rendered chart and lays out what a kubelet would: each volume mount's
content (ConfigMap and Secret keys as files, ``subPath`` files, ``emptyDir`` and claims as
empty folders), the container's environment (``value``, ``secretKeyRef``, ``configMapKeyRef``,
``fieldRef`` resolved from the same rendering), and the Service variables Kubernetes injects.
bubblewrap (Debian ``bubblewrap``) then binds the folders at the mount paths in a private
mount namespace, over a read-only view of this machine, so the process sees the pod's paths
and the host is never written. The image's packages come from the image's lock
(tests/images/venvs.py), put first on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.rehearsal.pod_spec import object_data, service_variables

BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
IMAGE_PREFIX = Path("/opt/parhelion")  # where the images keep their Python environment


def _named(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def service_environment(objects: list[dict]) -> dict[str, str]:
    """The ``<NAME>_SERVICE_HOST``/``_PORT`` variables Kubernetes gives every container (every
    Service at 127.0.0.1: the configload tier runs one pod at a time, in a namespace of its own)."""
    services = [o for o in objects if o["kind"] == "Service"]
    return service_variables([{**o, "spec": {**o["spec"], "clusterIP": "127.0.0.1"}} for o in services])


@dataclass
class PodLayout:
    """What the container of a rendered pod would see: argv, environment and mounts."""

    argv: list[str]
    env: dict[str, str]
    mounts: dict[str, Path] = field(default_factory=dict)  # mount path -> prepared folder or file

    @classmethod
    def of(
        cls,
        objects: list[dict],
        kind: str,
        name: str,
        root: Path,
        namespace: str = "parhelion",
        container: int = 0,
    ) -> PodLayout:
        named = _named(objects)
        pod = named[(kind, name)]["spec"]["template"]["spec"]
        spec = pod["containers"][container]
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        mounts: dict[str, Path] = {}
        for number, mount in enumerate(spec.get("volumeMounts") or []):
            volume = volumes[mount["name"]]
            folder = root / f"volume-{number}-{mount['name']}"
            folder.mkdir(parents=True)
            source = None
            if "configMap" in volume:
                source = named[("ConfigMap", volume["configMap"]["name"])]
            elif "secret" in volume:
                source = named[("Secret", volume["secret"]["secretName"])]
            if source is not None:
                for key, value in object_data(source).items():
                    (folder / key).write_bytes(value)
            path = mount["mountPath"].rstrip("/") or "/"
            mounts[path] = folder / mount["subPath"] if mount.get("subPath") else folder
        env = service_environment(objects)
        for item in spec.get("env") or []:
            env[item["name"]] = cls._value(item, named, namespace, name)
        argv = [*(spec.get("command") or []), *(spec.get("args") or [])]
        return cls(argv=argv, env=env, mounts=mounts)

    @staticmethod
    def _value(item: dict, named: dict, namespace: str, pod: str) -> str:
        if "value" in item:
            return str(item["value"])
        source = item["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            return object_data(named[("Secret", ref["name"])])[ref["key"]].decode()
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            return object_data(named[("ConfigMap", ref["name"])])[ref["key"]].decode()
        field_path = source["fieldRef"]["fieldPath"]
        return {"metadata.namespace": namespace, "metadata.name": f"{pod}-0", "status.podIP": "127.0.0.1"}[
            field_path
        ]

    def command(self, venv: Path, argv: list[str] | None = None, unshare_net: bool = True) -> list[str]:
        """bwrap argv running ``argv`` (default: the container's) with this layout.

        Mount points that do not exist on this machine are made inside a tmpfs laid over their
        nearest existing parent, whose own entries are bound back read-only: nothing on the host
        is created or changed. ``unshare_net``: a network namespace of its own (loopback only), so
        a server listening on 0.0.0.0, as pods do, is reachable from nowhere else.
        """
        args = [BWRAP, "--die-with-parent", "--dev-bind", "/", "/"]
        if unshare_net:
            args.append("--unshare-net")
        mounts = {**self.mounts, str(IMAGE_PREFIX): venv}  # the image's packages where it has them
        covered: set[str] = set()
        for target in sorted(mounts, key=lambda p: p.count("/")):
            parent = Path(target).parent
            while not parent.exists():
                parent = parent.parent
            missing = not Path(target).exists()
            if missing and str(parent) not in covered and str(parent) != "/":
                args += ["--tmpfs", str(parent)]
                for entry in sorted(parent.iterdir()):
                    args += (
                        ["--ro-bind", str(entry), str(entry)]
                        if not entry.is_symlink()
                        else ["--symlink", os.readlink(entry), str(entry)]
                    )
                covered.add(str(parent))
            args += ["--bind", str(mounts[target]), target]
        env = {
            "VIRTUAL_ENV": str(IMAGE_PREFIX),
            "PATH": f"{IMAGE_PREFIX / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            **self.env,
        }
        args += ["--clearenv"]
        for key, value in env.items():
            args += ["--setenv", key, value]
        argv = argv or self.argv
        if argv and argv[0] in ("python", "python3"):
            argv = [str(IMAGE_PREFIX / "bin" / "python"), *argv[1:]]
        return [*args, "--chdir", "/", "--", *argv]

    def run(
        self, venv: Path, argv: list[str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(venv, argv), capture_output=True, text=True, timeout=timeout, check=False
        )
