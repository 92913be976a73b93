"""images.yaml, the Dockerfiles, the locks and every place a tag is named: checked offline."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from platform_tools.images import consistency, locks, service
from platform_tools.images.models import IMAGES_DIR, REPO_ROOT, Image, ImagesError, load_images, next_tag
from tests.platform import run_parhelion

pytestmark = pytest.mark.unit
IMAGES = load_images()


def test_the_repository_is_consistent():
    assert service.check(IMAGES) == []  # hadolint, Dockerfiles, locks, tags, versions


def test_build_order_puts_a_base_first():
    assert IMAGES.build_order(["helio"]) == ["base", "helio"]
    assert IMAGES.reference("helio") == "ghcr.io/parhelion-platform/parhelion-helio:2026.11.0"


@pytest.mark.parametrize("tag", ["v1", "2026.13.0", "2026.1.0", "26.11.0", "2026.11.01"])
def test_tags_follow_calver(tag):
    with pytest.raises(ValueError, match=f"tag '{tag}' does not follow the scheme YYYY.MM.N"):
        Image(tag=tag)


def test_next_tag():
    assert next_tag("2026.11.0", date(2026, 11, 21)) == "2026.11.1"
    assert next_tag("2026.11.7", date(2026, 12, 1)) == "2026.12.0"


def test_bad_images_file_names_the_image(tmp_path):
    path = tmp_path / "images.yaml"
    path.write_text(
        (IMAGES_DIR / "images.yaml")
        .read_text()
        .replace("tag: 2026.11.0\n    from: base", "tag: latest\n    from: base")
    )
    with pytest.raises(ImagesError, match=r"images.yaml: images.helio: .*tag 'latest' does not follow"):
        load_images(path)


def test_unknown_image_is_named():
    with pytest.raises(ImagesError, match=r"unknown image 'nope' \(images: hub, base, helio\)"):
        IMAGES.reference("nope")
    done = run_parhelion("images", "test", "nope")
    assert done.returncode == 1
    assert "parhelion images: unknown image 'nope' (images: hub, base, helio)" in done.stderr


@pytest.fixture
def images_copy(tmp_path, monkeypatch):
    """A copy of images/ that checks read instead of the real one."""
    copy = tmp_path / "images"
    shutil.copytree(IMAGES_DIR, copy, ignore=shutil.ignore_patterns(".build"))
    monkeypatch.setattr(locks, "IMAGES_DIR", copy)
    return copy


def test_a_lock_out_of_date_with_requirements_in_is_named(images_copy):
    requirements = images_copy / "base" / "requirements.in"
    requirements.write_text(requirements.read_text() + "zarr>=99\n")
    problems = locks.lock_problems("base")
    stale = (
        "images/base/requirements.txt: compiled from another requirements.in; "
        "run `parhelion images lock base`"
    )
    assert stale in problems
    assert "images/base/requirements.txt: zarr is in requirements.in but not in the lock" in problems
    # helio includes base's requirements.in, so its lock is out of date too
    assert any(
        p.startswith("images/helio/requirements.txt: compiled from another")
        for p in locks.lock_problems("helio")
    )


def test_a_lock_that_breaks_the_shared_versions_is_named(images_copy):
    lock = images_copy / "helio" / "requirements.txt"
    lock.write_text(lock.read_text().replace("\ndistributed==2026.8.0", "\ndistributed==2025.1.0"))
    problems = consistency.lock_version_problems(IMAGES)
    assert problems == [
        "images/helio/requirements.txt: distributed==2025.1.0, but the platform needs 2026.8.0"
    ]


def test_a_dockerfile_out_of_step_is_named(images_copy, monkeypatch):
    monkeypatch.setattr(service, "image_dir", lambda name: images_copy / name)
    dockerfile = images_copy / "helio" / "Dockerfile"
    text = dockerfile.read_text().replace("FROM ${BASE_IMAGE}", "FROM docker.io/library/python:3.11")
    dockerfile.write_text(text.replace("USER 1000\n", ""))
    problems = service.dockerfile_problems(IMAGES, "helio")
    assert (
        "images/helio/Dockerfile: images.yaml says it builds from base, but it is not FROM ${BASE_IMAGE}"
        in problems
    )
    assert "images/helio/Dockerfile: does not end as the non-root user (USER 1000)" in problems


def test_references_that_disagree_are_named(tmp_path, example_text):
    platform = tmp_path / "platform.yaml"
    platform.write_text(
        example_text.replace("parhelion-helio:2026.11.0", "parhelion-helio:2026.10.3").replace(
            "parhelion-base:2026.11.0", "parhelion-basis:2026.11.0"
        )
    )
    problems = consistency.reference_problems(IMAGES, [platform])
    line = next(i for i, text in enumerate(platform.read_text().splitlines(), 1) if "2026.10.3" in text)
    assert f"{platform}:{line}: parhelion-helio:2026.10.3, but images/images.yaml says 2026.11.0" in problems
    assert any("unknown image parhelion-basis (images: hub, base, helio)" in p for p in problems)


def test_bump_moves_the_tag_everywhere(tmp_path, example_text):
    images_file = tmp_path / "images.yaml"
    images_file.write_text((IMAGES_DIR / "images.yaml").read_text())
    platform = tmp_path / "platform.yaml"
    platform.write_text(example_text)
    old, new = service.bump("helio", date(2026, 11, 21), images_file, [platform])
    assert (old, new) == ("2026.11.0", "2026.11.1")
    assert load_images(images_file).images["helio"].tag == "2026.11.1"
    assert "# Parhelion's container images" in images_file.read_text()  # comments kept
    assert "parhelion-helio:2026.11.1" in platform.read_text()
    assert "parhelion-base:2026.11.0" in platform.read_text()  # other images untouched
    assert consistency.reference_problems(load_images(images_file), [platform]) == []


def test_the_example_platform_runs_dask_on_a_parhelion_image():
    from platform_tools.config import load_platform

    platform = load_platform(REPO_ROOT / "hub_config" / "platform.local.yaml")
    assert platform.dask_image == IMAGES.reference("helio")


def test_the_notebook_image_has_git_for_class_materials():
    """nbgitpuller (the materials' postStart hook on Kubernetes, and nbgitpuller links) runs
    the git command: debian:bookworm-slim has none, so the base image must install it."""
    import re

    text = (IMAGES_DIR / "base" / "Dockerfile").read_text()
    installs = re.findall(r"apt-get install[^&]*", text.replace("\\\n", " "))
    assert any(re.search(r"(^|\s)git(\s|$)", line) for line in installs), installs
