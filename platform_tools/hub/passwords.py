"""Each person's own password on one machine: ``hub.auth: first-use`` and ``native``.

Both admit exactly as every other login does (``LivePlatformAccess``: the live platform.yaml,
at login and every refresh; closed classes shut out). Beyond that, a password store must not
be written for a name platform.yaml does not admit:

* first-use stores the password of a name's first login *before* JupyterHub asks whether the
  name is admitted. Unchecked, anyone could set the password of a name that is not on the
  roster yet (``carol``, added tomorrow) and be her when she is. So a name not admitted now
  is refused before the store is opened.
* native's sign-up page creates an account for any name. Only names platform.yaml admits may
  sign up, and that sign-up is enough (the roster is the approval, no admin toggles); a
  refused name reads why on the page.

What stays: a name that is admitted but has not logged in (first-use) or signed up (native)
yet can be claimed by whoever uses it first, as with The Littlest JupyterHub. `class create
--passwords` closes that gap for a class by issuing each student's password beforehand
(``platform_tools.classes.passwords``); admins should log in once right after the first start.

The stores live in the state directory (``platform_tools.contract.passwords``): first-use's
in ``secrets/`` (0700, files 0600), native's in the hub's database (``hub/``, 0700).
"""

from __future__ import annotations

import asyncio
from typing import Any

import bcrypt
from firstuseauthenticator import FirstUseAuthenticator
from firstuseauthenticator.firstuseauthenticator import TEMPLATE_DIR as FIRST_USE_TEMPLATES
from firstuseauthenticator.firstuseauthenticator import CustomLoginHandler
from jupyterhub.handlers.login import LoginHandler
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import TEMPLATE_DIR as NATIVE_TEMPLATES
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from nativeauthenticator.handlers import SignUpHandler
from nativeauthenticator.orm import UserInfo
from tornado.escape import url_escape
from tornado.httputil import url_concat
from traitlets import Bool

from platform_tools.config.auth import FirstUseAuth, NativeAuth, PasswordAuth
from platform_tools.config.policy import access_problem
from platform_tools.contract.passwords import first_use_store, first_use_store_lock, open_first_use_store
from platform_tools.hub.auth import LivePlatformAccess, configure_admission

#: A paused name waits this long after ``failed_logins_before_pause`` wrong passwords.
PAUSE_SECONDS = 600


class _RosterOnly(LivePlatformAccess):
    def refusal(self, username: str) -> str | None:
        """Why ``username`` may not have a password here now (None: they may)."""
        platform = self.live_platform()
        if platform is None:  # no platform.yaml configured: JupyterHub's own check_allowed decides
            return None
        return access_problem(platform, username)


class JupyterHub6FirstUseLoginHandler(CustomLoginHandler):
    """first-use's login page, taking the ``sync`` JupyterHub 6 passes when an error (an
    expired form) becomes the form's message; first-use's own answered 500 instead."""

    def _render(self, login_error: str | None = None, username: str | None = None, **kwargs: Any) -> Any:
        return LoginHandler._render(self, self.custom_login_error or login_error, username, **kwargs)


class PlatformFirstUseAuthenticator(_RosterOnly, FirstUseAuthenticator):
    """First-use passwords for the names the live platform.yaml admits, and no others."""

    template_dir = FIRST_USE_TEMPLATES

    allow_password_change = Bool(
        True, config=True, help="Logged-in people may change their password (/hub/auth/change-password)."
    )

    async def authenticate(self, handler: Any, data: dict) -> str | None:
        """first-use's rule (a stored hash must match; none yet: a long enough password becomes
        it), with bcrypt off the hub's event loop: ~0.3 s of CPU per login would otherwise
        stall every request while a class logs in together. The store is locked only to read
        and to write, never across a hash."""
        username = self.normalize_username(data.get("username", ""))
        password = data.get("password", "").encode("utf8")
        refused = self.refusal(username)
        if refused:
            self.log.warning("first-use login refused before any password is stored: %s", refused)
            return None
        with open_first_use_store(self.dbm_path) as db:
            stored = db.get(username.encode("utf8"))
        if stored is None:
            if not self._validate_password(data.get("password", "")):
                handler.custom_login_error = (
                    f"Password too short! Please choose a password at least {self.min_password_length} "
                    "characters long."
                )
                return None
            hashed = await asyncio.to_thread(bcrypt.hashpw, password, bcrypt.gensalt())
            with open_first_use_store(self.dbm_path) as db:
                stored = db.get(username.encode("utf8"))  # a first login or an issue meanwhile
                if stored is None:
                    db[username.encode("utf8")] = hashed
                    return username
        return username if await asyncio.to_thread(bcrypt.checkpw, password, stored) else None

    def reset_password(self, username: str, new_password: str) -> str:
        with first_use_store_lock(self.dbm_path):
            return super().reset_password(username, new_password)

    def delete_user(self, user: Any) -> None:
        with first_use_store_lock(self.dbm_path):
            super().delete_user(user)

    def get_handlers(self, app: Any) -> list:
        handlers = [
            (path, JupyterHub6FirstUseLoginHandler if path == r"/login" else handler)
            for path, handler in super().get_handlers(app)
        ]
        if not self.allow_password_change:
            handlers = [h for h in handlers if not h[0].endswith("change-password")]
        return handlers


class RosterSignUpHandler(SignUpHandler):
    """native's sign-up page, saying why a name platform.yaml does not admit cannot sign up
    (instead of native's "be sure your username does not contain spaces...")."""

    def get_result_message(self, user: Any, *args: Any) -> tuple[str, str]:
        alert, message = super().get_result_message(user, *args)
        if user is None and alert == "alert-danger":
            username = self.authenticator.normalize_username(self.get_body_argument("username", ""))
            refused = self.authenticator.refusal(username)
            if refused:
                message = f"{refused} Only people on this platform's roster can sign up."
        return alert, message


class JupyterHub6NativeLoginHandler(NativeLoginHandler):
    """native's login page under JupyterHub 6: nativeauthenticator 1.3.0's own handler times
    the login with ``self.statsd`` (gone from JupyterHub) and its ``_render`` refuses the
    ``sync`` JupyterHub passes when a refusal becomes the login form's message, so every
    login answered 500. JupyterHub's own post, native's page with its sign-up link."""

    async def post(self) -> None:
        await LoginHandler.post(self)

    def _render(self, login_error: str | None = None, username: str | None = None, **kwargs: Any) -> Any:
        return self.render_template(
            "native-login.html",
            next=url_escape(self.get_argument("next", default="")),
            username=username,
            login_error=login_error,
            custom_html=self.authenticator.custom_html,
            login_url=self.settings["login_url"],
            enable_signup=self.authenticator.enable_signup,
            two_factor_auth=self.authenticator.allow_2fa,
            authenticator_login_url=url_concat(
                self.authenticator.login_url(self.hub.base_url), {"next": self.get_argument("next", "")}
            ),
            **kwargs,
        )


class PlatformNativeAuthenticator(_RosterOnly, NativeAuthenticator):
    """NativeAuthenticator whose sign-up creates accounts only for names platform.yaml admits."""

    template_dir = NATIVE_TEMPLATES

    def create_user(self, username: str, password: str, **kwargs: Any) -> Any:
        refused = self.refusal(self.normalize_username(username))
        if refused:
            self.log.warning("sign-up refused: %s", refused)
            return None
        return super().create_user(username, password, **kwargs)

    async def authenticate(self, handler: Any, data: dict) -> str | None:
        """native's rule (an authorized user, the right password, not paused), with bcrypt off
        the hub's event loop (see PlatformFirstUseAuthenticator.authenticate)."""
        username = self.normalize_username(data.get("username", ""))
        user = self.get_user(username)
        if user is None or (self.allowed_failed_logins and self.is_blocked(username)):
            return None
        valid = await asyncio.to_thread(bcrypt.checkpw, data.get("password", "").encode(), user.password)
        if valid and user.is_authorized and (not user.has_2fa or user.is_valid_token(data.get("2fa"))):
            self.successful_login(username)
            return username
        self.add_login_attempt(username)
        return None

    def get_user(self, username: str) -> Any:
        # `class create --passwords` writes users_info from another process: re-read the row,
        # or a password reissued while the hub runs would be checked against the old hash.
        info = UserInfo.find(self.db, self.normalize_username(username))
        if info is not None:
            self.db.refresh(info)
        return info

    def get_handlers(self, app: Any) -> list:
        ours = {r"/signup": RosterSignUpHandler, r"/login": JupyterHub6NativeLoginHandler}
        return [(path, ours.get(path, handler)) for path, handler in super().get_handlers(app)]


def configure_password_login(c: Any, auth: PasswordAuth, platform_file: str, state_root: str) -> None:
    """``hub.auth: first-use | native`` on the local hub, admitting by the live platform.yaml."""
    if isinstance(auth, FirstUseAuth):
        cls: type = PlatformFirstUseAuthenticator
        c.FirstUseAuthenticator.dbm_path = str(first_use_store(state_root))
        c.FirstUseAuthenticator.min_password_length = auth.min_password_length
        c.FirstUseAuthenticator.create_users = True  # admission is LivePlatformAccess's
        c.PlatformFirstUseAuthenticator.allow_password_change = auth.allow_password_change
    elif isinstance(auth, NativeAuth):
        cls = PlatformNativeAuthenticator
        c.NativeAuthenticator.enable_signup = auth.signup
        c.NativeAuthenticator.open_signup = True  # create_user admits roster names only
        c.NativeAuthenticator.check_common_password = True
        c.NativeAuthenticator.minimum_password_length = auth.min_password_length
        c.NativeAuthenticator.allowed_failed_logins = auth.failed_logins_before_pause
        c.NativeAuthenticator.seconds_before_next_try = PAUSE_SECONDS
        c.NativeAuthenticator.ask_email_on_signup = False
        c.NativeAuthenticator.allow_2fa = False
    else:  # pragma: no cover - the config union names only these two password logins
        raise TypeError(f"not a password login: {auth!r}")
    c.JupyterHub.authenticator_class = cls
    # The pages' templates on JupyterHub's own search path: both authenticators add their folder
    # to the hub's async templates only, at their first page, so the form JupyterHub renders
    # synchronously for an error (an expired login form) was not found (a bare 403).
    c.JupyterHub.template_paths = [cls.template_dir]
    configure_admission(c, cls, platform_file)
