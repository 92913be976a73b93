"""A system-users Dask cluster's working directory: the account's, and nothing else.

dask-gateway 2026.3's own ``setup_working_directory`` hands each TLS file's path to
``list.extend`` (one entry per character) and chowns every entry: ``/`` first, to the
cluster's user. Parhelion's makes the folder, its ``.certs`` and ``logs`` and both TLS files
the account's, and touches nothing outside.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from dask_gateway_server.backends.local import LocalBackend

from platform_tools.gateway.systemusers import AccountRefused, SystemUsersMixin
from tests.isolation import remove_accounts

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(os.geteuid() != 0, reason="making Unix accounts needs root"),
]


class Backend(SystemUsersMixin, LocalBackend):
    pass


def test_a_clusters_folder_is_the_accounts_and_nothing_else_changes(tmp_path):
    prefix = f"pt{secrets.token_hex(3)}-"
    root = Path(tempfile.mkdtemp(prefix="parhelion-clusters-"))
    os.chmod(root, 0o755)
    backend = Backend(
        platform_name="test-platform",
        account_prefix=prefix,
        home_root=str(root / "home"),
        accounts_lock=str(tmp_path / "accounts.lock"),
        clusters_directory=str(root / "clusters"),
    )
    cluster = SimpleNamespace(name="c1", username="ann", tls_cert=b"cert", tls_key=b"key", state={})
    try:
        with pytest.raises(AccountRefused, match="has no account"):
            backend.setup_working_directory(cluster)  # the account is made at the cluster's start
        account = backend.accounts.ensure("ann")
        before = os.stat("/")
        workdir = Path(backend.setup_working_directory(cluster))
        assert os.stat("/").st_uid == before.st_uid and os.stat("/").st_gid == before.st_gid
        made = [workdir, workdir / ".certs", workdir / "logs", workdir / ".certs" / "dask.crt"]
        for path in [*made, workdir / ".certs" / "dask.pem"]:
            info = path.stat()
            assert (info.st_uid, info.st_gid) == (account.uid, account.gid), path
            assert stat.S_IMODE(info.st_mode) & 0o077 == 0, path
        assert (root / "clusters").stat().st_uid == 0
    finally:
        remove_accounts(prefix)
        shutil.rmtree(root, ignore_errors=True)
