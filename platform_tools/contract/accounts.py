"""Who a hub user is on one machine: their Unix account and home, decided in ONE place.

In ``system-users`` mode the hub starts each server as its user's account, the gateway
starts their Dask schedulers and workers as it, accounting measures their home, and
``class create`` / ``class close`` make and archive it. All of them must agree on the name,
so it is computed here and nowhere else.

The account is ``local.accounts.prefix`` + the hub name (TLJH's ``jupyter-<name>``): without
a prefix, a hub user called ``root``, ``daemon`` or ``www-data`` would be started as that
system account. Account names are at most 32 characters of ``[a-z0-9_.-]`` not starting with
``-`` (shadow's useradd); hub names may be 64 characters and contain ``@``, so a name that
does not fit as it is becomes a readable part plus a hash of the whole name (two hub names
never share an account).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from platform_tools.config.models import PlatformConfig

#: Longest account name useradd takes (utmp's ut_user is 32 bytes).
ACCOUNT_NAME_MAX = 32
_PLAIN = re.compile(r"^[a-z0-9_][a-z0-9_.-]*$")
#: How a hashed name ends. A hub name that already ends so is hashed too: kept as it is,
#: ``ana_uni.edu-3b592fe6`` would be the account of ``ana@uni.edu``.
_HASHED_END = re.compile(r"-[0-9a-f]{8}$")


def account_name(prefix: str, username: str) -> str:
    """The Unix account of hub user ``username`` under ``prefix``."""
    candidate = prefix + username
    if _PLAIN.match(username) and not _HASHED_END.search(username) and len(candidate) <= ACCOUNT_NAME_MAX:
        return candidate
    digest = hashlib.sha256(username.encode()).hexdigest()[:8]
    readable = re.sub(r"[^a-z0-9_.-]", "_", username)
    room = ACCOUNT_NAME_MAX - len(prefix) - len(digest) - 1
    return f"{prefix}{readable[:room]}-{digest}"


def user_account(platform: PlatformConfig, username: str) -> str:
    """The account of ``username`` on this platform (system-users mode)."""
    return account_name(platform.local.accounts.prefix, username)


def user_home(platform: PlatformConfig, spawner: str, state_homes: Path, username: str) -> Path:
    """Where ``username``'s home is: their account's home (system-users), or a folder of the
    state directory's ``homes`` (simple)."""
    if spawner == "system-users":
        return Path(platform.local.accounts.home_root) / user_account(platform, username)
    return Path(state_homes) / username
