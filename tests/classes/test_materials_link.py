"""`class show`'s nbgitpuller link: encoded as nbgitpuller's link generator encodes it (a
browser's URL and URLSearchParams, here node's own implementation of that standard), and
opening the same folder prewarm pulls into."""

from __future__ import annotations

import json
import shutil
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest

from platform_tools.classes.course import describe
from platform_tools.classes.materials import nbgitpuller_link
from platform_tools.config import load_platform
from platform_tools.config.materials import CourseMaterials
from tests.platform import run_parhelion

pytestmark = pytest.mark.unit

#: What the generator does for JupyterLab: the hub's URL, ``repo``, ``urlpath`` and ``branch``
#: set in that order on its searchParams, then hub/user-redirect/git-pull added to its path.
BROWSER = """
const [hub, params] = JSON.parse(process.argv[1]);
const url = new URL(hub);
for (const [key, value] of params) url.searchParams.set(key, value);
url.pathname += 'hub/user-redirect/git-pull';
console.log(url.toString());
"""


def browser_link(hub: str, params: list[tuple[str, str]]) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the platform's proxy needs it)")
    done = subprocess.run(
        [node, "-e", BROWSER, json.dumps([hub, params])], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("hub", "materials"),
    [
        ("https://hub.example.org/", {"repo": "https://github.com/heliocloud/summer-school"}),
        (
            "https://hub.example.org/",
            {"repo": "https://github.com/org/aia~tools", "branch": "v1.0", "folder": "aia"},
        ),
        (
            "http://127.0.0.1:8000/",
            {"repo": "/srv/courses/helio+ml", "branch": "release/2027", "folder": "x"},
        ),
        ("https://hub.example.org/base/", {"repo": "https://git.example.org:8443/a/b%20c", "folder": "b-c"}),
        ("https://hub.example.org/", {"repo": "https://github.com/org/course.git"}),
    ],
)
def test_the_link_is_encoded_as_the_generator_encodes_it(hub, materials):
    materials = CourseMaterials(**materials)
    link = nbgitpuller_link(hub, materials)
    params = [
        ("repo", materials.repo),
        ("urlpath", f"lab/tree/{materials.target}/"),
        ("branch", materials.branch),
    ]
    if materials.repo.rstrip("/").split("/")[-1] != materials.target:
        params.append(("targetpath", materials.target))
    assert link == browser_link(hub, params)
    assert link.startswith(hub.rstrip("/") + "/hub/user-redirect/git-pull?repo=")


@pytest.mark.parametrize(
    "materials",
    [
        {"repo": "https://github.com/org/course.git"},  # the generator says course, nbgitpuller course.git
        {"repo": "https://github.com/org/course/"},
        {"repo": "https://github.com/org/course", "folder": "summer"},
        {"repo": "file:///srv/course.git", "branch": "dev"},
    ],
)
def test_the_link_opens_the_folder_prewarm_pulls_into(materials):
    """nbgitpuller's page clones into ``targetpath``, or else the URL's last part as it is
    (``.git`` kept, a trailing ``/`` dropped first), and opens ``urlpath``: both must be the
    folder prewarm uses, or a student who clicks gets a second copy next to the first."""
    materials = CourseMaterials(**materials)
    query = parse_qs(urlsplit(nbgitpuller_link("https://hub.example.org", materials)).query)
    repo = query["repo"][0]
    assert repo == materials.repo and query["branch"] == [materials.branch]
    cloned_into = query.get("targetpath", [repo.rstrip("/").split("/")[-1]])[0]
    assert cloned_into == materials.target
    assert query["urlpath"] == [f"lab/tree/{materials.target}/"]


def test_class_show_prints_the_link(tmp_path):
    """`class create --materials` writes course.materials; `class show` prints the link."""
    from tests.platform import REPO_ROOT

    text = (REPO_ROOT / "hub_config" / "platform.local.yaml").read_text()
    config = tmp_path / "platform.yaml"
    config.write_text(text.replace("  state_dir: .parhelion", f"  state_dir: {tmp_path / 'state'}"))
    roster = tmp_path / "roster.csv"
    roster.write_text("username\nann\n")
    created = run_parhelion(
        *("class", "create", "school", "--config", str(config), "--roster", str(roster)),
        *("--start", "2027-06-14", "--end", "2027-06-25", "--profile", "small", "--budget-usd", "5"),
        *("--materials", "https://github.com/heliocloud/summer-school.git", "--materials-branch", "2027"),
    )
    assert created.returncode == 0, created.stderr
    shown = run_parhelion(
        "class", "show", "school", "--config", str(config), "--hub-url", "https://hub.example.org"
    )
    assert shown.returncode == 0, shown.stderr
    assert (
        "materials https://github.com/heliocloud/summer-school.git (branch 2027) in ~/summer-school"
        in shown.stdout
    )
    link = (
        "https://hub.example.org/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Fheliocloud"
        "%2Fsummer-school.git&urlpath=lab%2Ftree%2Fsummer-school%2F&branch=2027&targetpath=summer-school"
    )
    assert f"link      {link}\n" in shown.stdout
    without_hub = describe(load_platform(config), "school")  # no platform runs: the path on any hub
    assert "link      /hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com" in without_hub
    assert "(after the hub's address: --hub-url)" in without_hub
