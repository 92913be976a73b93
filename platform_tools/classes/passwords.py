"""One-time passwords for a class: `parhelion class create ... --passwords FILE.csv`.

With ``hub.auth: first-use`` the first login of a name sets its password, and with ``native``
the first sign-up does: whoever comes first, the student or someone who knows the roster.
Issuing each student a password before the class closes that gap: the password's bcrypt hash
is put where the hub's authenticator reads it (``platform_tools.contract.passwords``), so the
student's first login must use it; they may then change it (first-use:
/hub/auth/change-password, native: /hub/change-password).

The clear passwords go to one place only: the instructor's CSV (``username,password``, mode
0600, written before any hash is stored, so no student ends up with a password nobody knows).
They are never printed, logged or kept anywhere else. A student who already has a password
(issued, or set by themselves) keeps it unless ``reissue``.
"""

from __future__ import annotations

import csv
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from platform_tools.config.auth import PASSWORD_TYPES, PasswordAuth
from platform_tools.contract.passwords import (
    first_use_store,
    hash_password,
    hub_database,
    open_first_use_store,
)

#: Letters and digits nobody misreads from a printed sheet (no 0/O, 1/l/I).
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
#: 12 characters of 31: about 59 bits, beyond guessing through a login form.
MIN_CHARACTERS = 12


class PasswordIssueError(RuntimeError):
    """Passwords cannot be issued as asked; the message says what to do."""


@dataclass
class Issued:
    """What an issue did: who got a new password, who kept theirs."""

    issued: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def one_time_password(min_length: int) -> str:
    """A random password in groups of four (``abcd-efgh-jkmn``), at least ``min_length``
    characters and ``MIN_CHARACTERS`` random ones."""
    count = max(MIN_CHARACTERS, min_length)
    count += -count % 4
    chars = "".join(secrets.choice(ALPHABET) for _ in range(count))
    return "-".join(chars[i : i + 4] for i in range(0, count, 4))


def check_can_issue(auth: PasswordAuth | object, into: Path) -> None:
    """Refuse before anything is written: a login without per-person passwords, or a CSV that
    exists (its passwords would be lost: they are kept nowhere else in clear)."""
    kind = getattr(auth, "type", "")
    if kind not in PASSWORD_TYPES:
        raise PasswordIssueError(
            f"--passwords: hub.auth.type is {kind!r}, which has no per-person passwords to issue; "
            f"use hub.auth type {' or '.join(PASSWORD_TYPES)} (see README, choosing hub.auth)"
        )
    if into.exists():
        raise PasswordIssueError(
            f"--passwords {into}: the file exists; give a new file (the passwords in it are kept "
            "nowhere else in clear, so it is not overwritten)"
        )


def issue_passwords(
    auth: PasswordAuth, state_root: Path, usernames: list[str], into: Path, reissue: bool = False
) -> Issued:
    """One-time passwords for ``usernames`` into the CSV ``into`` and, hashed, into the store
    ``auth`` reads from under ``state_root``. The CSV is written only if someone gets one."""
    check_can_issue(auth, into)
    store = _FirstUseStore(state_root) if auth.type == "first-use" else _NativeStore(state_root)
    result = Issued()
    try:
        has = store.has_password(usernames)
        passwords: dict[str, str] = {}
        for name in usernames:
            if name in has and not reissue:
                result.kept.append(name)
            else:
                passwords[name] = one_time_password(auth.min_password_length)
        if not passwords:
            return result
        hashes = {name: hash_password(password) for name, password in passwords.items()}
        partial = into.with_name(f".{into.name}.partial")
        _write_private_csv(partial, passwords)
        try:
            store.put(hashes)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, into)
    finally:
        store.close()
    result.issued = list(passwords)
    return result


def _write_private_csv(path: Path, passwords: dict[str, str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["username", "password"])
        writer.writerows(passwords.items())


def _private_dir(path: Path) -> None:
    """The state directory's private folder ``path`` (0700), made if the platform never ran."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)


class _FirstUseStore:
    """first-use's dbm file: username -> bcrypt hash, what its first login compares with."""

    def __init__(self, state_root: Path):
        self.path = first_use_store(state_root)
        _private_dir(self.path.parent)

    def has_password(self, usernames: list[str]) -> set[str]:
        with open_first_use_store(self.path) as db:
            return {name for name in usernames if name.encode() in db}

    def put(self, hashes: dict[str, bytes]) -> None:
        with open_first_use_store(self.path) as db:
            for name, hashed in hashes.items():
                db[name.encode()] = hashed

    def close(self) -> None:
        """Nothing stays open between calls (each holds the store's lock briefly)."""


class _NativeStore:
    """native's ``users_info`` rows in the hub's database, written through JupyterHub's own
    ORM: ``new_session_factory`` opens it as the hub does (creating and stamping it if the
    platform never ran, refusing one of another JupyterHub version), and the table is
    NativeAuthenticator's model. Each issued row is authorized: the roster is the approval."""

    def __init__(self, state_root: Path):
        from jupyterhub.orm import new_session_factory
        from nativeauthenticator.orm import UserInfo

        self.model = UserInfo
        database = hub_database(state_root)
        _private_dir(database.parent)
        previous = os.umask(0o077)  # the database made here is the hub's: private
        try:
            self.session = new_session_factory(f"sqlite:///{database}")()
        finally:
            os.umask(previous)

    def has_password(self, usernames: list[str]) -> set[str]:
        rows = self.session.query(self.model).filter(self.model.username.in_(usernames))
        return {row.username for row in rows}

    def put(self, hashes: dict[str, bytes]) -> None:
        for name, hashed in hashes.items():
            row = self.model.find(self.session, name)
            if row is None:
                self.session.add(self.model(username=name, password=hashed, is_authorized=True))
            else:
                row.password = hashed
                row.is_authorized = True
        self.session.commit()

    def close(self) -> None:
        self.session.close()
        self.session.get_bind().dispose()
