"""hub.auth: each login's settings are checked where they are written, with messages that say
which field is wrong and why."""

from __future__ import annotations

import pytest
import yaml

from platform_tools.config import ConfigError, parse_platform
from tests.auth import OIDC

pytestmark = pytest.mark.unit

BASE = {
    "version": 1,
    "name": "auth-test",
    "hub": {"admin_users": ["admin"]},
    "images": {"helio": "example.org/helio:1"},
    "profiles": {
        "small": {
            "display_name": "Small",
            "cpu_guarantee": 1,
            "cpu_limit": 1,
            "mem_guarantee_gib": 1,
            "mem_limit_gib": 1,
            "image": "helio",
            "price_per_hour_usd": 0.02,
            "default": True,
        }
    },
}


def platform(auth: dict | None):
    config = yaml.safe_load(yaml.safe_dump(BASE))
    if auth is not None:
        config["hub"]["auth"] = auth
    return parse_platform(yaml.safe_dump(config))


def test_the_default_is_the_shared_password_of_one_machine():
    assert platform(None).hub.auth.type == "shared-password"


def test_each_provider_loads():
    assert platform(OIDC).hub.auth.token_url == "https://login.example.org/token"
    github = {
        "type": "github",
        "client_id": "x",
        "callback_url": "https://hub.example.org/hub/oauth_callback",
    }
    assert platform(github).hub.auth.type == "github"
    cilogon = {
        "type": "cilogon",
        "client_id": "cilogon:/client_id/1",
        "callback_url": "https://hub.example.org/hub/oauth_callback",
        "identity_providers": [{"entity_id": "urn:mace:incommon:example.edu", "strip_domain": "example.edu"}],
    }
    assert platform(cilogon).hub.auth.identity_providers[0].username_claim == "email"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            {"token_url": "http://login.example.org/token"},
            "hub.auth: token_url 'http://login.example.org/token' is plain http",
        ),
        ({"callback_url": "https://hub.example.org/callback"}, "must end with /hub/oauth_callback"),
        (
            {"allowed_groups": ["lab"]},
            "hub.auth.allowed_groups: unknown field 'allowed_groups'",
        ),
        (
            {"client_secret": "s3cret"},
            "client_secret does not belong in platform.yaml",
        ),
        ({"token_url": "http://login.example.org\\@localhost/token"}, "hub.auth.token_url: invalid value"),
        ({"token_url": "HTTP://login.example.org/token"}, "is plain http to another host"),
        ({"type": "dummy"}, "hub.auth"),
    ],
)
def test_bad_settings_name_the_field(change, says):
    with pytest.raises(ConfigError) as error:
        platform({**OIDC, **change})
    assert says in str(error.value)


def test_plain_http_is_allowed_to_this_machine_or_when_asked():
    local = {
        **OIDC,
        "callback_url": "http://127.0.0.1:8000/hub/oauth_callback",
        "token_url": "http://localhost:9400/t",
    }
    assert platform(local).hub.auth.allow_plain_http is False
    test_cluster = {**OIDC, "token_url": "http://10.0.0.5:9400/token", "allow_plain_http": True}
    assert platform(test_cluster).hub.auth.token_url.startswith("http://10.0.0.5")


def test_cilogon_needs_an_identity_provider():
    with pytest.raises(ConfigError, match="identity_providers"):
        platform(
            {"type": "cilogon", "client_id": "x", "callback_url": "https://h.example.org/hub/oauth_callback"}
        )


def test_an_oidc_login_names_its_username_claim():
    """No default: preferred_username is self-chosen on providers with self-registration."""
    with pytest.raises(ConfigError, match="hub.auth.username_claim: required field is missing"):
        platform({k: v for k, v in OIDC.items() if k != "username_claim"})


def test_cilogon_strips_a_domain_only_with_one_identity_provider():
    two = [
        {"entity_id": "https://idp.a.edu/idp/shibboleth", "strip_domain": "a.edu"},
        {"entity_id": "https://idp.b.edu/idp/shibboleth"},
    ]
    auth = {"type": "cilogon", "client_id": "x", "callback_url": "https://h.example.org/hub/oauth_callback"}
    with pytest.raises(ConfigError, match="the same username"):
        platform({**auth, "identity_providers": two})


def test_first_use_and_native_load_with_safe_defaults():
    first_use = platform({"type": "first-use"}).hub.auth
    assert (first_use.min_password_length, first_use.allow_password_change) == (8, True)
    native = platform({"type": "native", "min_password_length": 12}).hub.auth
    assert (native.min_password_length, native.signup, native.failed_logins_before_pause) == (12, True, 10)


@pytest.mark.parametrize(
    ("auth", "says"),
    [
        ({"type": "first-use", "min_password_length": 4}, "hub.auth.min_password_length"),
        ({"type": "native", "min_password_length": 7}, "hub.auth.min_password_length"),
        ({"type": "native", "open_signup": True}, "hub.auth.open_signup: unknown field"),
        ({"type": "first-use", "client_id": "x"}, "hub.auth.client_id: unknown field"),
        ({"type": "native", "failed_logins_before_pause": -1}, "hub.auth.failed_logins_before_pause"),
    ],
)
def test_password_logins_name_a_bad_field(auth, says):
    with pytest.raises(ConfigError) as error:
        platform(auth)
    assert says in str(error.value)


@pytest.mark.parametrize("kind", ["first-use", "native", "oidc"])
def test_each_persons_own_password_may_serve_several_people_as_their_own_accounts(kind):
    """A class on one machine with system-users: first-use, native and OIDC pass the isolation
    check; the shared password does not (anyone with it is anyone) unless local.trusted."""
    from platform_tools.config.policy import isolation_problem

    def served(auth: dict | None):
        config = yaml.safe_load(yaml.safe_dump(BASE))
        config["hub"]["users"] = ["ann", "bob"]
        if auth is not None:
            config["hub"]["auth"] = auth
        return parse_platform(yaml.safe_dump(config))

    assert isolation_problem(served(OIDC if kind == "oidc" else {"type": kind}), "system-users") is None
    assert "shared-password" in isolation_problem(served(None), "system-users")
