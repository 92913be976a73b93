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
