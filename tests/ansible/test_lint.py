"""ansible-lint at the production profile, a syntax check of every playbook, and every module's
documentation as ansible-doc reads it."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.ansible.runner import ANSIBLE_DIR, BIN

pytestmark = pytest.mark.ansible
PLAYBOOKS = sorted(p.name for p in ANSIBLE_DIR.glob("*.yml"))
MODULES = sorted(
    p.stem
    for p in (ANSIBLE_DIR / "collections/ansible_collections/parhelion/platform/plugins/modules").glob("*.py")
)


def _run(tmp_path, *argv: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "NO_COLOR": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        argv, cwd=ANSIBLE_DIR, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_playbooks_are_all_here():
    assert {"site.yml", "provision.yml", "deploy.yml", "quotas.yml", "roster.yml", "teardown.yml"} <= set(
        PLAYBOOKS
    )


def test_ansible_lint_production_profile(tmp_path):
    done = _run(tmp_path, str(BIN / "ansible-lint"), "--offline", "--profile", "production", "--nocolor")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax(tmp_path, playbook):
    done = _run(tmp_path, str(BIN / "ansible-playbook"), "--syntax-check", playbook)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("module", MODULES)
def test_module_documentation(tmp_path, module):
    done = _run(tmp_path, str(BIN / "ansible-doc"), "--json", f"parhelion.platform.{module}")
    assert done.returncode == 0 and '"options"' in done.stdout, done.stderr


def test_role_variables_are_prefixed_specified_and_documented():
    """Every role: variables named after it, each default in meta/argument_specs.yml, and the
    README's table generated from that spec is current."""
    done = subprocess.run(
        [str(BIN / "python"), str(ANSIBLE_DIR / "tools" / "role_docs.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    roles = sorted(p.name for p in (ANSIBLE_DIR / "roles").iterdir() if p.is_dir())
    documented = sorted(
        p.parent.parent.name for p in (ANSIBLE_DIR / "roles").glob("*/meta/argument_specs.yml")
    )
    assert roles == documented
