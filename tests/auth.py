"""A Kubernetes deployment's login in tests: an OpenID Connect provider (hub.auth: oidc).

Kubernetes hubs refuse shared passwords, so every test that configures one gives its
platform.yaml this section, and the client secret in the hub's environment as the chart does.
"""

from __future__ import annotations

from platform_tools.config import PlatformConfig
from platform_tools.config.auth import OIDCAuth

ISSUER = "https://login.example.org"
OIDC = {
    "type": "oidc",
    "client_id": "parhelion",
    "callback_url": "https://hub.example.org/hub/oauth_callback",
    "authorize_url": f"{ISSUER}/authorize",
    "token_url": f"{ISSUER}/token",
    "userdata_url": f"{ISSUER}/userinfo",
    "username_claim": "sub",
}
CLIENT_SECRET = {"OAUTH_CLIENT_SECRET": "test-client-secret"}


def with_oidc(platform: PlatformConfig) -> PlatformConfig:
    """``platform`` logging people in through the test provider."""
    hub = platform.hub.model_copy(update={"auth": OIDCAuth(**OIDC)})
    return platform.model_copy(update={"hub": hub})


# ----------------------------------------------------- one machine's per-person passwords

#: A lean platform.yaml for login tests: no Dask gateway, a tiny sample archive; `simple` and
#: `trusted` as in the example, so these tests depend on the login alone.
LEAN = {"dask_gateway:\n  enabled: true\n": "dask_gateway:\n  enabled: false\n"}


def password_platform_text(auth: str) -> str:
    """The example platform.yaml with ``hub.auth`` replaced by ``auth`` (YAML under ``auth:``)."""
    import re

    from tests.platform import platform_config_text

    text = platform_config_text(sample_files=4, **LEAN)
    return re.sub(r"  auth:\n    type: shared-password[^\n]*\n", f"  auth:\n{auth}", text)


def issue_class_passwords(platform, sheet, *extra: str) -> dict[str, str]:
    """`parhelion class create ... --passwords sheet` against the running platform, as an
    instructor runs it; returns the sheet's username -> password."""
    import csv

    from tests.platform import run_parhelion

    roster = sheet.with_name("roster.csv")
    roster.write_text("username\nstudent001\nstudent002\n")
    done = run_parhelion(
        "class", "create", "helio-school", "--config", str(platform.config),
        "--state-dir", str(platform.state), "--roster", str(roster), "--start", "2026-01-05",
        "--end", "2036-01-09", "--profile", "small", "--budget-usd", "5",
        "--passwords", str(sheet), *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with open(sheet, newline="") as handle:
        passwords = {row["username"]: row["password"] for row in csv.DictReader(handle)}
    assert not any(password in done.stdout + done.stderr for password in passwords.values())
    return passwords


def form_login(browser, hub_url: str, name: str, password: str) -> bool:
    """Log in through the hub's login form as a person does; True if the hub let them in."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{hub_url}/hub/logout")
    browser.get(f"{hub_url}/hub/login?next=/hub/home")  # not /hub/spawn: no server is started
    browser.find_element(By.ID, "username_input").send_keys(name)
    browser.find_element(By.ID, "password_input").send_keys(password)
    browser.find_element(By.ID, "login_submit").click()
    # the answer is either another page (in) or the login form again with its error (refused)
    WebDriverWait(browser, 60).until(
        lambda b: "/hub/login" not in b.current_url or b.find_elements(By.CSS_SELECTOR, ".login_error")
    )
    return "/hub/login" not in browser.current_url


def login_error(browser) -> str:
    """What the login form says after a refused login."""
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".login_error"))
