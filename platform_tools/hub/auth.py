"""Who may log in, as platform.yaml says now, whichever way people prove who they are.

JupyterHub reads ``allowed_users`` and ``admin_users`` once, at start. A summer school's
roster arrives the evening before (the Ansible roster play adds the class group to
platform.yaml), a student dropped from it must lose access, and a closed class must stop
admitting its members: so admission follows the live file (LiveConfig; a platform.yaml that
does not load keeps the last good version).

The identity provider only proves who someone is; admission is platform.yaml's alone:
admins, ``hub.users`` and members of groups that are not closed classes. It is checked at
every login and again every ``REFRESH_SECONDS`` while a person stays logged in (JupyterHub's
``refresh_user``, strictly: a person no longer admitted loses their cookie session, their API
tokens stop working and no server is started for them), and admin rights follow
``hub.admin_users`` the same way: a name removed from it is demoted within that time.

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
from platform_tools.config.auth import CILogonAuth, OAuthConfig, OIDCAuth
from platform_tools.config.live import LiveConfig
from platform_tools.config.models_base import USERNAME_PATTERN
from platform_tools.config.policy import access_problem

#: Where OAuthenticator reads the client secret (its own default); never in platform.yaml.
CLIENT_SECRET_VARIABLE = "OAUTH_CLIENT_SECRET"
#: On one machine, the state directory's secrets file that may hold it instead.
CLIENT_SECRET_FILE = "oauth-client-secret"
#: How often a logged-in person's admission and admin rights are checked again.
REFRESH_SECONDS = 60


class LivePlatformAccess(Authenticator):
    """Admits, refreshes and promotes by the live platform.yaml, and by nothing else."""

    platform_config_path = Unicode("", config=True, help="platform.yaml, followed for who may log in.")

    _live: LiveConfig | None = None

    def live_platform(self) -> PlatformConfig | None:
        if not self.platform_config_path:
            return None
        if self._live is None:
            self._live = LiveConfig(self.platform_config_path, self.log)
        return self._live.current()

    def normalize_username(self, username: str) -> str:
        # Lower-casing folds some non-ASCII letters into ASCII (the Kelvin sign K into "k"):
        # a name chosen at a provider must not become a roster name it is not.
        if not username.isascii():
            return username  # left as it is: it fails username_pattern and is refused
        return super().normalize_username(username)

    async def check_allowed(self, username: str, authentication: dict | None = None) -> bool:
        platform = self.live_platform()
        if platform is None:
            allowed = super().check_allowed(username, authentication)
            return bool(await allowed if isawaitable(allowed) else allowed)
        return access_problem(platform, username) is None  # admins are among them

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> bool | dict:
        platform = self.live_platform()
        if platform is None:
            refreshed = super().refresh_user(user, handler, **kwargs)
            return await refreshed if isawaitable(refreshed) else refreshed
        refused = access_problem(platform, user.name)
        if refused:
            self.log.warning("%s is no longer admitted by platform.yaml (%s): signed out", user.name, refused)
            return False
        refreshed = super().refresh_user(user, handler, **kwargs)
        refreshed = await refreshed if isawaitable(refreshed) else refreshed
        if refreshed is False:
            return False
        model = dict(refreshed) if isinstance(refreshed, dict) else {"name": user.name}
        model["admin"] = user.name in platform.hub.admin_users
        return model


class LiveAllowedSharedPasswordAuthenticator(LivePlatformAccess, SharedPasswordAuthenticator):
    """JupyterHub's shared-password login, with the allowed users of the live platform.yaml."""


class LiveOAuthAdmins(LivePlatformAccess):
    """Admin status from the live ``hub.admin_users`` at every OAuth login."""

    async def update_auth_model(self, auth_model: dict) -> dict:
        auth_model = await super().update_auth_model(auth_model)  # type: ignore[misc]
        platform = self.live_platform()
        if platform is not None:
            # The file decides, not the admin_users the hub started with: a name removed from
            # hub.admin_users loses admin rights at its next login (or refresh), with no restart.
            auth_model["admin"] = auth_model["name"] in platform.hub.admin_users
        return auth_model


class PlatformGitHubOAuthenticator(LiveOAuthAdmins, GitHubOAuthenticator):
    """GitHub logins, admitted by platform.yaml."""


class PlatformCILogonOAuthenticator(LiveOAuthAdmins, CILogonOAuthenticator):
    """CILogon logins, admitted by platform.yaml."""


class PlatformOIDCAuthenticator(LiveOAuthAdmins, GenericOAuthenticator):
    """Any OpenID Connect provider's logins, admitted by platform.yaml."""


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


def configure_admission(c: Any, cls: type[Authenticator], platform_config_path: str) -> None:
    """Admission by the live platform.yaml only, checked at login and every REFRESH_SECONDS.

    Set on every class the authenticator's settings are read from, the concrete one included
    (the most specific section wins in traitlets): a static allow rule anywhere earlier in the
    configuration (zero-to-jupyterhub's hub.config, say) must not reopen the door.
    """
    for section in {"Authenticator", "OAuthenticator", cls.__name__}:
        c[section].allow_all = False
        c[section].allow_existing_users = False
    c.LivePlatformAccess.platform_config_path = str(platform_config_path)
    c.Authenticator.username_pattern = USERNAME_PATTERN
    c.Authenticator.auth_refresh_age = REFRESH_SECONDS
    c.Authenticator.refresh_pre_spawn = True
    # API tokens and admin actions too, not only cookie sessions: stale means not admitted.
    c.Authenticator.auth_refresh_strict = True


def configure_authenticator(c: Any, auth: OAuthConfig, platform_config_path: str, secret: str) -> None:
    """OAuthenticator configured from ``hub.auth``, admitting by the live platform.yaml."""
    cls = AUTHENTICATORS[auth.type]
    c.JupyterHub.authenticator_class = cls
    configure_admission(c, cls, platform_config_path)
    c.OAuthenticator.client_id = auth.client_id
    c.OAuthenticator.client_secret = secret
    c.OAuthenticator.oauth_callback_url = auth.callback_url
    if auth.login_label:
        c.OAuthenticator.login_service = auth.login_label
    if isinstance(auth, CILogonAuth):
        c.CILogonOAuthenticator.idps = {idp.entity_id: _cilogon_idp(idp) for idp in auth.identity_providers}
    elif isinstance(auth, OIDCAuth):
        c.GenericOAuthenticator.authorize_url = auth.authorize_url
        c.GenericOAuthenticator.token_url = auth.token_url
        c.GenericOAuthenticator.userdata_url = auth.userdata_url
        c.GenericOAuthenticator.username_claim = auth.username_claim
        c.GenericOAuthenticator.scope = list(auth.scopes)
        if not auth.login_label:
            c.GenericOAuthenticator.login_service = "your institution"


def _cilogon_idp(idp: Any) -> dict:
    derivation: dict[str, str] = {"username_claim": idp.username_claim}
    if idp.strip_domain:
        derivation |= {"action": "strip_idp_domain", "domain": idp.strip_domain}
    return {"username_derivation": derivation}
