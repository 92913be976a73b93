"""The system-users spawner never starts a server as root or any system account, whatever
the hub name and the prefix make of it, and never with ``--allow-root``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from platform_tools.hub.systemusers import RootRefused, SystemUserSpawner

pytestmark = pytest.mark.unit


def spawner(name: str, prefix: str, args: list[str] | None = None) -> SystemUserSpawner:
    user = SimpleNamespace(name=name, url=f"/user/{name}/", id=1, spawners={})
    return SystemUserSpawner(user=user, account_prefix=prefix, args=args or [])


@pytest.mark.parametrize(("prefix", "name"), [("r", "oot"), ("daemo", "n"), ("nobod", "y")])
def test_a_name_that_lands_on_a_system_account_is_refused(prefix, name):
    """A prefix an admin chose badly (``r``) and a hub name an attacker chose (``oot``) make
    ``root``: refused before anything runs, for the environment and for the switch of user."""
    refused = spawner(name, prefix)
    with pytest.raises(RootRefused, match="a system account: refused"):
        refused.make_preexec_fn(name)
    with pytest.raises(RootRefused):
        refused.user_env({})


def test_allow_root_is_never_passed():
    with pytest.raises(RootRefused, match="--allow-root is never passed"):
        spawner("ann", "jupyter-", ["--allow-root"]).get_args()
