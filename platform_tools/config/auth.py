"""How people log in: ``hub.auth`` in platform.yaml.

One section chooses the login for every deployment. On one machine, one person (or a group
that says ``local.trusted``) may use the shared password; a class on one machine gives each
person their own password:

* ``first-use``: jupyterhub-firstuseauthenticator, as The Littlest JupyterHub: a listed
  person's first login sets their password (or `class create --passwords` issues one);
* ``native``: NativeAuthenticator: listed people sign up on the hub's sign-up page (names
  platform.yaml does not admit cannot), or `class create --passwords` issues their password.

Anywhere reachable by strangers (every Kubernetes deployment) people log in through an
identity provider with OAuthenticator, JupyterHub's own OAuth family:

* ``github``: GitHub accounts (a GitHub OAuth app);
* ``cilogon``: CILogon, the research and education federation (university logins), with
  the identity providers the platform accepts and how a username is derived from each;
* ``oidc``: any OpenID Connect provider (Keycloak, Auth0, Okta, Google, an institute's),
  with the claim that names a person.

Who may log in is platform.yaml's decision alone, whichever provider proves who someone is:
admins, ``hub.users`` and members of groups that are not closed classes, followed live
(platform_tools.hub.auth). There is deliberately no "any member of this GitHub organization
or provider group" rule: such people would be in no platform group, so no profile choice,
quota or budget would hold them, and a closed class could not shut them out. To admit an
organization, list its members (the Ansible roster play writes the group).

The client secret is never in platform.yaml (a file Ansible renders into a ConfigMap):
OAuthenticator reads it from ``OAUTH_CLIENT_SECRET``, which the chart fills from a Secret and
the local platform from its state directory.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, field_validator, model_validator

from platform_tools.config.models_base import StrictModel

#: The path JupyterHub serves OAuth callbacks on; the provider must redirect exactly there.
CALLBACK_PATH = "/hub/oauth_callback"

#: An http(s) URL without user info or backslashes (``http://evil.org\@localhost/`` reads as
#: localhost to a parser and as evil.org to a browser).
HttpsUrl = Annotated[str, StringConstraints(pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/\\@]+(/[^\s\\]*)?$")]


def _plain_http_is_local(url: str, field: str) -> str:
    """Plain http only to this machine: anything else would send codes and tokens in clear."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise ValueError(
            f"{field} {url!r} is plain http to another host: use https:// "
            "(allow_plain_http is for test clusters)"
        )
    return url


class SharedPasswordAuth(StrictModel):
    """JupyterHub's SharedPasswordAuthenticator: the listed users log in with one user
    password, admins with a separate admin password, both generated on first start and kept
    in the state directory. For one machine and a small trusted group only; a Kubernetes
    deployment refuses it (anyone who learns the password is anyone)."""

    type: Literal["shared-password"] = "shared-password"


#: Below this many characters a password falls to guessing through the login form in hours.
MIN_PASSWORD_LENGTH = 8


class _PasswordLogin(StrictModel):
    """What both per-person password logins share."""

    min_password_length: Annotated[int, Field(ge=MIN_PASSWORD_LENGTH, le=128)] = Field(
        MIN_PASSWORD_LENGTH,
        description=f"The shortest password a person may set (at least {MIN_PASSWORD_LENGTH}).",
    )


class FirstUseAuth(_PasswordLogin):
    """jupyterhub-firstuseauthenticator (as The Littlest JupyterHub): the first login of a name
    platform.yaml admits sets that name's password, kept hashed (bcrypt) in the state directory.
    Until then anyone who knows the name can take it: issue passwords with
    `parhelion class create --passwords FILE.csv` to close that gap. One machine only."""

    type: Literal["first-use"]
    allow_password_change: bool = Field(
        True,
        description="Logged-in people may change their password at /hub/auth/change-password "
        "(an issued one-time password should be changed).",
    )


class NativeAuth(_PasswordLogin):
    """NativeAuthenticator: people sign up on the hub's /hub/signup page and log in with the
    password they chose (kept hashed, bcrypt, in the hub's database). Only names platform.yaml
    admits may sign up, and a sign-up by such a name is enough (no admin approval): the roster
    is the approval. Common passwords are refused. One machine only."""

    type: Literal["native"]
    signup: bool = Field(
        True,
        description="Listed people may sign up themselves; false: only passwords issued by "
        "`parhelion class create --passwords` (or set by an admin) log in.",
    )
    failed_logins_before_pause: Annotated[int, Field(ge=0)] = Field(
        10,
        description="After this many wrong passwords in a row a name is paused for 10 minutes "
        "(0: never), slowing guessing through the login form.",
    )


class _OAuth(StrictModel):
    client_id: str = Field(
        min_length=1, description="The OAuth client (application) ID registered with the provider."
    )
    callback_url: HttpsUrl = Field(
        description=f"The hub's public URL + {CALLBACK_PATH}, exactly as registered with the provider "
        f"(e.g. https://hub.example.org{CALLBACK_PATH})."
    )
    login_label: str = Field("", description="The login button's text (empty: the provider's name).")
    allow_plain_http: bool = Field(
        False,
        description="Allow http:// URLs to other hosts (and a chart without HTTPS): only for a test "
        "cluster nobody else can reach, never in production.",
    )

    #: The fields holding URLs that carry codes and tokens.
    url_fields: ClassVar[tuple[str, ...]] = ("callback_url",)

    @model_validator(mode="before")
    @classmethod
    def _no_secret_here(cls, data: object) -> object:
        if isinstance(data, dict) and "client_secret" in data:
            raise ValueError(
                "client_secret does not belong in platform.yaml (Ansible renders it into a ConfigMap "
                "anyone in the namespace can read): put it in the Secret parhelion-oauth, key "
                "client-secret (Ansible: parhelion_chart_oauth_client_secret), or on one machine in "
                "OAUTH_CLIENT_SECRET or the state directory's secrets/oauth-client-secret"
            )
        return data

    @field_validator("callback_url")
    @classmethod
    def _is_the_hubs_callback(cls, url: str) -> str:
        if not urlsplit(url).path.endswith(CALLBACK_PATH):
            raise ValueError(f"callback_url {url!r} must end with {CALLBACK_PATH} (JupyterHub's callback)")
        return url

    @model_validator(mode="after")
    def _no_codes_in_clear(self) -> _OAuth:
        if not self.allow_plain_http:
            for field in self.url_fields:
                _plain_http_is_local(getattr(self, field), field)
        return self

    @property
    def callback_host(self) -> str:
        return urlsplit(self.callback_url).hostname or ""


class GitHubAuth(_OAuth):
    """GitHub accounts through a GitHub OAuth app (OAuthenticator's GitHubOAuthenticator).
    The username is the GitHub login, lower-cased; a login freed by a rename can be taken by
    someone else, so remove people from platform.yaml when they leave."""

    type: Literal["github"]


class CILogonIdentityProvider(StrictModel):
    """One identity provider CILogon may log people in with, and their username there."""

    entity_id: Annotated[str, StringConstraints(pattern=r"^(https?|urn):\S+$")] = Field(
        description="The provider's entity ID as CILogon lists it (https://cilogon.org/idplist), "
        "e.g. https://idp.example.edu/idp/shibboleth or urn:mace:incommon:example.edu."
    )
    username_claim: str = Field("email", min_length=1, description="The claim that becomes the username.")
    strip_domain: str = Field(
        "", description="A domain removed from usernames (alice@example.edu -> alice); empty: keep it."
    )


class CILogonAuth(_OAuth):
    """CILogon (OAuthenticator's CILogonOAuthenticator): university and lab logins."""

    type: Literal["cilogon"]
    identity_providers: list[CILogonIdentityProvider] = Field(
        min_length=1, description="The identity providers accepted (CILogon requires at least one)."
    )

    @field_validator("identity_providers")
    @classmethod
    def _one_namespace_per_name(
        cls, providers: list[CILogonIdentityProvider]
    ) -> list[CILogonIdentityProvider]:
        stripped = [p.entity_id for p in providers if p.strip_domain]
        if len(stripped) > 1 or (stripped and len(providers) > 1):
            raise ValueError(
                "strip_domain with more than one identity provider would give bob@a.edu and bob@b.edu "
                "the same username: strip the domain only when one provider is accepted"
            )
        return providers


class OIDCAuth(_OAuth):
    """Any OpenID Connect provider (OAuthenticator's GenericOAuthenticator)."""

    type: Literal["oidc"]
    url_fields: ClassVar[tuple[str, ...]] = ("callback_url", "authorize_url", "token_url", "userdata_url")
    authorize_url: HttpsUrl = Field(description="The provider's authorization endpoint.")
    token_url: HttpsUrl = Field(description="The provider's token endpoint.")
    userdata_url: HttpsUrl = Field(description="The provider's userinfo endpoint.")
    username_claim: str = Field(
        min_length=1,
        description="The userinfo claim that becomes the username: one the person cannot choose "
        "(an institutional ID, or email where the provider verifies it), never a self-chosen "
        "preferred_username on a provider with self-registration.",
    )
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"], min_length=1)


OAuthConfig = GitHubAuth | CILogonAuth | OIDCAuth
PasswordAuth = FirstUseAuth | NativeAuth
HubAuth = Annotated[
    SharedPasswordAuth | FirstUseAuth | NativeAuth | GitHubAuth | CILogonAuth | OIDCAuth,
    Field(discriminator="type"),
]

#: The types a deployment reachable by strangers may use (every Kubernetes deployment).
OAUTH_TYPES = ("github", "cilogon", "oidc")
#: The types that give each person their own password on one machine (`class create --passwords`).
PASSWORD_TYPES = ("first-use", "native")
