"""`parhelion images`: the versioned science images (images/images.yaml).

list                the images, their tags and references
lock [NAME...]      re-resolve the hashed locks from requirements.in (needs PyPI)
check [NAME...]     hadolint, Dockerfiles, locks up to date, versions consistent everywhere
build [NAME...]     build with docker, podman or buildah (a base first when another needs it)
test NAME           smoke checks inside the built image
bump NAME           the next CalVer tag, in images.yaml and everywhere the image is named
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from platform_tools.images.models import REPO_ROOT, ImagesError, load_images


def _names(images, names: list[str]) -> list[str]:
    for name in names:
        images.image(name)  # an unknown name is an error naming the known ones
    return names or list(images.images)


def images_list(args: argparse.Namespace) -> int:
    images = load_images()
    for name, image in images.images.items():
        base = f" (from {image.from_})" if image.from_ else ""
        print(f"{name:<8}{image.tag:<12}{images.reference(name)}{base}")
    return 0


def images_lock(args: argparse.Namespace) -> int:
    from platform_tools.images.locks import compile_lock

    images = load_images()
    for name in _names(images, args.names):
        print(f"wrote {compile_lock(images, name).relative_to(REPO_ROOT)}")
    return 0


def images_check(args: argparse.Namespace) -> int:
    from platform_tools.images.service import check

    images = load_images()
    problems = check(images, _names(images, args.names))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"images: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("images: Dockerfiles lint clean, locks up to date, versions consistent")
    return 0


def images_build(args: argparse.Namespace) -> int:
    from platform_tools.images.builder import ContainerTool
    from platform_tools.images.service import build

    images = load_images()
    built = build(images, _names(images, args.names), ContainerTool.find())
    print(f"{'image':<8}{'seconds':>9}{'size GB':>9}  reference")
    for item in built:
        print(f"{item.name:<8}{item.seconds:>9.0f}{item.size / 1e9:>9.2f}  {item.reference}")
    return 0


def images_test(args: argparse.Namespace) -> int:
    from platform_tools.images.builder import ContainerTool
    from platform_tools.images.service import test

    images = load_images()
    name = _names(images, [args.name])[0]
    problems, done = test(images, name, ContainerTool.find())
    for problem in problems:
        print(f"FAIL  image: {problem}")
    if not problems:
        tag = images.image(name).tag
        print(f"ok    image: runs as uid 1000, OCI labels (version {tag}), no secrets in its env")
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return 1 if problems else done.returncode


def images_bump(args: argparse.Namespace) -> int:
    from platform_tools.images.service import bump

    old, new = bump(args.name, date.today())
    print(f"{args.name}: {old} -> {new} (images/images.yaml and every file that names it)")
    return 0


def _guarded(func):
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except ImagesError as exc:
            print(f"parhelion images: {exc}", file=sys.stderr)
            return 1

    return run


def add_commands(commands) -> None:
    images = commands.add_parser("images", help="the versioned science images", description=__doc__)
    actions = images.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    actions.add_parser("list", help="images, tags, references").set_defaults(func=_guarded(images_list))
    for verb, func, text in [
        ("lock", images_lock, "re-resolve hashed locks from requirements.in"),
        ("check", images_check, "lint, locks and version consistency"),
        ("build", images_build, "build with docker, podman or buildah"),
    ]:
        sub = actions.add_parser(verb, help=text)
        sub.add_argument("names", nargs="*", metavar="NAME")
        sub.set_defaults(func=_guarded(func))
    for verb, func, text in [
        ("test", images_test, "smoke checks inside a built image"),
        ("bump", images_bump, "the next CalVer tag, everywhere"),
    ]:
        sub = actions.add_parser(verb, help=text)
        sub.add_argument("name", metavar="NAME")
        sub.set_defaults(func=_guarded(func))
