"""hub.auth first-use and native: the real authenticators, configured as the local hub
configures them, admit by the live platform.yaml and write no password for anyone else."""

from __future__ import annotations

import asyncio
import os
import stat
from types import SimpleNamespace

import pytest
from jupyterhub.orm import new_session_factory
from nativeauthenticator.orm import UserInfo
from traitlets.config import Config

from platform_tools.config import parse_platform
from platform_tools.config.auth import FirstUseAuth, NativeAuth
from platform_tools.contract.passwords import first_use_store, hash_password, open_first_use_store
from platform_tools.hub import passwords as hub_passwords
from platform_tools.hub.auth import AuthSetupError
from platform_tools.hub.kubernetes import configure_kubernetes_login

pytestmark = pytest.mark.unit

ROSTER = """
groups:
  researchers:
    members: [demo]
  school:
    members: [student1]
    profiles: [small]
    budget: {usd: 5, period: course, course: {start: 2026-01-01, end: 2030-12-31}}
    course: {title: Helio school, status: open}
  old-school:
    members: [gone1]
    profiles: [small]
    budget: {usd: 5, period: course, course: {start: 2026-01-01, end: 2030-12-31}}
    course: {title: Old school, status: closed}
"""


def roster_text(example_text: str, extra_user: str = "") -> str:
    start = example_text.index("\ngroups:\n")
    end = example_text.index("\n# Per-user exceptions")
    text = example_text[:start] + ROSTER + example_text[end:]
    return text.replace("users: [demo]", f"users: [demo{', ' + extra_user if extra_user else ''}]")


@pytest.fixture
def state(tmp_path, example_text):
    (tmp_path / "secrets").mkdir(mode=0o700)
    (tmp_path / "platform.yaml").write_text(roster_text(example_text))
    return tmp_path


def first_use(state, **settings):
    c = Config()
    hub_passwords.configure_password_login(
        c, FirstUseAuth(type="first-use", **settings), str(state / "platform.yaml"), str(state)
    )
    assert c.JupyterHub.authenticator_class is hub_passwords.PlatformFirstUseAuthenticator
    return hub_passwords.PlatformFirstUseAuthenticator(config=c)


def login(authenticator, username: str, password: str):
    handler = SimpleNamespace(custom_login_error="")
    name = asyncio.run(authenticator.authenticate(handler, {"username": username, "password": password}))
    if name is None:
        return None
    return name if asyncio.run(authenticator.check_allowed(name, None)) else None


def stored(state) -> set[str]:
    with open_first_use_store(first_use_store(state)) as db:
        return {key.decode() for key in db.keys()}  # noqa: SIM118 (gdbm objects do not iterate)


def test_first_use_sets_a_listed_persons_password_at_their_first_login_and_checks_it_after(state):
    authenticator = first_use(state)
    assert authenticator.allow_all is False and authenticator.allow_existing_users is False
    assert authenticator.dbm_path == str(state / "secrets" / "first-use-passwords")
    assert login(authenticator, "student1", "short") is None  # below min_password_length (8)
    assert login(authenticator, "student1", "correct horse") == "student1"
    assert login(authenticator, "student1", "another password") is None
    assert login(authenticator, "Student1", "correct horse") == "student1"
    assert stored(state) == {"student1"}
    files = [p for p in (state / "secrets").iterdir() if p.name.startswith("first-use-passwords")]
    assert files and all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in files)


def test_first_use_stores_nothing_for_a_name_not_admitted_so_it_cannot_be_claimed_ahead(state, example_text):
    """Without the check, first-use stores the password before JupyterHub refuses the name:
    whoever tried "carol" today would be carol once the roster adds her."""
    authenticator = first_use(state)
    assert login(authenticator, "carol", "attacker's choice") is None
    assert login(authenticator, "gone1", "closed class member") is None  # a closed class shuts out
    assert stored(state) == set()
    (state / "platform.yaml").write_text(roster_text(example_text, extra_user="carol"))
    assert login(authenticator, "carol", "attacker's choice") == "carol"  # hers to set, now


def test_first_use_checks_an_issued_password_and_may_forbid_changes(state):
    with open_first_use_store(first_use_store(state)) as db:
        db[b"student1"] = hash_password("issued-by-the-instructor")
    authenticator = first_use(state, allow_password_change=False)
    assert login(authenticator, "student1", "my own choice") is None
    assert login(authenticator, "student1", "issued-by-the-instructor") == "student1"
    paths = [path for path, _ in authenticator.get_handlers(None)]
    assert paths == ["/login"]
    assert "/auth/change-password" in [p for p, _ in first_use(state).get_handlers(None)]


@pytest.fixture
def native(state):
    c = Config()
    hub_passwords.configure_password_login(
        c, NativeAuth(type="native"), str(state / "platform.yaml"), str(state)
    )
    db = new_session_factory(f"sqlite:///{state / 'hub.sqlite'}")()
    authenticator = hub_passwords.PlatformNativeAuthenticator(config=c, db=db)
    yield authenticator
    db.close()


def test_native_sign_up_is_for_listed_names_and_is_enough_to_log_in(native):
    assert native.open_signup is True and native.check_common_password is True
    assert native.create_user("intruder", "a good long passphrase") is None
    assert native.create_user("gone1", "a good long passphrase") is None
    assert UserInfo.find(native.db, "intruder") is None
    assert native.create_user("student1", "password") is None  # common and short
    assert native.create_user("student1", "a good long passphrase").is_authorized
    assert login(native, "student1", "a good long passphrase") == "student1"
    assert login(native, "student1", "a wrong passphrase") is None


def test_native_reads_a_password_reissued_by_another_process(native, state):
    """`class create --reissue` writes users_info from another process while the hub runs:
    the hub must check the new hash, not the row it loaded before."""
    held = native.create_user("student1", "the first passphrase")  # in the hub's session
    assert login(native, "student1", "the first passphrase") == "student1"
    other = new_session_factory(f"sqlite:///{state / 'hub.sqlite'}")()
    UserInfo.find(other, "student1").password = hash_password("reissued passphrase")
    other.commit()
    other.close()
    assert login(native, "student1", "reissued passphrase") == "student1"
    assert login(native, "student1", "the first passphrase") is None
    assert held.username == "student1"


def test_native_pauses_a_name_after_repeated_wrong_passwords(native):
    assert native.allowed_failed_logins == 10 and native.seconds_before_next_try == 600
    native.allowed_failed_logins = 3  # fewer bcrypt rounds in the test; the same rule
    native.create_user("student1", "a good long passphrase")
    for _ in range(native.allowed_failed_logins):
        assert login(native, "student1", "guess") is None
    assert login(native, "student1", "a good long passphrase") is None  # paused for 10 minutes


@pytest.mark.parametrize("auth", [FirstUseAuth(type="first-use"), NativeAuth(type="native")])
def test_a_kubernetes_hub_refuses_passwords_kept_by_the_hub(example_text, auth):
    """On a cluster the hub is reachable by strangers: no first-come claims of roster names;
    people log in through an identity provider (the chart refuses these types too)."""
    config = parse_platform(example_text)
    config = config.model_copy(update={"hub": config.hub.model_copy(update={"auth": auth})})
    with pytest.raises(AuthSetupError, match=f"hub.auth.type is '{auth.type}'"):
        configure_kubernetes_login(Config(), config, "/p.yaml", {"OAUTH_CLIENT_SECRET": "s"})


def test_logins_check_passwords_off_the_hubs_event_loop(state, native):
    """bcrypt costs ~0.3 s of CPU per login: on the hub's event loop, a class logging in at 9:00
    would stall every other request (spawns, the proxy's routes) for seconds."""
    import time

    import bcrypt

    first = first_use(state)
    assert login(first, "student1", "a good long passphrase") == "student1"
    native.create_user("demo", "a good long passphrase")
    started = time.monotonic()
    bcrypt.checkpw(b"x", hash_password("a good long passphrase"))
    one_check = time.monotonic() - started

    async def logins_while_ticking(authenticator, name):
        gaps, done = [], False

        async def tick():
            last = time.monotonic()
            while not done:
                await asyncio.sleep(0.005)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.02)  # ticking
        handler = SimpleNamespace(custom_login_error="")
        for _ in range(3):
            assert await authenticator.authenticate(
                handler, {"username": name, "password": "a good long passphrase"}
            )
        done = True
        await ticker
        return max(gaps)

    assert asyncio.run(logins_while_ticking(first, "student1")) < one_check / 2
    assert asyncio.run(logins_while_ticking(native, "demo")) < one_check / 2
