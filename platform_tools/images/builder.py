"""Build and run images with whichever container tool the machine has.

Docker (with a running engine) or podman build and run as usual. Where neither can run
containers (no engine, no cgroups: this project's own machines), buildah builds with vfs
storage and chroot isolation, and runs commands in a working container from the image.
With no registry to pull from, the Debian base is made with debootstrap and committed
under the name the Dockerfiles use as FROM.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from platform_tools.images.models import IMAGES_DIR, REPO_ROOT, ImagesError

DEBIAN_IMAGE = "docker.io/library/debian:bookworm-slim"
STORAGE_CONF = """[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
"""


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class ContainerTool:
    """One of docker, podman or buildah, with the settings it needs here."""

    name: str
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def find(cls) -> ContainerTool:
        if shutil.which("docker") and _works(["docker", "info"]):
            return cls("docker")
        # buildah before podman: where there is no engine, podman often cannot run containers
        # (no cgroups), while buildah builds and runs with chroot isolation anywhere as root
        if shutil.which("buildah"):
            conf = IMAGES_DIR / ".build" / "storage.conf"
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(STORAGE_CONF)
            return cls("buildah", {"CONTAINERS_STORAGE_CONF": str(conf), "BUILDAH_ISOLATION": "chroot"})
        if shutil.which("podman") and _works(["podman", "info"]):
            return cls("podman")
        raise ImagesError(
            "no container tool: install docker (with its engine), podman, or buildah "
            "(here: apt-get install buildah debootstrap)"
        )

    def _run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        env = dict(os.environ, **self.env)
        return subprocess.run([self.name, *argv], env=env, check=False, **kwargs)

    def exists(self, reference: str) -> bool:
        verb = ["image", "inspect"] if self.name != "buildah" else ["inspect", "--type", "image"]
        return self._run([*verb, reference], capture_output=True).returncode == 0

    def build(self, dockerfile: Path, reference: str, build_args: dict[str, str]) -> None:
        argv = ["build"] if self.name != "buildah" else ["bud", "--isolation", "chroot", "--network", "host"]
        for key, value in build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        ca = Path(os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt"))
        if ca.is_file():  # this machine's CA bundle for pip inside the build, as a secret
            argv += ["--secret", f"id=pip-ca,src={ca}"]
        argv += ["-f", str(dockerfile), "-t", reference, str(REPO_ROOT)]
        if self._run(argv).returncode != 0:
            raise ImagesError(f"{dockerfile.parent.name}: the build failed (see the output above)")

    def run(self, reference: str, argv: list[str]) -> subprocess.CompletedProcess:
        """``argv`` in a container of ``reference``, its output captured."""
        if self.name != "buildah":
            return self._run(
                ["run", "--rm", "--network", "none", reference, *argv], capture_output=True, text=True
            )
        made = self._run(["from", "--pull-never", reference], capture_output=True, text=True)
        if made.returncode != 0:
            raise ImagesError(f"{reference}: cannot make a container: {made.stderr.strip()}")
        container = made.stdout.strip()
        try:
            return self._run(
                ["run", "--isolation", "chroot", container, "--", *argv], capture_output=True, text=True
            )
        finally:
            self._run(["rm", container], capture_output=True)

    def config(self, reference: str) -> dict:
        """The image's config: {"User", "Labels", "Env"} whichever tool built it."""
        import json

        if self.name == "buildah":
            done = self._run(["inspect", "--type", "image", reference], capture_output=True, text=True)
            config = json.loads(done.stdout)["OCIv1"]["config"] if done.returncode == 0 else {}
        else:
            done = self._run(
                ["image", "inspect", "--format", "{{json .Config}}", reference],
                capture_output=True,
                text=True,
            )
            config = json.loads(done.stdout) if done.returncode == 0 else {}
        return {
            key.capitalize(): config.get(key) or config.get(key.capitalize())
            for key in ("User", "Labels", "Env")
        }

    def size(self, reference: str) -> int:
        """The image's size in bytes (as the tool reports it)."""
        if self.name == "buildah":
            done = self._run(
                ["images", "--noheading", "--format", "{{.Size}}", reference], capture_output=True, text=True
            )
            return _bytes(done.stdout.strip().splitlines()[0] if done.stdout.strip() else "0")
        fmt = "{{.Size}}" if self.name == "docker" else "{{.ImageSize}}"
        done = self._run(["image", "inspect", "--format", fmt, reference], capture_output=True, text=True)
        return int(done.stdout.strip() or 0)

    def ensure_debian(self, suite: str) -> None:
        """The Debian base under DEBIAN_IMAGE; made with debootstrap when it cannot be pulled."""
        if self.exists(DEBIAN_IMAGE) or (
            self.name != "buildah" and self._run(["pull", DEBIAN_IMAGE]).returncode == 0
        ):
            return
        if not shutil.which("debootstrap"):
            raise ImagesError(f"{DEBIAN_IMAGE} cannot be pulled and debootstrap is not installed")
        with tempfile.TemporaryDirectory(prefix="parhelion-debian-") as scratch:
            rootfs = Path(scratch) / "rootfs"
            done = subprocess.run(["debootstrap", "--variant=minbase", suite, str(rootfs)], check=False)
            if done.returncode != 0:
                raise ImagesError(f"debootstrap of Debian {suite} failed")
            container = self._run(["from", "scratch"], capture_output=True, text=True).stdout.strip()
            try:
                steps = [
                    ["copy", container, f"{rootfs}/", "/"],
                    [
                        "config",
                        "--env",
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "--cmd",
                        "/bin/bash",
                        container,
                    ],
                    ["commit", container, DEBIAN_IMAGE],
                ]
                for step in steps:
                    if self._run(step).returncode != 0:
                        raise ImagesError(f"making {DEBIAN_IMAGE} failed at `buildah {step[0]}`")
            finally:
                self._run(["rm", container], capture_output=True)


def _bytes(text: str) -> int:
    """'1.23 GB' -> 1230000000 (the units buildah prints)."""
    match = re.match(r"^([0-9.]+)\s*([kKMGT]?B)$", text.strip())
    if not match:
        return 0
    scale = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[match.group(2)]
    return int(float(match.group(1)) * scale)
