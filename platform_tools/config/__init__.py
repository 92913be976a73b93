"""platform.yaml: the one configuration model, its loader and its schema."""

from .loader import ConfigError, ConfigIssue, load_platform, parse_platform
from .models import (
    Archive,
    DaskGatewayConfig,
    Group,
    HubConfig,
    LocalArchive,
    LocalPlatform,
    PlatformConfig,
    Profile,
)

__all__ = [
    "Archive",
    "ConfigError",
    "ConfigIssue",
    "DaskGatewayConfig",
    "Group",
    "HubConfig",
    "LocalArchive",
    "LocalPlatform",
    "PlatformConfig",
    "Profile",
    "load_platform",
    "parse_platform",
]
