"""hub.auth turned into OAuthenticator's configuration, as both backends apply it."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from platform_tools.config.auth import CILogonAuth, GitHubAuth, OIDCAuth
from platform_tools.hub import auth as hub_auth
from platform_tools.hub.kubernetes import configure_kubernetes_login
from tests.auth import OIDC

pytestmark = pytest.mark.unit
CALLBACK = "https://hub.example.org/hub/oauth_callback"


def test_github_organizations_need_the_read_org_scope():
    c = Config()
    auth = GitHubAuth(type="github", client_id="x", callback_url=CALLBACK, allowed_organizations=["lab"])
    hub_auth.configure_authenticator(c, auth, "/p.yaml", "secret")
    assert c.JupyterHub.authenticator_class is hub_auth.PlatformGitHubOAuthenticator
    assert c.GitHubOAuthenticator.allowed_organizations == {"lab"}
    assert c.GitHubOAuthenticator.scope == ["read:org"]
    assert c.OAuthenticator.allow_existing_users is False
    assert c.LivePlatformAccess.platform_config_path == "/p.yaml"


def test_cilogon_identity_providers_become_its_idps():
    c = Config()
    auth = CILogonAuth(
        type="cilogon",
        client_id="x",
        callback_url=CALLBACK,
        identity_providers=[
            {"entity_id": "https://idp.example.edu/idp/shibboleth", "strip_domain": "example.edu"},
            {"entity_id": "urn:mace:incommon:other.edu", "username_claim": "eppn"},
        ],
    )
    hub_auth.configure_authenticator(c, auth, "/p.yaml", "secret")
    idps = c.CILogonOAuthenticator.idps
    assert idps["https://idp.example.edu/idp/shibboleth"] == {
        "username_derivation": {
            "username_claim": "email",
            "action": "strip_idp_domain",
            "domain": "example.edu",
        }
    }
    assert idps["urn:mace:incommon:other.edu"] == {"username_derivation": {"username_claim": "eppn"}}
    # OAuthenticator itself accepts them (its schema and entity ID checks)
    authenticator = hub_auth.PlatformCILogonOAuthenticator(config=c)
    assert set(authenticator.idps) == set(idps)


def test_oidc_groups_are_managed_from_the_claim():
    c = Config()
    auth = OIDCAuth(**{**OIDC, "groups_claim": "groups", "allowed_groups": ["lab"]})
    hub_auth.configure_authenticator(c, auth, "/p.yaml", "secret")
    assert c.GenericOAuthenticator.manage_groups is True
    assert c.GenericOAuthenticator.auth_state_groups_key == "oauth_user.groups"
    assert c.GenericOAuthenticator.allowed_groups == {"lab"}


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
