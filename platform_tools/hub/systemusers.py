"""``system-users``: each hub user's server runs as their own Unix account, never as root.

JupyterHub's ``LocalProcessSpawner`` runs a server as the OS account named like the hub user
(``pwd.getpwnam(user.name)``): a hub user called ``root`` would run as root. This spawner runs
it as the account ``contract.accounts.user_account`` names (``jupyter-<name>``), which the
pre-spawn hook has made or checked (``local.accounts.Accounts.ensure``, hub/local.py), and
refuses to start a server as uid 0 or with ``--allow-root`` whatever the configuration says.
"""

from __future__ import annotations

import pwd

from traitlets import Unicode

from platform_tools.contract.accounts import account_name
from platform_tools.hub.spawners import GroupedLocalProcessSpawner
from platform_tools.local.accounts import regular_uid


class RootRefused(RuntimeError):
    """A server that would run as root (or a system account) in system-users mode."""


class SystemUserSpawner(GroupedLocalProcessSpawner):
    """A server as its user's own account (see the module's docstring)."""

    account_prefix = Unicode(
        "jupyter-", config=True, help="local.accounts.prefix: a hub user's account is this + their name."
    )

    @property
    def account(self) -> str:
        return account_name(self.account_prefix, self.user.name)

    def _entry(self) -> pwd.struct_passwd:
        entry = pwd.getpwnam(self.account)
        if not regular_uid(entry.pw_uid):
            raise RootRefused(
                f"{self.user.name}'s server would run as {self.account} (uid {entry.pw_uid}), a "
                "system account: refused"
            )
        return entry

    def _group_uid(self) -> int | None:
        try:
            return pwd.getpwnam(self.account).pw_uid
        except KeyError:
            return None

    def make_preexec_fn(self, name):
        # JupyterHub passes the hub name; the switch is to the mapped account, checked here.
        self._entry()
        return super().make_preexec_fn(self.account)

    def user_env(self, env):
        entry = self._entry()
        env["USER"] = entry.pw_name
        env["HOME"] = entry.pw_dir
        env["SHELL"] = entry.pw_shell or "/bin/bash"
        return env

    def get_args(self):
        args = super().get_args()
        if "--allow-root" in args:
            raise RootRefused("--allow-root is never passed to a server in system-users mode")
        return args
