"""hub.auth: first-use through the hub's login form in headless Chromium, on a real
`parhelion up`: a listed person's first login sets their password, which alone logs them in
after; a name platform.yaml does not list cannot log in or leave a password behind; a
one-time password `class create --passwords` issued is the only one its student's first login
takes, and the student can change it."""

from __future__ import annotations

import pytest

from platform_tools.contract.passwords import first_use_store, open_first_use_store
from tests.auth import form_login, issue_class_passwords, login_error, password_platform_text
from tests.platform import running_platform

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    text = password_platform_text("    type: first-use\n    min_password_length: 10\n")
    with running_platform(tmp_path_factory.mktemp("first-use"), text) as platform:
        yield platform


def stored_names(hub) -> set[str]:
    with open_first_use_store(first_use_store(hub.state)) as db:
        return {key.decode() for key in db.keys()}  # noqa: SIM118 (gdbm objects do not iterate)


def test_a_first_login_sets_the_password_that_alone_logs_in_after(hub, browser):
    assert not form_login(browser, hub.url, "demo", "short")
    assert "at least 10 characters" in login_error(browser)
    assert form_login(browser, hub.url, "demo", "demo's own passphrase")
    assert not form_login(browser, hub.url, "demo", "somebody else's guess")
    assert "Invalid username or password" in login_error(browser)
    assert form_login(browser, hub.url, "demo", "demo's own passphrase")


def test_a_name_platform_yaml_does_not_list_cannot_log_in_nor_claim_a_password(hub, browser):
    assert not form_login(browser, hub.url, "mallory", "mallory's passphrase")
    assert not form_login(browser, hub.url, "student001", "claimed before the class")
    assert {"mallory", "student001"}.isdisjoint(stored_names(hub))


def test_an_issued_one_time_password_is_the_only_first_login_and_can_be_changed(hub, browser, tmp_path):
    from selenium.webdriver.common.by import By

    passwords = issue_class_passwords(hub, tmp_path / "sheet.csv")
    assert set(passwords) == {"student001", "student002"}
    assert not form_login(browser, hub.url, "student001", "my own first choice")
    assert form_login(browser, hub.url, "student001", passwords["student001"])
    browser.get(f"{hub.url}/hub/auth/change-password")
    browser.find_element(By.ID, "password_input").send_keys("student001 chose this")
    browser.find_element(By.ID, "login_submit").click()
    assert "changed successfully" in browser.find_element(By.TAG_NAME, "body").text
    assert not form_login(browser, hub.url, "student001", passwords["student001"])
    assert form_login(browser, hub.url, "student001", "student001 chose this")
    assert form_login(browser, hub.url, "student002", passwords["student002"])


def test_an_expired_login_form_reads_try_again_not_a_server_error(hub):
    """As on JupyterHub's own page; first-use's renderer did not take JupyterHub 6's arguments."""
    import requests

    answer = requests.post(f"{hub.url}/hub/login", data={"username": "demo", "password": "x"}, timeout=30)
    assert answer.status_code == 403
    assert "Login form invalid or expired. Try again." in answer.text


def test_the_admins_first_password_is_issued_at_start_not_left_to_whoever_comes_first(hub, browser):
    """Admin names are known in advance: `parhelion up` issues each admin a one-time password
    before the hub answers, prints it once and keeps it in a private CSV; a first login with
    any other password is refused."""
    import re
    import stat

    found = re.search(r"admin admin  one-time password: (\S+)", hub.output)
    assert found, hub.output
    sheets = list((hub.state / "secrets").glob("admin-passwords-*.csv"))
    assert len(sheets) == 1 and stat.S_IMODE(sheets[0].stat().st_mode) == 0o600
    assert found.group(1) in sheets[0].read_text()
    assert not form_login(browser, hub.url, "admin", "I came here first, now I am admin")
    assert "admin" in stored_names(hub)  # issued before anyone came: nothing else can claim it
    assert form_login(browser, hub.url, "admin", found.group(1))
