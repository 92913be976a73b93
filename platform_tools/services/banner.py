"""What `parhelion up` tells the person who started it: where to log in, and with what.

With the shared passwords (one trusted person) it prints them the first time they are made.

Admins' first passwords with per-person logins are issued here too, by `parhelion up` itself.

With ``hub.auth: first-use`` a name's first login sets its password, and with ``native`` its
first sign-up does. Students' names can be issued passwords by ``class create --passwords``;
admins' names are known in advance too (platform.yaml is no secret to the people it lists) and
the prize is admin rights: whoever reached the login page first after a start would own
``admin``. So at every start, each name of ``hub.admin_users`` that has no password yet gets a
one-time password, hashed where the hub reads it before the hub answers, and printed once in
the banner (as the shared passwords are) and kept in a 0600 CSV in the state directory's
secrets. The admin logs in with it and may change it (/hub/auth/change-password, or
/hub/change-password with native). An admin who already has a password keeps it.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from platform_tools.classes.passwords import issue_passwords
from platform_tools.config import PlatformConfig
from platform_tools.config.auth import PASSWORD_TYPES
from platform_tools.local.runtime import LocalRuntime
from platform_tools.local.statedir import StateDir

#: What a start issued admins: the CSV and name -> one-time password.
IssuedAdmins = tuple[Path, dict[str, str]] | None


def issue_admin_passwords(platform: PlatformConfig, state: StateDir) -> IssuedAdmins:
    """One-time passwords for the admins who have none: (the CSV, name -> password), or None
    when nobody got one (another login, no admins, or all of them have a password)."""
    auth = platform.hub.auth
    admins = sorted(platform.hub.admin_users)
    if auth.type not in PASSWORD_TYPES or not admins:
        return None
    into = state.secret_path(f"admin-passwords-{time.strftime('%Y%m%dT%H%M%S')}.csv")
    issued = issue_passwords(auth, state.root, admins, into)
    if not issued.issued:
        return None
    with into.open(newline="") as handle:
        return into, {row["username"]: row["password"] for row in csv.DictReader(handle)}


def _password_lines(platform: PlatformConfig, issued: IssuedAdmins) -> list[str]:
    """What the start banner says of logins with per-person passwords."""
    admitted = ", ".join(sorted(platform.allowed_users)) or "(nobody yet: add hub.users or groups)"
    first = "first login sets" if platform.hub.auth.type == "first-use" else "sign-up sets"
    kind = platform.hub.auth.type
    lines = [f"    with {kind} (hub.auth): each person's {first} their password; admitted: {admitted}"]
    if issued:
        path, passwords = issued
        for name, password in passwords.items():
            lines.append(f"    admin {name}  one-time password: {password}  (change it after logging in)")
        lines.append(f"    (shown once; kept in {path})")
    return lines


def banner(
    platform: PlatformConfig,
    runtime: LocalRuntime,
    state: StateDir,
    new_secrets: set[str],
    issued: IssuedAdmins = None,
) -> str:
    users = sorted(platform.allowed_users - set(platform.hub.admin_users))
    admins = sorted(platform.hub.admin_users)
    lines = [
        "",
        f"  Parhelion ({platform.name}) is running.",
        "",
        f"  Open {runtime.hub_url} and log in:",
    ]
    if platform.hub.auth.type in PASSWORD_TYPES:
        lines += _password_lines(platform, issued)
    elif platform.hub.auth.type != "shared-password":
        lines += [
            f"    with {platform.hub.auth.type} (hub.auth); admitted: "
            f"{', '.join(sorted(platform.allowed_users)) or '(nobody yet: add hub.users or groups)'}",
        ]
    elif {"user-password", "admin-password"} & new_secrets:
        lines += [
            f"    users {', '.join(users) or '(none)'}  password: {state.secret('user-password')[0]}",
            f"    admins {', '.join(admins) or '(none)'}  password: {state.secret('admin-password')[0]}",
            "    (shown once; kept in "
            f"{state.secret_path('user-password')} and {state.secret_path('admin-password')})",
        ]
    else:
        lines += [
            f"    users {', '.join(users) or '(none)'}: password in {state.secret_path('user-password')}",
            f"    admins {', '.join(admins) or '(none)'}: password in {state.secret_path('admin-password')}",
        ]
    lines += [
        "",
        f"  State and logs: {state.root}",
        "  Stop with Ctrl-C (or `parhelion down`).",
        "",
    ]
    return "\n".join(lines)
