"""A platform for a class in tests: each student their own Unix account and password.

Needs root (accounts are made with useradd) and an interpreter other accounts can run (the
students' servers run it as themselves): ``isolation_unavailable`` says why not, for a skip.
Every account a test makes carries the run's own prefix and is removed after it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.platform import platform_config_text

#: The example platform.yaml's lines that make it one trusted person's (one OS account, one
#: shared password), and what makes it a class's: each person their own account and password.
ONE_TRUSTED_PERSON = "  spawner: simple\n  trusted: true\n"
SHARED_PASSWORD = "    type: shared-password        # passwords are generated on first start, see README\n"


def isolation_unavailable() -> str | None:
    """Why students' own accounts cannot be tested here, or None: useradd needs root, and the
    students' servers run this interpreter, which other accounts must be able to reach."""
    import platform_tools
    from platform_tools.local.accounts import closed_to_others

    if os.geteuid() != 0:
        return "system-users needs root: it makes Unix accounts and starts servers as them"
    closed = closed_to_others([Path(sys.executable), Path(os.__file__), Path(platform_tools.__file__)])
    return f"the students' servers could not start: {closed}" if closed else None


def remove_accounts(prefix: str) -> None:
    """Every account and group of a test run's prefix, with their homes."""
    import grp
    import pwd

    for entry in pwd.getpwall():
        if entry.pw_name.startswith(prefix):
            subprocess.run(["userdel", "-r", "-f", entry.pw_name], capture_output=True, check=False)
    for entry in grp.getgrall():
        if entry.gr_name.startswith(prefix):
            subprocess.run(["groupdel", entry.gr_name], capture_output=True, check=False)


@contextlib.contextmanager
def isolated_place():
    """(account prefix, a 0755 folder) for a platform whose students are Unix accounts: the
    prefix is this run's own (``pt<hex>-``) and every account of it is removed on the way out,
    as is the folder (pytest's tmp_path is root's 0700, which students could not pass)."""
    import secrets

    prefix = f"pt{secrets.token_hex(3)}-"
    root = Path(tempfile.mkdtemp(prefix="parhelion-isolated-"))
    os.chmod(root, 0o755)
    try:
        yield prefix, root
    finally:
        remove_accounts(prefix)
        shutil.rmtree(root, ignore_errors=True)


def isolated_config_text(prefix: str, root: Path, sample_files: int = 4, **replacements: str) -> str:
    """The example platform.yaml for a class: every person their own account (under ``prefix``,
    homes in ``root``/home) and their own first-use password."""
    return platform_config_text(
        sample_files,
        **{
            ONE_TRUSTED_PERSON: (
                f"  spawner: system-users\n  accounts: {{prefix: {prefix}, home_root: {root / 'home'}}}\n"
            ),
            SHARED_PASSWORD: "    type: first-use\n",
            **replacements,
        },
    )
