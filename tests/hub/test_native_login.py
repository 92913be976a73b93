"""hub.auth: native through the hub's sign-up and login forms in headless Chromium, on a real
`parhelion up`: a listed person signs up and logs in at once (the roster is the approval); a
name platform.yaml does not list is refused at sign-up with a sentence saying why, and cannot
log in; a one-time password `class create --passwords` issued logs its student in, a wrong one
does not, and nobody can sign up over it."""

from __future__ import annotations

import pytest

from tests.auth import form_login, issue_class_passwords, login_error, password_platform_text
from tests.platform import running_platform

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with running_platform(
        tmp_path_factory.mktemp("native"), password_platform_text("    type: native\n")
    ) as platform:
        yield platform


def sign_up(browser, hub_url: str, name: str, password: str) -> str:
    """Fill in the sign-up form from the login page's link; the page's answer."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{hub_url}/hub/logout")
    browser.get(f"{hub_url}/hub/login")
    browser.find_element(By.LINK_TEXT, "Sign up").click()
    browser.find_element(By.ID, "username_input").send_keys(name)
    browser.find_element(By.ID, "password_input").send_keys(password)
    browser.find_element(By.ID, "password_confirmation_input").send_keys(password)
    browser.find_element(By.ID, "signup_submit").click()
    answer = WebDriverWait(browser, 60).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "div.alert[role=alert]")
    )
    return answer[0].text


def test_a_listed_person_signs_up_and_logs_in_at_once(hub, browser):
    assert "password" in sign_up(browser, hub.url, "demo", "password")  # too common: refused
    assert "signup was successful" in sign_up(browser, hub.url, "demo", "demo's own passphrase")
    assert form_login(browser, hub.url, "demo", "demo's own passphrase")
    assert not form_login(browser, hub.url, "demo", "somebody else's guess")
    assert "Invalid username or password" in login_error(browser)


def test_a_name_platform_yaml_does_not_list_cannot_sign_up_and_reads_why(hub, browser):
    said = sign_up(browser, hub.url, "mallory", "mallory's passphrase")
    assert "mallory is not a user of this platform" in said
    assert "Only people on this platform's roster can sign up" in said
    assert not form_login(browser, hub.url, "mallory", "mallory's passphrase")


def test_an_issued_one_time_password_logs_in_and_nobody_signs_up_over_it(hub, browser, tmp_path):
    passwords = issue_class_passwords(hub, tmp_path / "sheet.csv")
    assert "already in use" in sign_up(browser, hub.url, "student001", "claimed by someone else")
    assert not form_login(browser, hub.url, "student001", "claimed by someone else")
    assert form_login(browser, hub.url, "student001", passwords["student001"])


def test_an_expired_login_form_reads_try_again_not_a_server_error(hub):
    """JupyterHub turns a stale form's refusal into the login page's message: with native's own
    page that answered 500 (its renderer did not take JupyterHub 6's arguments)."""
    import requests

    answer = requests.post(f"{hub.url}/hub/login", data={"username": "demo", "password": "x"}, timeout=30)
    assert answer.status_code == 403
    assert "Login form invalid or expired. Try again." in answer.text and "Sign up" in answer.text


def test_the_admins_password_is_issued_at_start_so_nobody_signs_up_as_admin(hub, browser):
    import re

    found = re.search(r"admin admin  one-time password: (\S+)", hub.output)
    assert found, hub.output
    assert "already in use" in sign_up(browser, hub.url, "admin", "I came here first, now I am admin")
    assert not form_login(browser, hub.url, "admin", "I came here first, now I am admin")
    assert form_login(browser, hub.url, "admin", found.group(1))
