"""``system-users``: each user's Dask scheduler and workers run as their own Unix account.

dask-gateway's ``LocalBackend`` runs a cluster as the OS account named like the hub user
(``pwd.getpwnam(cluster.username)``): a hub user called ``root`` would get root's processes.
Here the account is the one ``contract.accounts.user_account`` names - the same as their
server's - made on their first cluster if their server has not made it yet, and never a
system account.

Its working directory is also made here: dask-gateway 2026.3's ``setup_working_directory``
passes each TLS file's path to ``list.extend`` (one path per character), so it chowns ``/``
to the cluster's user before failing on the next character. The directory, its ``.certs``
and ``logs`` and the two TLS files are the account's; nothing else is touched.
"""

from __future__ import annotations

import asyncio
import os
import pwd
from functools import cached_property
from pathlib import Path

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from platform_tools.local.accounts import Account, Accounts, regular_uid


class AccountRefused(RuntimeError):
    """A cluster that would run as a system account."""


class SystemUsersMixin(LoggingConfigurable):
    """For a ``LocalBackend``: clusters as their user's account (see the module's docstring)."""

    platform_name = Unicode("", config=True, help="platform.yaml's name (the accounts' marker).")
    account_prefix = Unicode("jupyter-", config=True, help="local.accounts.prefix")
    home_root = Unicode("/home", config=True, help="local.accounts.home_root")
    accounts_lock = Unicode("", config=True, help="The lock file every maker of accounts takes.")

    @cached_property
    def accounts(self) -> Accounts:
        return Accounts(
            self.platform_name, self.account_prefix, Path(self.home_root), Path(self.accounts_lock)
        )

    def account(self, username: str) -> Account:
        """The user's account, which must exist and be Parhelion's for this platform."""
        account = self.accounts.find(username)
        if account is None:
            raise AccountRefused(f"{username} has no account on this machine yet")
        if not regular_uid(account.uid):
            raise AccountRefused(f"{username}'s cluster would run as uid {account.uid}: refused")
        return account

    async def do_start_cluster(self, cluster):
        # made here if the user's server has not made it (a token used before any server)
        await asyncio.to_thread(self.accounts.ensure, cluster.username)
        async for state in super().do_start_cluster(cluster):
            yield state

    def set_file_permissions(self, paths, username):
        account = self.account(username)
        for path in paths:
            os.lchown(path, account.uid, account.gid)

    def setup_working_directory(self, cluster):
        account = self.account(cluster.username)  # before anything is made: a refusal leaves nothing
        workdir = os.path.join(self.clusters_directory, cluster.name)
        certs, logs = self.get_certs_directory(workdir), self.get_logs_directory(workdir)
        paths = [workdir, certs, logs]
        for path in paths:
            os.makedirs(path, 0o700, exist_ok=True)
        cert_path, key_path = self._get_tls_paths(workdir)
        for path, data in [(cert_path, cluster.tls_cert), (key_path, cluster.tls_key)]:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
                handle.write(data)
            paths.append(path)
        for path in paths:
            os.lchown(path, account.uid, account.gid)
        return workdir

    def make_preexec_fn(self, cluster):
        account = self.account(cluster.username)
        workdir = cluster.state["workdir"]

        def preexec() -> None:  # in the child, before exec: only its own group, then the uid
            os.setgid(account.gid)
            os.setgroups([account.gid])
            os.setuid(account.uid)
            os.chdir(workdir)

        return preexec

    def get_env(self, cluster):
        env = super().get_env(cluster)
        account = self.account(cluster.username)
        env["USER"] = account.name
        env["HOME"] = str(account.home)
        env["SHELL"] = pwd.getpwnam(account.name).pw_shell or "/bin/bash"
        return env
