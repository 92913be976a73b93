"""images/images.yaml: the images, their CalVer tags, and where each reference must agree.

One file decides every image tag. The references derived from it (``registry/parhelion-NAME:TAG``)
are what platform.yaml's ``images:`` table, the chart's values and dask-gateway's image
option must name; :mod:`platform_tools.images.consistency` checks they do.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from ruamel.yaml import YAML

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES_DIR = REPO_ROOT / "images"
IMAGES_FILE = IMAGES_DIR / "images.yaml"
CALVER = re.compile(r"^(?P<year>20\d{2})\.(?P<month>0[1-9]|1[0-2])\.(?P<n>0|[1-9]\d*)$")

ImageName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*$")]


class ImagesError(ValueError):
    """A problem with an image, its files or its tag, naming the image."""


class Image(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: str = Field(description="CalVer YYYY.MM.N")
    description: str = ""
    from_: ImageName | None = Field(None, alias="from", description="The image this one builds on.")

    @model_validator(mode="after")
    def _calver(self) -> Image:
        if not CALVER.match(self.tag):
            raise ValueError(f"tag {self.tag!r} does not follow the scheme YYYY.MM.N (e.g. 2026.11.0)")
        return self


class ImagesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registry: str = Field(pattern=r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)*$")
    python: str = Field(pattern=r"^3\.\d+$")
    debian: str = "bookworm"
    images: dict[ImageName, Image] = Field(min_length=1)

    @model_validator(mode="after")
    def _bases_exist(self) -> ImagesFile:
        for name, image in self.images.items():
            if image.from_ is not None and image.from_ not in self.images:
                raise ValueError(f"images.{name}.from: no image {image.from_!r} in this file")
        return self

    def image(self, name: str) -> Image:
        if name not in self.images:
            raise ImagesError(f"unknown image {name!r} (images: {', '.join(self.images)})")
        return self.images[name]

    def repository(self, name: str) -> str:
        self.image(name)
        return f"{self.registry}/parhelion-{name}"

    def reference(self, name: str) -> str:
        return f"{self.repository(name)}:{self.image(name).tag}"

    def build_order(self, names: list[str] | None = None) -> list[str]:
        """Names with every image after the one it is built from."""
        ordered: list[str] = []

        def visit(name: str) -> None:
            image = self.image(name)
            if image.from_ and image.from_ not in ordered:
                visit(image.from_)
            if name not in ordered:
                ordered.append(name)

        for name in names or list(self.images):
            visit(name)
        return ordered


def load_images(path: Path = IMAGES_FILE) -> ImagesFile:
    try:
        data = YAML(typ="safe").load(path.read_text())
    except OSError as exc:
        raise ImagesError(f"{path}: cannot read: {exc}") from None
    try:
        return ImagesFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ImagesError(f"{path}: {problems}") from None


def next_tag(current: str, today: date) -> str:
    """The tag after ``current``: the next build this month, or the month's first."""
    match = CALVER.match(current)
    if match is None:
        raise ImagesError(f"tag {current!r} does not follow the scheme YYYY.MM.N")
    if (int(match["year"]), int(match["month"])) == (today.year, today.month):
        return f"{today.year}.{today.month:02d}.{int(match['n']) + 1}"
    return f"{today.year}.{today.month:02d}.0"
