"""What each container image would put on a pod's filesystem, without a container runtime.

The process kubelet cannot pull or unpack images. For Parhelion's own images it uses what the
image build makes from the same inputs: the image's lock installed into a venv
(tests/images/venvs.py) bound at the image's path (/opt/parhelion), the files its Dockerfile
COPYs from this repository, and its USER, WORKDIR and ENV. Upstream images whose content is
already on this machine in another form are named substitutions, each said here:

* ``ghcr.io/dask/dask-gateway-server`` (the dask-gateway controller): the hub image's venv, which
  holds the same dask-gateway-server release (images/hub/requirements.txt pins it);
* ``quay.io/jupyterhub/configurable-http-proxy``: the same proxy from npm (node_modules), run by
  this machine's node;
* ``registry.k8s.io/pause``: ``sleep infinity``.

Traefik has no substitute here (no binary in any registry this machine reaches): its pods are
never started; tests/rehearsal/traefik.py serves its Service instead.

``tini --`` (the images' ENTRYPOINT) is dropped: each pod runs in a PID namespace of its own,
whose init reaps zombies as tini would.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.images.venvs import image_venv
from tests.platform import REPO_ROOT
from tests.rehearsal.sandbox import EMPTY

IMAGE_PREFIX = "/opt/parhelion"
NODE_MODULES = REPO_ROOT / "node_modules"
CHP_MODULES = "/srv/configurable-http-proxy/node_modules"  # where the proxy's image has them
OWN_IMAGES = ("hub", "base", "helio")
#: Images that have no process here at all: their Services are served by a stand-in.
NOT_RUN = ("docker.io/traefik", "traefik")


@dataclass
class Image:
    """A container image as the kubelet needs it: its files, user, working dir and entry point."""

    name: str
    binds: dict[str, Path | str] = field(default_factory=dict)  # container path -> host path or EMPTY
    env: dict[str, str] = field(default_factory=dict)
    user: int = 0
    group: int = 0
    workdir: str = "/"
    home: str = "/root"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)

    def argv(self, command: list[str] | None, args: list[str] | None) -> list[str]:
        """Kubernetes' rule: ``command`` replaces ENTRYPOINT (and drops CMD), ``args`` replaces CMD."""
        if command:
            return [*command, *(args or [])]
        return [*self.entrypoint, *(args if args else self.cmd)]


def interpreter_binds() -> dict[str, Path | str]:
    """The Python the image venvs link to, where they link to it, readable by the pod's user.

    A venv's ``bin/python`` links to the interpreter that made it (here, maybe under /root,
    which other users cannot enter): that prefix is bound at its own path, and the folder
    that is closed to others is replaced by an empty tmpfs around it. Nothing, when every
    folder above it is open.
    """
    prefix = Path(os.path.realpath(sys.executable)).parents[1]
    for folder in reversed(prefix.parents):
        if not folder.stat().st_mode & stat.S_IXOTH:  # nothing else of that folder is shown
            return {str(prefix): prefix, str(folder): EMPTY}
    # Reachable where it is (Debian's /usr/bin/python3.11: the prefix is /usr): the machine's
    # read-only view already shows it, and binding /usr over it would keep the pod's mount
    # points under /usr/local from being made.
    return {}


def _dockerfile_image(name: str, scratch: Path) -> Image:
    """One of Parhelion's images, from its Dockerfile and its lock's venv."""
    text = (REPO_ROOT / "images" / name / "Dockerfile").read_text()
    base = re.search(r"^(?:FROM|ARG BASE_IMAGE=)\s*\S*parhelion-(\w+)", text, re.MULTILINE)
    image = _dockerfile_image(base.group(1), scratch) if base else Image(name=name)
    image.name = name
    image.binds[IMAGE_PREFIX] = image_venv(name, scratch)
    image.binds.update(interpreter_binds())
    for source, target in re.findall(r"^COPY (hub_config/\S+) (\S+)$", text, re.MULTILINE):
        image.binds[target] = REPO_ROOT / source
    for block in re.findall(r"^ENV\s+((?:.*\\\n)*.*)$", text, re.MULTILINE):
        for key, value in re.findall(r"(\w+)=(\S+)", block.replace("\\\n", " ")):
            image.env[key] = value.replace("${VIRTUAL_ENV}", IMAGE_PREFIX)
    if "useradd" in text and "jovyan" in text:
        image.home = "/home/jovyan"
    for user in re.findall(r"^USER\s+(\d+)", text, re.MULTILINE)[-1:]:
        image.user = image.group = int(user)
    for workdir in re.findall(r"^WORKDIR\s+(\S+)", text, re.MULTILINE)[-1:]:
        image.workdir = workdir
    for entrypoint in re.findall(r"^ENTRYPOINT\s+(\[.*\])", text, re.MULTILINE)[-1:]:
        image.entrypoint = [a for a in json.loads(entrypoint) if a not in ("tini", "--")]
    for cmd in re.findall(r"^CMD\s+(\[.*\])", text, re.MULTILINE)[-1:]:
        image.cmd = json.loads(cmd)
    return image


class ImageCatalog:
    """Image references (as pods name them) to what the kubelet runs; each venv made once."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self._own: dict[str, Image] = {}
        self._lock = threading.Lock()

    def resolve(self, reference: str) -> Image | None:
        """The image for ``reference``; None for an image that is served by a stand-in instead."""
        repository = reference.rsplit("@", 1)[0].rsplit(":", 1)[0]
        if repository.startswith(NOT_RUN):
            return None
        own = re.search(r"parhelion-(\w+)$", repository)
        if own and own.group(1) in OWN_IMAGES:
            return self._parhelion(own.group(1))
        if repository.endswith("/dask-gateway-server"):
            hub = self._parhelion("hub")
            return Image(
                name="dask-gateway-server", binds=dict(hub.binds), env=dict(hub.env), user=1000, group=1000
            )
        if repository.endswith("/configurable-http-proxy"):
            return Image(
                name="configurable-http-proxy",
                binds={CHP_MODULES: NODE_MODULES.resolve()},
                env={"PATH": f"{CHP_MODULES}/.bin:/usr/local/bin:/usr/bin:/bin"},
                user=65534,
                group=65534,
                workdir="/srv/configurable-http-proxy",
                cmd=["configurable-http-proxy"],
            )
        if repository.endswith("/pause"):
            return Image(name="pause", user=65535, group=65535, cmd=["sleep", "infinity"])
        raise LookupError(f"the process kubelet has no stand-in for image {reference!r}")

    def _parhelion(self, name: str) -> Image:
        with self._lock:  # the kubelet resolves in worker threads; a venv is made once
            return self._parhelion_unlocked(name)

    def _parhelion_unlocked(self, name: str) -> Image:
        if name not in self._own:
            self._own[name] = _dockerfile_image(name, self.scratch)
        own = self._own[name]
        return Image(**{**own.__dict__, "binds": dict(own.binds), "env": dict(own.env)})
