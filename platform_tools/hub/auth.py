"""Who may log in, as platform.yaml says now: rosters and groups change with no hub restart.

JupyterHub reads ``allowed_users`` once, at start. A summer school's roster arrives the
evening before (the Ansible roster play adds the class group to platform.yaml), and a
student dropped from it must lose access: so the check follows the live file. Admins
always pass, as JupyterHub's own check does; a platform.yaml that does not load keeps the
last good list (LiveConfig).
"""

from __future__ import annotations

from jupyterhub.authenticators.shared import SharedPasswordAuthenticator
from traitlets import Unicode

from platform_tools.config.live import LiveConfig


class LiveAllowedSharedPasswordAuthenticator(SharedPasswordAuthenticator):
    """JupyterHub's shared-password login, with the allowed users of the live platform.yaml."""

    platform_config_path = Unicode("", config=True, help="platform.yaml, followed for who may log in.")

    _live: LiveConfig | None = None

    def check_allowed(self, username: str, authentication: dict | None = None) -> bool:
        if not self.platform_config_path:
            return super().check_allowed(username, authentication)
        if self._live is None:
            self._live = LiveConfig(self.platform_config_path, self.log)
        platform = self._live.current()
        return username in platform.allowed_users or username in platform.hub.admin_users
