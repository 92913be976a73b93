"""Hub users' Unix accounts, made for real with useradd (as root; skipped otherwise).

Each test uses a fresh account prefix (``pt<6 hex>-``) and removes every account it made, with
its home and group (userdel -r), whatever happens; homes go in a fresh 0755 folder, not under
pytest's tmp_path (root's, 0700: an account could not reach its own home there).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from platform_tools.contract.accounts import account_name
from platform_tools.local.accounts import UID_MIN, AccountError, Accounts, closed_to_others, marker
from tests.isolation import isolated_place

pytestmark = pytest.mark.unit
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making Unix accounts needs root")


def test_a_name_shaped_like_a_hashed_one_is_not_that_persons_account():
    """``ana@uni.edu`` does not fit an account name and becomes ``ana_uni.edu-<hash>``; the hub
    name ``ana_uni.edu-<that hash>`` (a valid one) must not get the same account."""
    hashed = account_name("jupyter-", "ana@uni.edu")
    assert hashed.startswith("jupyter-ana_uni.edu-")
    lookalike = hashed.removeprefix("jupyter-")
    assert account_name("jupyter-", lookalike) != hashed
    assert account_name("jupyter-", lookalike).startswith("jupyter-")
    assert account_name("jupyter-", "ana") == "jupyter-ana"  # plain names stay readable
    assert account_name("jupyter-", "ana-2026") == "jupyter-ana-2026"


@pytest.fixture
def place(tmp_path):
    """(prefix, home_root, lock file): a prefix no other test or account uses."""
    with isolated_place() as (prefix, root):
        yield prefix, root / "home", tmp_path / "accounts.lock"


def make_accounts(place, name: str = "test-platform") -> Accounts:
    prefix, home_root, lock = place
    return Accounts(name, prefix, home_root, lock)


def shadow_password(name: str) -> str:
    for line in Path("/etc/shadow").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields[1]
    raise KeyError(name)


@needs_root
def test_an_account_is_made_once_with_a_private_home_and_no_password(place):
    accounts = make_accounts(place)
    account = accounts.ensure("ann")
    assert account.name == account_name(place[0], "ann")
    entry = pwd.getpwnam(account.name)
    assert entry.pw_uid >= UID_MIN and entry.pw_shell == "/bin/bash"
    assert entry.pw_gecos == marker("test-platform")
    assert grp.getgrgid(entry.pw_gid).gr_name == account.name  # its own group
    home = account.home.stat()
    assert account.home == place[1] / account.name
    assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)) == (entry.pw_uid, entry.pw_gid, 0o700)
    assert shadow_password(account.name).startswith("!")  # locked: no password login
    assert accounts.ensure("ann") == account  # idempotent


@needs_root
def test_a_new_home_root_lets_each_account_reach_its_home(place):
    """The platform runs under umask 077: a home_root it makes must still be 0755, or no account
    could enter its own home."""
    old = os.umask(0o077)
    try:
        account = make_accounts(place).ensure("ann")
    finally:
        os.umask(old)
    assert stat.S_IMODE(place[1].stat().st_mode) == 0o755
    probe = subprocess.run(
        ["ls", str(account.home)], user=account.uid, group=account.gid, capture_output=True, check=False
    )
    assert probe.returncode == 0, probe.stderr


@needs_root
def test_a_deleted_home_is_made_again(place):
    accounts = make_accounts(place)
    account = accounts.ensure("ann")
    shutil.rmtree(account.home)
    assert accounts.ensure("ann") == account
    assert stat.S_IMODE(account.home.stat().st_mode) == 0o700 and account.home.stat().st_uid == account.uid


@needs_root
def test_an_account_parhelion_did_not_make_is_refused(place):
    """An attacker-chosen hub name must never become an existing account: one made by hand (no
    marker), one of another platform, and a system account under the prefix are all refused."""
    prefix, home_root, _ = place
    accounts = make_accounts(place)
    by_hand = account_name(prefix, "admin")
    subprocess.run(["useradd", "--home-dir", str(home_root / by_hand), "--user-group", by_hand], check=True)
    with pytest.raises(AccountError, match=rf"hub user 'admin' would run as the account {by_hand}.*not used"):
        accounts.ensure("admin")
    make_accounts(place, "another-platform").ensure("bob")
    with pytest.raises(AccountError, match="not .parhelion test-platform."):
        accounts.ensure("bob")
    system = account_name(prefix, "daemon")
    subprocess.run(
        [
            "useradd",
            "--system",
            "--comment",
            marker("test-platform"),
            "--home-dir",
            str(home_root / system),
            system,
        ],
        check=True,
    )
    with pytest.raises(AccountError, match="is a system account's"):
        accounts.ensure("daemon")
    nobody = Accounts("test-platform", "nobod", home_root, place[2])  # a prefix + name = nobody
    with pytest.raises(AccountError, match="uid 65534 is a system account's"):
        nobody.ensure("y")


@needs_root
def test_many_first_starts_at_once_each_get_one_account(place):
    """A class pressing Start together: the same user twice and ten others, in threads (as the
    hub makes them) - every one made once, none failing on /etc/passwd's lock."""
    accounts = make_accounts(place)
    names = [f"s{i}" for i in range(10)] + ["s0", "s1"]
    results: dict[int, object] = {}

    def start(index: int, name: str) -> None:
        try:
            results[index] = accounts.ensure(name)
        except Exception as exc:  # collected: asserted below
            results[index] = exc

    threads = [threading.Thread(target=start, args=(i, name)) for i, name in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    failures = [result for result in results.values() if isinstance(result, Exception)]
    assert not failures and len(results) == len(names)
    assert results[0] == results[10] and results[1] == results[11]
    assert len({result.uid for result in results.values()}) == 10


@needs_root
def test_useradd_busy_is_retried(place):
    """useradd exits 1 or 10 when another tool holds /etc/passwd's lock: tried again."""
    prefix, home_root, lock = place
    calls = []

    def busy_then_real(command, **kwargs):
        calls.append(command)
        if len(calls) < 3:
            return subprocess.CompletedProcess(command, 10, "", "useradd: cannot lock /etc/group")
        return subprocess.run(command, **kwargs)

    account = Accounts("test-platform", prefix, home_root, lock, run=busy_then_real).ensure("ann")
    assert len(calls) == 3 and pwd.getpwnam(account.name).pw_uid == account.uid


def test_a_python_under_a_private_folder_is_named(tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="parhelion-python-"))
    try:
        os.chmod(folder, 0o755)
        program = folder / "inner" / "python"
        program.parent.mkdir()
        program.write_text("")
        os.chmod(program, 0o755)
        assert closed_to_others([program]) is None
        os.chmod(program.parent, 0o700)
        problem = closed_to_others([program])
        assert problem and f"{program.parent} is 0o700" in problem
    finally:
        shutil.rmtree(folder)
