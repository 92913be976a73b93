"""Who may log in, as platform.yaml says now, whichever way people prove who they are.

JupyterHub reads ``allowed_users`` and ``admin_users`` once, at start. A summer school's
roster arrives the evening before (the Ansible roster play adds the class group to
platform.yaml), a student dropped from it must lose access, and a closed class must stop
admitting its members: so every login is checked against the live file (LiveConfig; a
platform.yaml that does not load keeps the last good version).

The identity provider only proves who someone is. Admission is platform.yaml's: admins,
``hub.users`` and members of groups that are not closed classes, plus what ``hub.auth``
explicitly adds on the provider's side (GitHub organizations, OIDC groups). Admin rights
follow ``hub.admin_users`` at every login too: removing a name demotes them at their next.

``configure_authenticator`` turns ``hub.auth`` into OAuthenticator's configuration; the
local hub and zero-to-jupyterhub's hub both call it, so the two log people in alike.
"""

from __future__ import annotations

import os
from inspect import isawaitable
from typing import Any

from jupyterhub.auth import Authenticator
from jupyterhub.authenticators.shared import SharedPasswordAuthenticator
from oauthenticator.cilogon import CILogonOAuthenticator
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from traitlets import Unicode

from platform_tools.config import PlatformConfig
from platform_tools.config.auth import CILogonAuth, GitHubAuth, OAuthConfig, OIDCAuth
from platform_tools.config.live import LiveConfig

#: Where OAuthenticator reads the client secret (its own default); never in platform.yaml.
CLIENT_SECRET_VARIABLE = "OAUTH_CLIENT_SECRET"
#: On one machine, the state directory's secrets file that may hold it instead.
CLIENT_SECRET_FILE = "oauth-client-secret"


class LivePlatformAccess(Authenticator):
    """Admits whom the live platform.yaml admits, then whom the authenticator's own rules would
    (``provider_rules``: GitHub organizations, OIDC groups; never a static ``allowed_users``,
    which JupyterHub fills with every existing user and so would keep dropped students in)."""

    #: Consult the authenticator's own check after platform.yaml's.
    provider_rules = True

    platform_config_path = Unicode("", config=True, help="platform.yaml, followed for who may log in.")

    _live: LiveConfig | None = None

    def live_platform(self) -> PlatformConfig | None:
        if not self.platform_config_path:
            return None
        if self._live is None:
            self._live = LiveConfig(self.platform_config_path, self.log)
        return self._live.current()

    async def check_allowed(self, username: str, authentication: dict | None = None) -> bool:
        platform = self.live_platform()
        if platform is not None and (
            username in platform.allowed_users or username in platform.hub.admin_users
        ):
            return True
        if platform is not None and not self.provider_rules:
            return False
        allowed = super().check_allowed(username, authentication)
        return bool(await allowed if isawaitable(allowed) else allowed)


class LiveAllowedSharedPasswordAuthenticator(LivePlatformAccess, SharedPasswordAuthenticator):
    """JupyterHub's shared-password login, with the allowed users of the live platform.yaml."""

    provider_rules = False


class LiveOAuthAdmins(LivePlatformAccess):
    """Admin status from the live ``hub.admin_users`` at every OAuth login."""

    async def update_auth_model(self, auth_model: dict) -> dict:
        auth_model = await super().update_auth_model(auth_model)  # type: ignore[misc]
        platform = self.live_platform()
        if platform is not None:
            # The file decides, not the admin_users the hub started with: a name removed from
            # hub.admin_users loses admin rights at its next login, with no restart.
            auth_model["admin"] = auth_model["name"] in platform.hub.admin_users
        return auth_model


class PlatformGitHubOAuthenticator(LiveOAuthAdmins, GitHubOAuthenticator):
    """GitHub logins, admitted by platform.yaml (and its allowed organizations)."""


class PlatformCILogonOAuthenticator(LiveOAuthAdmins, CILogonOAuthenticator):
    """CILogon logins, admitted by platform.yaml."""


class PlatformOIDCAuthenticator(LiveOAuthAdmins, GenericOAuthenticator):
    """Any OpenID Connect provider's logins, admitted by platform.yaml (and its allowed groups)."""


AUTHENTICATORS: dict[str, type[Authenticator]] = {
    "github": PlatformGitHubOAuthenticator,
    "cilogon": PlatformCILogonOAuthenticator,
    "oidc": PlatformOIDCAuthenticator,
}


class AuthSetupError(RuntimeError):
    """The login cannot be set up as platform.yaml asks; the message says what to fix."""


def client_secret(environ: os._Environ | dict[str, str], where: str) -> str:
    """The OAuth client secret, or an error saying where it should have come from."""
    secret = environ.get(CLIENT_SECRET_VARIABLE, "").strip()
    if not secret:
        raise AuthSetupError(f"hub.auth needs the OAuth client secret in {CLIENT_SECRET_VARIABLE}: {where}")
    return secret


def configure_authenticator(c: Any, auth: OAuthConfig, platform_config_path: str, secret: str) -> None:
    """OAuthenticator configured from ``hub.auth``, admitting by the live platform.yaml."""
    cls = AUTHENTICATORS[auth.type]
    c.JupyterHub.authenticator_class = cls
    c.LivePlatformAccess.platform_config_path = str(platform_config_path)
    c.OAuthenticator.client_id = auth.client_id
    c.OAuthenticator.client_secret = secret
    c.OAuthenticator.oauth_callback_url = auth.callback_url
    c.OAuthenticator.allow_existing_users = False  # a dropped student must not stay in
    if auth.login_label:
        c.OAuthenticator.login_service = auth.login_label
    if isinstance(auth, GitHubAuth) and auth.allowed_organizations:
        c.GitHubOAuthenticator.allowed_organizations = set(auth.allowed_organizations)
        c.GitHubOAuthenticator.scope = ["read:org"]  # membership of private orgs and teams
    elif isinstance(auth, CILogonAuth):
        c.CILogonOAuthenticator.idps = {idp.entity_id: _cilogon_idp(idp) for idp in auth.identity_providers}
    elif isinstance(auth, OIDCAuth):
        c.GenericOAuthenticator.authorize_url = auth.authorize_url
        c.GenericOAuthenticator.token_url = auth.token_url
        c.GenericOAuthenticator.userdata_url = auth.userdata_url
        c.GenericOAuthenticator.username_claim = auth.username_claim
        c.GenericOAuthenticator.scope = list(auth.scopes)
        if not auth.login_label:
            c.GenericOAuthenticator.login_service = "your institution"
        if auth.groups_claim:
            c.GenericOAuthenticator.manage_groups = True
            c.GenericOAuthenticator.auth_state_groups_key = f"oauth_user.{auth.groups_claim}"
            c.GenericOAuthenticator.allowed_groups = set(auth.allowed_groups)


def _cilogon_idp(idp: Any) -> dict:
    derivation: dict[str, str] = {"username_claim": idp.username_claim}
    if idp.strip_domain:
        derivation |= {"action": "strip_idp_domain", "domain": idp.strip_domain}
    return {"username_derivation": derivation}
