"""hub.auth turned into OAuthenticator's configuration, as both backends apply it."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from platform_tools.config.auth import CILogonAuth, GitHubAuth, OIDCAuth
from platform_tools.config.models_base import USERNAME_PATTERN
from platform_tools.hub import auth as hub_auth
from platform_tools.hub.kubernetes import configure_kubernetes_login
from tests.auth import OIDC

pytestmark = pytest.mark.unit
CALLBACK = "https://hub.example.org/hub/oauth_callback"


def test_admission_is_platform_yamls_alone_on_every_section_it_is_read_from():
    """allow_all / allow_existing_users off on the concrete class too (the most specific section
    wins), and the refresh that re-checks logged-in people, strictly."""
    c = Config()
    c.PlatformGitHubOAuthenticator.allow_all = True  # as if an earlier configuration had said so
    auth = GitHubAuth(type="github", client_id="x", callback_url=CALLBACK)
    hub_auth.configure_authenticator(c, auth, "/p.yaml", "secret")
    assert c.JupyterHub.authenticator_class is hub_auth.PlatformGitHubOAuthenticator
    authenticator = hub_auth.PlatformGitHubOAuthenticator(config=c)
    assert authenticator.allow_all is False and authenticator.allow_existing_users is False
    assert authenticator.auth_refresh_age == hub_auth.REFRESH_SECONDS
    assert authenticator.refresh_pre_spawn is True and authenticator.auth_refresh_strict is True
    assert authenticator.username_pattern == USERNAME_PATTERN
    assert authenticator.platform_config_path == "/p.yaml"
    assert authenticator.normalize_username("Ann") == "ann"
    assert authenticator.normalize_username("\u212aate") == "\u212aate"  # not folded into "kate"


@pytest.mark.parametrize(
    ("providers", "expected"),
    [
        (
            [{"entity_id": "https://idp.example.edu/idp/shibboleth", "strip_domain": "example.edu"}],
            {
                "https://idp.example.edu/idp/shibboleth": {
                    "username_derivation": {
                        "username_claim": "email",
                        "action": "strip_idp_domain",
                        "domain": "example.edu",
                    }
                }
            },
        ),
        (
            [
                {"entity_id": "https://idp.example.edu/idp/shibboleth"},
                {"entity_id": "urn:mace:incommon:other.edu", "username_claim": "eppn"},
            ],
            {
                "https://idp.example.edu/idp/shibboleth": {
                    "username_derivation": {"username_claim": "email"}
                },
                "urn:mace:incommon:other.edu": {"username_derivation": {"username_claim": "eppn"}},
            },
        ),
    ],
)
def test_cilogon_identity_providers_become_its_idps(providers, expected):
    c = Config()
    auth = CILogonAuth(type="cilogon", client_id="x", callback_url=CALLBACK, identity_providers=providers)
    hub_auth.configure_authenticator(c, auth, "/p.yaml", "secret")
    assert c.CILogonOAuthenticator.idps == expected
    # OAuthenticator itself accepts them (its schema and entity ID checks)
    assert set(hub_auth.PlatformCILogonOAuthenticator(config=c).idps) == set(expected)


def test_a_kubernetes_hub_refuses_a_shared_password_and_a_missing_secret(example_text):
    from platform_tools.config import parse_platform

    shared = parse_platform(example_text)
    with pytest.raises(hub_auth.AuthSetupError, match="hub.auth.type is 'shared-password'"):
        configure_kubernetes_login(Config(), shared, "/p.yaml", {"OAUTH_CLIENT_SECRET": "s"})
    oidc = shared.model_copy(update={"hub": shared.hub.model_copy(update={"auth": OIDCAuth(**OIDC)})})
    with pytest.raises(
        hub_auth.AuthSetupError, match="Secret named in jupyterhub.hub.extraEnv.OAUTH_CLIENT_SECRET"
    ):
        configure_kubernetes_login(Config(), oidc, "/p.yaml", {})
